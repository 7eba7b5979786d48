//! The widget layer's variables, declared once: [`WidgetConfig::SETTINGS`] (the seed's
//! `WIDGET_CACHE_*` variables and `REDIS_CACHE_DB`) and [`LoadTimeouts::SETTINGS`]. Each row drives
//! parsing, the error for a bad value and its row in `docs/CONFIGURATION.md` (a test holds the docs
//! equal to [`settings_markdown`]).
//!
//! Seven of the seed's variables tune features of the core; their rows fill the core's option in
//! [`WidgetConfig::cache`] and, being applied after the core's own variables, win over the
//! `TIERCACHE_*` name of the same option.

use tiercache::{BareUnit, Setting, SettingValue, SettingsTable, SETTINGS_TABLE_HEADER};

use super::{LoadTimeouts, WidgetConfig};

/// Named apart from their rows because the checks between settings name them too.
pub(crate) const TARGET_RESPONSE_TIME: &str = "WIDGET_CACHE_TARGET_RESPONSE_TIME";
pub(crate) const MAX_RESPONSE_TIME: &str = "WIDGET_CACHE_MAX_RESPONSE_TIME";
pub(crate) const TARGET_HIT_RATE: &str = "WIDGET_CACHE_TARGET_HIT_RATE";
pub(crate) const MIN_HIT_RATE: &str = "WIDGET_CACHE_MIN_HIT_RATE";
pub(crate) const SOFT_TIMEOUT: &str = "WIDGET_CACHE_SOFT_TIMEOUT";
pub(crate) const HARD_TIMEOUT: &str = "WIDGET_CACHE_HARD_TIMEOUT";

