//! What can stop a command, and the exit code each means.

use tiercache::ErrorKind;
use tiercache_widgets::WidgetError;

use crate::exit::Exit;

/// Why a command could not finish.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A setting (flag or environment variable) is not valid; the message names it.
    #[error("{0}")]
    Config(#[from] tiercache::ConfigError),
    /// Redis did not answer at the URL (password masked).
    #[error("Redis is unreachable at {url}: {reason}")]
    Unreachable {
        /// The URL tried, password masked.
        url: String,
        /// What the cache said, any password in it masked.
        reason: String,
    },
    /// A cache call failed for another reason.
    #[error("{0}")]
    Cache(tiercache::Error),
    /// The widget layer refused input or its database failed.
    #[error("{0}")]
    Widget(#[from] WidgetError),
    /// The command was refused as given.
    #[error("{0}")]
    Refused(String),
    /// Reading the terminal or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    /// A cache error, told apart: Redis out of reach, bad input, or something else. `url` is the
    /// masked URL to name; `password` is masked wherever the error's own message repeats it.
    pub fn from_cache(e: tiercache::Error, url: &str, password: Option<&str>) -> CliError {
        match e.kind() {
            ErrorKind::Redis | ErrorKind::Unavailable => {
                let mut reason = e.to_string();
                if let Some(p) = password.filter(|p| !p.is_empty()) {
                    reason = reason.replace(p, "***");
                }
                CliError::Unreachable {
                    url: url.to_owned(),
                    reason,
                }
            }
            ErrorKind::Config => match e {
                tiercache::Error::Config(c) => CliError::Config(c),
                other => CliError::Cache(other),
            },
            _ => CliError::Cache(e),
        }
    }

    /// The exit code this error ends the run with.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Config(_)
            | CliError::Refused(_)
            | CliError::Widget(
                WidgetError::UnknownWidgetType { .. }
                | WidgetError::InvalidTimeRange { .. }
                | WidgetError::InvalidFilter { .. },
            ) => Exit::Usage,
            CliError::Cache(e) if e.kind() == ErrorKind::InvalidKey => Exit::Usage,
            CliError::Unreachable { .. } => Exit::Unknown,
            CliError::Widget(WidgetError::Cache(e))
                if matches!(e.kind(), ErrorKind::Redis | ErrorKind::Unavailable) =>
            {
                Exit::Unknown
            }
            CliError::Cache(_) | CliError::Widget(_) | CliError::Io(_) => Exit::Warning,
        }
    }
}
