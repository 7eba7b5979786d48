//! A stand-in for the process environment, for code that reads its variables through a lookup
//! (`apply_vars` in tiercache and its widget layer).

/// A lookup over `vars`: the value of the first pair named `name`, `None` when none is.
///
/// ```
/// let lookup = tiercache_testkit::vars_lookup(&[("A", "1")]);
/// assert_eq!(lookup("A").as_deref(), Some("1"));
/// assert_eq!(lookup("B"), None);
/// ```
pub fn vars_lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}