impl WidgetConfig {
    /// The variables [`WidgetConfig::from_env`] reads over the core's ([`tiercache::Config::SETTINGS`]),
    /// in the order it applies them.
    ///
    /// ```
    /// let table = tiercache_widgets::WidgetConfig::SETTINGS.markdown();
    /// assert!(table.contains("| `WIDGET_CACHE_REALTIME_TTL` | duration; bare number = s | 60 s |"));
    /// ```
    pub const SETTINGS: SettingsTable<WidgetConfig> = SettingsTable::new(&[
        Setting {
            name: "REDIS_CACHE_DB",
            value: SettingValue::Whole { min: 0, max: 15, field: |w| &mut w.cache.redis_db },
            doc: "The Redis database used when the URL names none; sets the core's `redis_db`, winning over `TIERCACHE_REDIS_DB`.",
        },
        Setting {
            name: "WIDGET_CACHE_DEFAULT_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.cache.default_ttl),
            doc: "The lifetime of views the TTL table names no tier for (open ranges of totals, trends, organisation stats, participation); sets the core's `default_ttl`, winning over `TIERCACHE_DEFAULT_TTL`.",
        },
        Setting {
            name: "WIDGET_CACHE_REALTIME_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.ttl_tiers.realtime),
            doc: "The realtime tier: activity feeds and `today`.",
        },
        Setting {
            name: "WIDGET_CACHE_SHORT_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.ttl_tiers.short),
            doc: "The short tier, for views an override puts there.",
        },
        Setting {
            name: "WIDGET_CACHE_MEDIUM_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.ttl_tiers.medium),
            doc: "The medium tier: rankings over ranges still open.",
        },
        Setting {
            name: "WIDGET_CACHE_LONG_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.ttl_tiers.long),
            doc: "The long tier: ranges closed less than 7 days ago, while late refunds still come.",
        },
        Setting {
            name: "WIDGET_CACHE_DAILY_TTL",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.ttl_tiers.daily),
            doc: "The daily tier: ranges closed 7 days ago or more.",
        },
        Setting {
            name: "WIDGET_CACHE_REFRESH_AHEAD",
            value: SettingValue::Switch(|w| &mut w.cache.refresh_ahead),
            doc: "Whether a hit on an ageing view starts one background refresh; sets the core's `refresh_ahead`, winning over `TIERCACHE_REFRESH_AHEAD`.",
        },
        Setting {
            name: "WIDGET_CACHE_REFRESH_THRESHOLD",
            value: SettingValue::Fraction(|w| &mut w.cache.refresh_threshold),
            doc: "The share of its TTL a view has lived when it is refreshed ahead; sets the core's `refresh_threshold`, winning over `TIERCACHE_REFRESH_THRESHOLD`.",
        },
        Setting {
            name: "WIDGET_CACHE_LOCKING_ENABLED",
            value: SettingValue::Switch(|w| &mut w.cache.locking_enabled),
            doc: "Whether loads are coalesced across the fleet through Redis leases; sets the core's `locking_enabled`, winning over `TIERCACHE_LOCKING_ENABLED`.",
        },
        Setting {
            name: "WIDGET_CACHE_LOCK_TIMEOUT",
            value: SettingValue::Duration(BareUnit::Seconds, |w| &mut w.cache.lock_timeout),
            doc: "The lease of a load or named lock; sets the core's `lock_timeout`, winning over `TIERCACHE_LOCK_TIMEOUT`.",
        },
        Setting {
            name: "WIDGET_CACHE_LOCK_RETRIES",
            value: SettingValue::Whole { min: 0, max: 1000, field: |w| &mut w.cache.lock_retries },
            doc: "How often a held named lock is tried again; sets the core's `lock_retries`, winning over `TIERCACHE_LOCK_RETRIES`.",
        },
        Setting {
            name: TARGET_RESPONSE_TIME,
            value: SettingValue::Duration(BareUnit::Millis, |w| &mut w.targets.target_response_time),
            doc: "The mean response time that scores full marks for speed; no longer than `WIDGET_CACHE_MAX_RESPONSE_TIME`.",
        },
        Setting {
            name: MAX_RESPONSE_TIME,
            value: SettingValue::Duration(BareUnit::Millis, |w| &mut w.targets.max_response_time),
            doc: "The mean response time that scores nothing for speed and warns.",
        },
        Setting {
            name: TARGET_HIT_RATE,
            value: SettingValue::Percent(|w| &mut w.targets.target_hit_rate),
            doc: "The hit rate that scores full marks.",
        },
        Setting {
            name: MIN_HIT_RATE,
            value: SettingValue::Percent(|w| &mut w.targets.min_hit_rate),
            doc: "The hit rate below which a node warns; no higher than `WIDGET_CACHE_TARGET_HIT_RATE`.",
        },
        Setting {
            name: "WIDGET_CACHE_MAX_ERROR_RATE",
            value: SettingValue::Percent(|w| &mut w.targets.max_error_rate),
            doc: "The error rate above which a node is critical.",
        },
    ]);
}

impl LoadTimeouts {
    /// The variables [`LoadTimeouts::from_env`] reads.
    pub const SETTINGS: SettingsTable<LoadTimeouts> = SettingsTable::new(&[
        Setting {
            name: SOFT_TIMEOUT,
            value: SettingValue::Duration(BareUnit::Millis, |t| &mut t.soft),
            doc: "Past it, a view with a previous value is answered with it and the load finishes in the background; no longer than `WIDGET_CACHE_HARD_TIMEOUT`.",
        },
        Setting {
            name: HARD_TIMEOUT,
            value: SettingValue::Duration(BareUnit::Millis, |t| &mut t.hard),
            doc: "Past it, a view with no previous value fails with a timeout (the load still finishes and is stored).",
        },
    ]);
}

