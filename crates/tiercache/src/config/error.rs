//! [`ConfigError`]: a setting that could not be accepted.

/// A setting that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable (or builder value) holds something that is not allowed.
    #[error("{var}={value:?} is not valid: expected {expected}")]
    InvalidValue {
        /// The variable or setting name.
        var: String,
        /// The value as given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// The Redis URL is malformed; `part` says which piece is wrong.
    #[error("malformed Redis URL {url:?}: {part} {problem}")]
    InvalidRedisUrl {
        /// The URL as given (passwords are masked).
        url: String,
        /// Which part is wrong: scheme, host, port, database, ...
        part: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A settings file could not be read, is not TOML, or holds something that is not a setting.
    #[error("settings file {file}: {problem}")]
    InvalidFile {
        /// The file as named.
        file: String,
        /// What is wrong with it.
        problem: String,
    },
}
