//! Settings from a TOML file. The keys are the variables' names (in either case) and the values
//! take the forms the variables take (`"15m"` or `900` for a duration in seconds), so one table of
//! settings documents the environment and the file alike, and a file can be checked against the
//! docs row by row.

use std::collections::HashMap;

use super::error::ConfigError;

/// The settings a TOML document sets, by variable name in upper case, each value as the text the
/// variable would hold. A key that names no setting in `known`, a value that is a table or an array,
/// or a document that is not TOML is an error naming `origin` (the file, for the message). For
/// layers above the cache whose settings files hold the core's settings and their own: apply the
/// result as a stand-in for the environment.
///
/// ```
/// let known = ["TIERCACHE_NAMESPACE", "APP_WORKERS"];
/// let settings = tiercache::settings_in_toml("tiercache_namespace = \"shop\"\napp_workers = 4", "app.toml", &known)?;
/// assert_eq!(settings["APP_WORKERS"], "4");
/// # Ok::<(), tiercache::ConfigError>(())
/// ```
pub fn settings_in_toml(
    text: &str,
    origin: &str,
    known: &[&str],
) -> Result<HashMap<String, String>, ConfigError> {
    let invalid = |problem: String| ConfigError::InvalidFile {
        file: origin.to_owned(),
        problem,
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The parser's message spans several lines (a caret under the column); the first says it.
        invalid(e.message().to_owned())
    })?;
    let mut settings = HashMap::with_capacity(table.len());
    for (key, value) in table {
        let name = key.to_ascii_uppercase();
        if !known.contains(&name.as_str()) {
            return Err(invalid(format!(
                "`{key}` is not a setting; the settings are {}",
                known.join(", ")
            )));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(invalid(format!(
                    "`{key}` holds a {}; a setting is a string, a number or a boolean",
                    other.type_str()
                )))
            }
        };
        settings.insert(name, text);
    }
    Ok(settings)
}

/// [`settings_in_toml`] of the file at `path`, which names it in errors (one it cannot read too).
pub fn settings_in_toml_file(
    path: &std::path::Path,
    known: &[&str],
) -> Result<HashMap<String, String>, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::InvalidFile {
        file: origin.clone(),
        problem: e.to_string(),
    })?;
    settings_in_toml(&text, &origin, known)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &[
        "TIERCACHE_NAMESPACE",
        "TIERCACHE_DEFAULT_TTL",
        "TIERCACHE_REFRESH_AHEAD",
    ];

    #[test]
    fn keys_in_either_case_and_every_scalar_become_the_variables_text() {
        let settings = settings_in_toml(
            "tiercache_namespace = \"widgets\"\nTIERCACHE_DEFAULT_TTL = 900\ntiercache_refresh_ahead = false\n",
            "cache.toml",
            KNOWN,
        )
        .unwrap();
        assert_eq!(settings["TIERCACHE_NAMESPACE"], "widgets");
        assert_eq!(settings["TIERCACHE_DEFAULT_TTL"], "900");
        assert_eq!(settings["TIERCACHE_REFRESH_AHEAD"], "false");
    }

    #[test]
    fn an_unknown_key_a_table_or_bad_toml_names_the_file_and_what_is_wrong() {
        let unknown = settings_in_toml("tiercache_namespce = \"x\"", "cache.toml", KNOWN)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("cache.toml")
                && unknown.contains("tiercache_namespce")
                && unknown.contains("TIERCACHE_NAMESPACE"),
            "{unknown}"
        );
        let table = settings_in_toml("[tiercache_namespace]\nx = 1", "cache.toml", KNOWN)
            .unwrap_err()
            .to_string();
        assert!(table.contains("holds a table"), "{table}");
        let broken = settings_in_toml("tiercache_namespace = ", "cache.toml", KNOWN)
            .unwrap_err()
            .to_string();
        assert!(broken.contains("cache.toml"), "{broken}");
    }
}
