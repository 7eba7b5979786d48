//! Settings declared once: a [`SettingsTable`] of [`Setting`]s reads the environment, words the error
//! for a bad value, and renders the docs' table of variables, so the three cannot drift apart.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use super::error::ConfigError;
use super::parse::{self, BareUnit};
use super::redis_url::{mask_credentials, validate_redis_url};

/// A whole-number field a setting can fill: `u16`, `u32`, `u64`, `usize`, or an `Option` of one
/// (`None` while unset).
pub trait WholeNumber {
    /// The value held, `None` while unset.
    fn get(&self) -> Option<u64>;
    /// Stores `n`; `false` (and nothing stored) when the field's type cannot hold it.
    fn set(&mut self, n: u64) -> bool;
}

macro_rules! whole_number {
    ($($t:ty),*) => {$(
        impl WholeNumber for $t {
            fn get(&self) -> Option<u64> {
                u64::try_from(*self).ok()
            }
            fn set(&mut self, n: u64) -> bool {
                match <$t>::try_from(n) {
                    Ok(n) => {
                        *self = n;
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    )*};
}

whole_number!(u16, u32, u64, usize);

impl<N: WholeNumber + Default> WholeNumber for Option<N> {
    fn get(&self) -> Option<u64> {
        self.as_ref().and_then(WholeNumber::get)
    }
    fn set(&mut self, n: u64) -> bool {
        let mut held = N::default();
        let fits = held.set(n);
        if fits {
            *self = Some(held);
        }
        fits
    }
}

/// What a [`Setting`] accepts, and the field of `T` it fills. Each form has one parser, one wording
/// of what it expects, and one way of showing a default.
pub enum SettingValue<T: 'static> {
    /// A positive duration: a bare number in the given unit, or with a unit (`250ms`, `30s`, `15m`,
    /// `2h`).
    Duration(BareUnit, fn(&mut T) -> &mut Duration),
    /// A whole number from `min` to `max`; `_` may group digits.
    Whole {
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
        /// The field it fills.
        field: fn(&mut T) -> &mut dyn WholeNumber,
    },
    /// A size in bytes from `min` to `max`: read as [`SettingValue::Whole`], shown in MiB.
    Bytes {
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
        /// The field it fills.
        field: fn(&mut T) -> &mut dyn WholeNumber,
    },
    /// `true`/`false`, also `1`/`0`, `yes`/`no`, `on`/`off`.
    Switch(fn(&mut T) -> &mut bool),
    /// A number strictly between 0 and 1.
    Fraction(fn(&mut T) -> &mut f64),
    /// A percentage from 0 to 100, with or without `%`, kept as a fraction (`95` is 0.95).
    Percent(fn(&mut T) -> &mut f64),
    /// Text kept as given; whatever rules it has are checked with the rest of the configuration.
    Text(fn(&mut T) -> &mut String),
    /// Text kept as given, unset by default.
    OptionalText(fn(&mut T) -> &mut Option<String>),
    /// A file's path, unset by default.
    Path(fn(&mut T) -> &mut Option<PathBuf>),
    /// A Redis URL, checked part by part; a bad one names the wrong part.
    RedisUrl(fn(&mut T) -> &mut String),
    /// Comma-separated Redis URLs, each checked as [`SettingValue::RedisUrl`].
    RedisUrls(fn(&mut T) -> &mut Vec<String>),
    /// Any other form: one word of a few, or a value stored in more than one field.
    Custom {
        /// What is allowed, as a bad value's error and the docs say it.
        expected: &'static str,
        /// Stores the value read from the text; `false` when the text is not of the form.
        read: fn(&mut T, &str) -> bool,
        /// The value held, as the docs show a default.
        show: fn(&T) -> String,
    },
}

/// One environment variable: its name, the form and field of its value, and one sentence for the
/// docs. Declared once in a [`SettingsTable`], it drives reading, errors and the docs alike.
///
/// ```
/// use std::time::Duration;
/// use tiercache::{BareUnit, Setting, SettingValue, SettingsTable};
///
/// #[derive(Default)]
/// struct Limits {
///     timeout: Duration,
///     retries: u32,
/// }
///
/// const LIMITS: SettingsTable<Limits> = SettingsTable::new(&[
///     Setting {
///         name: "APP_TIMEOUT",
///         value: SettingValue::Duration(BareUnit::Millis, |l| &mut l.timeout),
///         doc: "How long one request may take.",
///     },
///     Setting {
///         name: "APP_RETRIES",
///         value: SettingValue::Whole { min: 0, max: 10, field: |l| &mut l.retries },
///         doc: "How often a failed request is tried again.",
///     },
/// ]);
///
/// let mut limits = Limits::default();
/// let env = |name: &str| (name == "APP_TIMEOUT").then(|| "250".to_owned());
/// LIMITS.apply(&mut limits, env).unwrap();
/// assert_eq!(limits.timeout, Duration::from_millis(250));
///
/// let err = LIMITS.apply(&mut limits, |_| Some("many".to_owned())).unwrap_err();
/// assert!(err.to_string().contains("APP_TIMEOUT"));
/// assert!(LIMITS.markdown().contains("| `APP_RETRIES` | whole number, 0–10 | 0 |"));
/// ```
pub struct Setting<T: 'static> {
    /// The environment variable.
    pub name: &'static str,
    /// The form of its value and the field it fills.
    pub value: SettingValue<T>,
    /// What it does, in one sentence for the docs.
    pub doc: &'static str,
}

impl<T> std::fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting")
            .field("name", &self.name)
            .field("form", &self.form())
            .finish_non_exhaustive()
    }
}

