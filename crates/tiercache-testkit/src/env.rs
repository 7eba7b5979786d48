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

/// Asserts that `read` refuses each `(variable, value, expected)` of `cases`, read alone, with an
/// error naming the variable, the value and `expected` (what is allowed): the rule every settings
/// table's tests hold its errors to. Generic over the error, since the core's own unit tests see
/// another copy of its `ConfigError` than this kit does.
///
/// ```
/// let read = |vars: &[(&str, &str)]| -> Result<(), String> {
///     Err(format!("{}={:?} is not valid: expected a number", vars[0].0, vars[0].1))
/// };
/// tiercache_testkit::assert_each_refused(read, &[("N", "x", "a number")]);
/// ```
pub fn assert_each_refused<T: std::fmt::Debug, E: std::fmt::Display>(
    read: impl Fn(&[(&str, &str)]) -> Result<T, E>,
    cases: &[(&str, &str, &str)],
) {
    for &(var, value, expected) in cases {
        let msg = read(&[(var, value)]).expect_err(var).to_string();
        for part in [var, value, expected] {
            assert!(msg.contains(part), "{part:?} in {msg}");
        }
    }
}