/// The widget layer's table of variables as markdown, [`WidgetConfig::SETTINGS`] then
/// [`LoadTimeouts::SETTINGS`]: the second table of `docs/CONFIGURATION.md`.
///
/// ```
/// let table = tiercache_widgets::settings_markdown();
/// assert!(table.contains("| `WIDGET_CACHE_TARGET_HIT_RATE` | percent, 0–100 | 95 % |"));
/// ```
pub fn settings_markdown() -> String {
    format!(
        "{SETTINGS_TABLE_HEADER}{}{}",
        WidgetConfig::SETTINGS.markdown_rows(),
        LoadTimeouts::SETTINGS.markdown_rows()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tiercache::ConfigError;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<WidgetConfig, ConfigError> {
        let mut c = WidgetConfig::default();
        c.apply_vars(tiercache_testkit::vars_lookup(vars))?;
        Ok(c)
    }

    #[test]
    fn a_settings_file_holds_the_cores_and_the_seeds_settings_in_their_forms() {
        let dir =
            std::env::temp_dir().join(format!("tiercache-widgets-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("widgets.toml");
        std::fs::write(
            &file,
            "TIERCACHE_NAMESPACE = \"shop\"\nwidget_cache_lock_retries = 5\nwidget_cache_long_ttl = \"2h\"\n",
        )
        .unwrap();
        let c = WidgetConfig::from_toml_file(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.cache.namespace, "shop");
        assert_eq!(c.cache.lock_retries, 5);
        assert_eq!(c.ttl_tiers.long, Duration::from_secs(7200));
    }

    #[test]
    fn seed_variables_are_read_with_their_units() {
        let c = from(&[
            ("WIDGET_CACHE_DEFAULT_TTL", "600"),
            ("WIDGET_CACHE_REALTIME_TTL", "30s"),
            ("WIDGET_CACHE_LONG_TTL", "2h"),
            ("WIDGET_CACHE_TARGET_RESPONSE_TIME", "200"),
            ("WIDGET_CACHE_TARGET_HIT_RATE", "97%"),
            ("WIDGET_CACHE_MAX_ERROR_RATE", "2"),
            ("WIDGET_CACHE_LOCKING_ENABLED", "false"),
            ("WIDGET_CACHE_REFRESH_THRESHOLD", "0.75"),
            ("REDIS_CACHE_DB", "3"),
        ])
        .expect("valid");
        assert_eq!(c.cache.default_ttl, Duration::from_secs(600));
        assert_eq!(c.ttl_tiers.realtime, Duration::from_secs(30));
        assert_eq!(c.ttl_tiers.long, Duration::from_secs(7200));
        assert_eq!(c.targets.target_response_time, Duration::from_millis(200));
        assert!((c.targets.target_hit_rate - 0.97).abs() < 1e-9);
        assert!((c.targets.max_error_rate - 0.02).abs() < 1e-9);
        assert!(!c.cache.locking_enabled);
        assert!((c.cache.refresh_threshold - 0.75).abs() < 1e-9);
        assert_eq!(c.cache.redis_db, 3);
    }

    #[test]
    fn each_bad_value_names_variable_value_and_allowed_forms() {
        tiercache_testkit::assert_each_refused(
            from,
            &[
                ("WIDGET_CACHE_LOCK_TIMEOUT", "soon", "duration"),
                ("WIDGET_CACHE_LOCK_RETRIES", "-1", "whole number"),
                ("WIDGET_CACHE_REFRESH_AHEAD", "maybe", "true/false"),
                ("WIDGET_CACHE_REFRESH_THRESHOLD", "1.5", "fraction"),
                ("WIDGET_CACHE_MIN_HIT_RATE", "120", "percentage"),
                ("REDIS_CACHE_DB", "99", "whole number"),
                ("WIDGET_CACHE_MEDIUM_TTL", "0", "positive"),
                ("TIERCACHE_ENTRY_LAYOUT", "3", "1 or 2"),
                ("WIDGET_CACHE_DAILY_TTL", "1d", "seconds (900)"),
                (
                    "WIDGET_CACHE_MAX_RESPONSE_TIME",
                    "fast",
                    "milliseconds (200)",
                ),
            ],
        );
    }

    #[test]
    fn inconsistent_targets_are_refused() {
        let err = from(&[("WIDGET_CACHE_MIN_HIT_RATE", "99")]).expect_err("min above target");
        assert!(err.to_string().contains("WIDGET_CACHE_MIN_HIT_RATE"));
        let err = from(&[("WIDGET_CACHE_TARGET_RESPONSE_TIME", "1s")]).expect_err("above max");
        let msg = err.to_string();
        assert!(
            msg.contains(TARGET_RESPONSE_TIME) && msg.contains(MAX_RESPONSE_TIME),
            "{msg}"
        );
    }

    #[test]
    fn a_seed_variable_wins_over_the_cores_name_for_the_same_option() {
        let c = from(&[
            ("TIERCACHE_LOCK_TIMEOUT", "10"),
            ("WIDGET_CACHE_LOCK_TIMEOUT", "20"),
            ("TIERCACHE_REDIS_DB", "4"),
        ])
        .expect("valid");
        assert_eq!(c.cache.lock_timeout, Duration::from_secs(20));
        assert_eq!(
            c.cache.redis_db, 4,
            "the core's name applies when the seed's is unset"
        );
    }

    #[test]
    fn the_core_reads_none_of_the_seed_variables() {
        let names = WidgetConfig::SETTINGS
            .rows()
            .iter()
            .map(|s| s.name)
            .chain(LoadTimeouts::SETTINGS.rows().iter().map(|s| s.name));
        for name in names {
            assert!(tiercache::Config::SETTINGS.get(name).is_none(), "{name}");
        }
        let mut core = tiercache::Config::default();
        core.apply_vars(|name| (name == "WIDGET_CACHE_LOCK_RETRIES").then(|| "many".to_owned()))
            .expect("not the core's to read");
    }

    #[test]
    fn the_tables_break_none_of_the_rules_of_a_settings_table() {
        assert_eq!(WidgetConfig::SETTINGS.problems(), Vec::<String>::new());
        assert_eq!(LoadTimeouts::SETTINGS.problems(), Vec::<String>::new());
    }

    #[test]
    fn each_duration_names_the_unit_of_a_bare_number() {
        let seconds = [
            "WIDGET_CACHE_DEFAULT_TTL",
            "WIDGET_CACHE_LOCK_TIMEOUT",
            "WIDGET_CACHE_DAILY_TTL",
        ];
        let millis = [TARGET_RESPONSE_TIME, MAX_RESPONSE_TIME];
        for (names, bare) in [
            (&seconds[..], BareUnit::Seconds),
            (&millis[..], BareUnit::Millis),
        ] {
            for name in names {
                let setting = WidgetConfig::SETTINGS.get(name).expect(name);
                assert!(
                    matches!(setting.value, SettingValue::Duration(unit, _) if unit == bare),
                    "{name}"
                );
            }
        }
        for setting in LoadTimeouts::SETTINGS.rows() {
            assert!(matches!(
                setting.value,
                SettingValue::Duration(BareUnit::Millis, _)
            ));
        }
    }

    #[test]
    fn every_row_is_the_seeds_and_one_sentence_in_one_table_cell() {
        let names: Vec<&str> = WidgetConfig::SETTINGS
            .rows()
            .iter()
            .map(|s| s.name)
            .chain(LoadTimeouts::SETTINGS.rows().iter().map(|s| s.name))
            .collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a name declared twice");
        assert!(names
            .iter()
            .all(|n| *n == "REDIS_CACHE_DB" || n.starts_with("WIDGET_CACHE_")));
        for line in settings_markdown().lines().skip(2) {
            assert_eq!(line.matches('|').count(), 5, "{line}");
            assert!(line.ends_with(". |"), "{line}");
        }
    }

    /// The markdown tables of `docs`, each as the lines that start with `|`.
    fn tables(docs: &str) -> Vec<String> {
        let mut tables = Vec::new();
        let mut current = String::new();
        for line in docs.lines() {
            if line.starts_with('|') {
                current.push_str(line);
                current.push('\n');
            } else if !current.is_empty() {
                tables.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            tables.push(current);
        }
        tables
    }

    #[test]
    fn the_docs_hold_exactly_the_rendered_tables() {
        let docs = include_str!("../../../../docs/CONFIGURATION.md");
        let rendered = [tiercache::Config::SETTINGS.markdown(), settings_markdown()];
        assert_eq!(
            tables(docs),
            rendered,
            "docs/CONFIGURATION.md must hold the core's table, then the widget layer's, as \
             rendered:\n\n{}\n{}",
            rendered[0],
            rendered[1]
        );
    }
}