/// Stores `value` in `slot` when there is one; whether there was.
fn put<V>(slot: &mut V, value: Option<V>) -> bool {
    match value {
        Some(value) => {
            *slot = value;
            true
        }
        None => false,
    }
}

impl<T> Setting<T> {
    /// Reads `text` into `target`. A value not of the setting's form is an error naming the variable,
    /// the value and what is allowed; a malformed Redis URL names the part that is wrong.
    pub fn apply(&self, target: &mut T, text: &str) -> Result<(), ConfigError> {
        let accepted = match &self.value {
            SettingValue::Duration(bare, field) => put(field(target), parse::duration(text, *bare)),
            SettingValue::Whole { min, max, field } | SettingValue::Bytes { min, max, field } => {
                parse::whole(text)
                    .filter(|n| (*min..=*max).contains(n))
                    .is_some_and(|n| field(target).set(n))
            }
            SettingValue::Switch(field) => put(field(target), parse::switch(text)),
            SettingValue::Fraction(field) => put(field(target), parse::fraction(text)),
            SettingValue::Percent(field) => put(field(target), parse::percent(text)),
            SettingValue::Text(field) => put(field(target), Some(text.to_owned())),
            SettingValue::OptionalText(field) => put(field(target), Some(Some(text.to_owned()))),
            SettingValue::Path(field) => put(field(target), Some(Some(PathBuf::from(text)))),
            SettingValue::RedisUrl(field) => {
                validate_redis_url(text)?;
                put(field(target), Some(text.to_owned()))
            }
            SettingValue::RedisUrls(field) => {
                let urls: Vec<String> = text
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned)
                    .collect();
                for url in &urls {
                    validate_redis_url(url)?;
                }
                put(field(target), Some(urls))
            }
            SettingValue::Custom { read, .. } => read(target, text),
        };
        if accepted {
            Ok(())
        } else {
            Err(ConfigError::InvalidValue {
                var: self.name.to_owned(),
                value: text.to_owned(),
                expected: self.expected(),
            })
        }
    }

    /// What a bad value's error says is allowed.
    pub fn expected(&self) -> String {
        match &self.value {
            SettingValue::Duration(bare, _) => parse::duration_expected(*bare).to_owned(),
            SettingValue::Whole { min, max, .. } | SettingValue::Bytes { min, max, .. } => {
                format!("a whole number from {min} to {max}")
            }
            SettingValue::Switch(_) => "true/false (also 1/0, yes/no, on/off)".to_owned(),
            SettingValue::Fraction(_) => {
                "a fraction strictly between 0 and 1, such as 0.8".to_owned()
            }
            SettingValue::Percent(_) => "a percentage from 0 to 100, such as 95 or 95%".to_owned(),
            // Any text is taken, and a URL's error is its own: these are never refused here.
            SettingValue::Text(_) | SettingValue::OptionalText(_) | SettingValue::Path(_) => {
                "text".to_owned()
            }
            SettingValue::RedisUrl(_) | SettingValue::RedisUrls(_) => {
                "redis://[user:password@]host:port[/db]".to_owned()
            }
            SettingValue::Custom { expected, .. } => (*expected).to_owned(),
        }
    }

    /// The form of the value in a few words, for the docs: its unit when it is a bare number.
    pub fn form(&self) -> String {
        let range = |min: u64, max: u64| {
            if max == u64::MAX {
                format!("at least {}", parse::show_whole(min))
            } else {
                format!("{}–{}", parse::show_whole(min), parse::show_whole(max))
            }
        };
        match &self.value {
            SettingValue::Duration(BareUnit::Seconds, _) => "duration; bare number = s".to_owned(),
            SettingValue::Duration(BareUnit::Millis, _) => "duration; bare number = ms".to_owned(),
            SettingValue::Whole { min, max, .. } => format!("whole number, {}", range(*min, *max)),
            SettingValue::Bytes { min, max, .. } => format!("bytes, {}", range(*min, *max)),
            SettingValue::Switch(_) => "true/false".to_owned(),
            SettingValue::Fraction(_) => "fraction, above 0 and below 1".to_owned(),
            SettingValue::Percent(_) => "percent, 0–100".to_owned(),
            SettingValue::Text(_) | SettingValue::OptionalText(_) => "text".to_owned(),
            SettingValue::Path(_) => "file path".to_owned(),
            SettingValue::RedisUrl(_) => "Redis URL".to_owned(),
            SettingValue::RedisUrls(_) => "Redis URLs, comma-separated".to_owned(),
            SettingValue::Custom { expected, .. } => (*expected).to_owned(),
        }
    }

    /// The value `defaults` holds for this setting, as the docs show it. Takes `&mut` because the
    /// table reaches fields through the accessors it also writes with; nothing is changed.
    pub fn shown(&self, defaults: &mut T) -> String {
        let text = |value: &str| {
            if value.is_empty() {
                "none".to_owned()
            } else {
                format!("`{value}`")
            }
        };
        match &self.value {
            SettingValue::Duration(_, field) => parse::show_duration(*field(defaults)),
            SettingValue::Whole { field, .. } => field(defaults)
                .get()
                .map_or("none".to_owned(), parse::show_whole),
            SettingValue::Bytes { field, .. } => field(defaults)
                .get()
                .map_or("none".to_owned(), parse::show_bytes),
            SettingValue::Switch(field) => field(defaults).to_string(),
            SettingValue::Fraction(field) => field(defaults).to_string(),
            SettingValue::Percent(field) => parse::show_percent(*field(defaults)),
            SettingValue::Text(field) => text(field(defaults)),
            SettingValue::OptionalText(field) => text(field(defaults).as_deref().unwrap_or("")),
            SettingValue::Path(field) => text(
                &field(defaults)
                    .as_deref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default(),
            ),
            SettingValue::RedisUrl(field) => text(&mask_credentials(field(defaults))),
            SettingValue::RedisUrls(field) => text(
                &field(defaults)
                    .iter()
                    .map(|url| mask_credentials(url))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            SettingValue::Custom { show, .. } => show(defaults),
        }
    }
}

