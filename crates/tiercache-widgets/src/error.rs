//! The widget layer's error type.

/// What can go wrong in the widget layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WidgetError {
    /// A widget type name that does not exist; the message lists the valid ones.
    #[error("unknown widget type {given:?}; valid types: {valid}")]
    UnknownWidgetType {
        /// What was given.
        given: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A time range that cannot be parsed; the message lists the accepted forms.
    #[error("invalid time range {given:?}: {reason}; valid ranges: {valid}, or a custom YYYY-MM-DD..YYYY-MM-DD")]
    InvalidTimeRange {
        /// What was given.
        given: String,
        /// What is wrong with it.
        reason: String,
        /// The named ranges, comma-separated.
        valid: String,
    },
    /// A filter that is unknown or has a bad value.
    #[error("invalid filter {key:?}={value:?}: {reason}")]
    InvalidFilter {
        /// The filter name.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An event name that is not in the invalidation table; the message lists the valid ones.
    #[error("unknown event {given:?}; valid events: {valid}")]
    UnknownEvent {
        /// What was given.
        given: String,
        /// The valid event names, comma-separated.
        valid: String,
    },
    /// An event whose payload lacks a field or has one of the wrong type.
    #[error("event {event:?}: {reason}")]
    InvalidEvent {
        /// The event name.
        event: String,
        /// What is wrong.
        reason: String,
    },
    /// A record refers to an organisation, campaign or employee that does not exist (or belongs to
    /// another organisation).
    #[error("{what} {id} does not exist{context}")]
    UnknownReference {
        /// `organization`, `campaign` or `employee`.
        what: &'static str,
        /// The id given.
        id: i64,
        /// More detail, such as the organisation the record had to belong to; may be empty.
        context: String,
    },
    /// The widget's data provider returned data of another widget type.
    #[error("provider for {expected} returned {got} data")]
    WrongData {
        /// The widget that was asked for.
        expected: String,
        /// The kind of data returned.
        got: String,
    },
    /// SQLite failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The cache failed, Redis included: the widget layer reaches Redis only through the cache.
    #[error("cache: {0}")]
    Cache(#[from] tiercache::Error),
    /// A setting of the widget layer is not valid; the message names the variable.
    #[error("configuration: {0}")]
    Config(#[from] tiercache::ConfigError),
    /// Blocking work could not be run.
    #[error("background task failed: {0}")]
    Task(String),
}