/// The header of a rendered [`SettingsTable`], for docs that join the rows of several tables
/// ([`SettingsTable::markdown_rows`]) into one.
pub const SETTINGS_TABLE_HEADER: &str =
    "| variable | value | default | meaning |\n|---|---|---|---|\n";

/// The environment variables of one configuration type, in the order they are applied. See
/// [`Setting`] for an example.
pub struct SettingsTable<T: 'static> {
    rows: &'static [Setting<T>],
}

impl<T> std::fmt::Debug for SettingsTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.rows).finish()
    }
}

impl<T> SettingsTable<T> {
    /// A table of `rows`, applied in this order (a later row may build on an earlier one's value).
    pub const fn new(rows: &'static [Setting<T>]) -> Self {
        SettingsTable { rows }
    }

    /// Every setting, in order.
    pub fn rows(&self) -> &'static [Setting<T>] {
        self.rows
    }

    /// The setting named `name`, if this table has it.
    pub fn get(&self, name: &str) -> Option<&'static Setting<T>> {
        self.rows.iter().find(|setting| setting.name == name)
    }

    /// Reads every variable `lookup` has (a stand-in for the environment) into `target`, in table
    /// order. A blank value counts as unset, so `VAR=` in an env file keeps the default.
    pub fn apply(
        &self,
        target: &mut T,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for setting in self.rows {
            if let Some(text) = lookup(setting.name).filter(|text| !text.trim().is_empty()) {
                setting.apply(target, &text)?;
            }
        }
        Ok(())
    }

    /// What is wrong with the table itself, a line per problem; empty when nothing is: a name
    /// declared twice, a doc that is not one sentence or a docs cell that would break its markdown
    /// row, a whole-number bound its field cannot hold, a bare number not read in the unit the row
    /// names. Every configuration's tests assert it is empty, so each table is held to the same
    /// rules.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tiercache::{BareUnit, Setting, SettingValue, SettingsTable};
    ///
    /// #[derive(Default)]
    /// struct Limits {
    ///     timeout: Duration,
    ///     retries: u16,
    /// }
    ///
    /// const LIMITS: SettingsTable<Limits> = SettingsTable::new(&[
    ///     Setting {
    ///         name: "LIMITS_TIMEOUT",
    ///         value: SettingValue::Duration(BareUnit::Millis, |l| &mut l.timeout),
    ///         doc: "How long a call may take.",
    ///     },
    ///     Setting {
    ///         name: "LIMITS_RETRIES",
    ///         value: SettingValue::Whole { min: 0, max: 100_000, field: |l| &mut l.retries },
    ///         doc: "How often a call is tried again",
    ///     },
    /// ]);
    /// let problems = LIMITS.problems();
    /// assert_eq!(problems.len(), 2, "{problems:?}");
    /// assert!(problems[0].contains("one sentence"), "{problems:?}");
    /// assert!(problems[1].contains("cannot hold 100000"), "{problems:?}");
    /// ```
    pub fn problems(&self) -> Vec<String>
    where
        T: Default,
    {
        let mut problems = Vec::new();
        for (i, setting) in self.rows.iter().enumerate() {
            let name = setting.name;
            if self.rows[..i].iter().any(|earlier| earlier.name == name) {
                problems.push(format!("{name}: declared twice"));
            }
            if !setting.doc.ends_with('.') {
                problems.push(format!(
                    "{name}: its doc is not one sentence ending in a period"
                ));
            }
            let default = setting.shown(&mut T::default());
            for cell in [setting.doc.to_owned(), setting.form(), default] {
                if cell.contains('|') || cell.contains('\n') {
                    problems.push(format!("{name}: {cell:?} would break its markdown row"));
                }
            }
            match setting.value {
                SettingValue::Whole { min, max, field }
                | SettingValue::Bytes { min, max, field } => {
                    for n in [min, max] {
                        let mut target = T::default();
                        if !field(&mut target).set(n) || field(&mut target).get() != Some(n) {
                            problems.push(format!("{name}: its field cannot hold {n}"));
                        }
                    }
                }
                SettingValue::Duration(bare, field) => {
                    let want = match bare {
                        BareUnit::Seconds => Duration::from_secs(7),
                        BareUnit::Millis => Duration::from_millis(7),
                    };
                    let mut target = T::default();
                    let read = setting
                        .apply(&mut target, "7")
                        .map(|()| *field(&mut target));
                    if read.as_ref().ok() != Some(&want) {
                        problems.push(format!("{name}: a bare 7 reads as {read:?}, not {want:?}"));
                    }
                }
                _ => {}
            }
        }
        problems
    }

    /// The table as markdown: [`SETTINGS_TABLE_HEADER`] and a row per setting with its default from
    /// `T::default()`.
    pub fn markdown(&self) -> String
    where
        T: Default,
    {
        format!("{SETTINGS_TABLE_HEADER}{}", self.markdown_rows())
    }

    /// The rows of [`SettingsTable::markdown`] without its header, a line each.
    pub fn markdown_rows(&self) -> String
    where
        T: Default,
    {
        let mut defaults = T::default();
        let mut rows = String::new();
        for setting in self.rows {
            let default = setting.shown(&mut defaults);
            // Writing into a String cannot fail.
            let _ = writeln!(
                rows,
                "| `{}` | {} | {default} | {} |",
                setting.name,
                setting.form(),
                setting.doc
            );
        }
        rows
    }
}
