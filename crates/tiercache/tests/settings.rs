//! The core's settings table: each variable read in its unit, bad values refused with a clear
//! error, blanks kept at their defaults, and docs/CONFIGURATION.md holding the rendered table.
//! (An integration test, so the core's own sources need nothing of the test kit.)
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tiercache::{
    BareUnit, Config, ConfigError, EntryLayout, RefreshMode, SettingValue, ValueCodec,
};

/// The XFetch beta a mode named without one gets (`config/settings.rs`).
const DEFAULT_XFETCH_BETA: f64 = 1.0;

fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut c = Config::default();
    c.apply_vars(tiercache_testkit::vars_lookup(vars))?;
    Ok(c)
}

#[test]
fn variables_are_read_with_their_units() {
    let c = from(&[
        ("TIERCACHE_DEFAULT_TTL", "600"),
        ("TIERCACHE_LOCK_TIMEOUT", "2m"),
        ("TIERCACHE_RESPONSE_TIMEOUT", "200"),
        ("TIERCACHE_FAIL_SAFE_MAX", "2h"),
        ("TIERCACHE_LOCKING_ENABLED", "false"),
        ("TIERCACHE_REFRESH_THRESHOLD", "0.75"),
        ("TIERCACHE_REDIS_DB", "3"),
        ("TIERCACHE_REPLICA_ACKS", "2"),
        ("TIERCACHE_L1_MAX_BYTES", "1_048_576"),
        ("TIERCACHE_ENTRY_LAYOUT", "1"),
        ("TIERCACHE_VALUE_CODEC", " Bincode "),
    ])
    .expect("valid");
    assert_eq!(c.default_ttl, Duration::from_secs(600));
    assert_eq!(c.lock_timeout, Duration::from_secs(120));
    assert_eq!(c.response_timeout, Duration::from_millis(200));
    assert_eq!(c.fail_safe_max, Duration::from_secs(7200));
    assert!(!c.locking_enabled);
    assert!((c.refresh_threshold - 0.75).abs() < 1e-9);
    assert_eq!(c.redis_db, 3);
    assert_eq!(c.replica_acks, Some(2));
    assert_eq!(c.l1_max_bytes, 1 << 20);
    assert_eq!(c.entry_layout, EntryLayout::Hash);
    assert_eq!(c.value_codec, ValueCodec::Bincode);
}

#[test]
fn each_bad_value_names_variable_value_and_allowed_forms() {
    tiercache_testkit::assert_each_refused(
        from,
        &[
            ("TIERCACHE_LOCK_TIMEOUT", "soon", "duration"),
            ("TIERCACHE_LOCK_RETRIES", "-1", "whole number"),
            ("TIERCACHE_REFRESH_AHEAD", "maybe", "true/false"),
            ("TIERCACHE_REFRESH_THRESHOLD", "1.5", "fraction"),
            ("TIERCACHE_REDIS_DB", "99", "whole number from 0 to 15"),
            ("TIERCACHE_DEFAULT_TTL", "0", "positive"),
            ("TIERCACHE_ENTRY_LAYOUT", "3", "1 or 2"),
            ("TIERCACHE_VALUE_CODEC", "json", "bincode, or postcard"),
            ("TIERCACHE_REFRESH_MODE", "sometimes", "threshold or xfetch"),
            ("TIERCACHE_XFETCH_BETA", "0", "above 0"),
            (
                "TIERCACHE_MAX_VALUE_BYTES",
                "1GiB",
                "whole number from 64 to 536870912",
            ),
            ("TIERCACHE_CONNECT_TIMEOUT", "3d", "milliseconds (200)"),
            ("TIERCACHE_FAIL_SAFE_MAX", "-5", "seconds (900)"),
        ],
    );
}

#[test]
fn a_bare_number_is_read_in_the_unit_the_table_names() {
    for setting in Config::SETTINGS.rows() {
        let SettingValue::Duration(bare, field) = setting.value else {
            continue;
        };
        let mut c = from(&[(setting.name, "7")]).expect(setting.name);
        let want = match bare {
            BareUnit::Seconds => Duration::from_secs(7),
            BareUnit::Millis => Duration::from_millis(7),
        };
        assert_eq!(*field(&mut c), want, "{}", setting.name);
        let unit = if bare == BareUnit::Seconds {
            "= s"
        } else {
            "= ms"
        };
        assert!(setting.form().ends_with(unit), "{}", setting.name);
    }
}

#[cfg(feature = "postcard")]
#[test]
fn postcard_is_a_value_codec_where_it_is_built_in() {
    let c = from(&[("TIERCACHE_VALUE_CODEC", "Postcard")]).expect("valid");
    assert_eq!(c.value_codec, ValueCodec::Postcard);
}

#[test]
fn xfetch_beta_selects_xfetch_whatever_the_mode() {
    let c = from(&[
        ("TIERCACHE_REFRESH_MODE", "threshold"),
        ("TIERCACHE_XFETCH_BETA", "2.5"),
    ])
    .expect("valid");
    assert_eq!(c.refresh_mode, RefreshMode::XFetch { beta: 2.5 });
    let c = from(&[("TIERCACHE_REFRESH_MODE", "XFetch")]).expect("valid");
    assert_eq!(
        c.refresh_mode,
        RefreshMode::XFetch {
            beta: DEFAULT_XFETCH_BETA
        }
    );
}

#[test]
fn blank_values_keep_the_default() {
    assert_eq!(
        from(&[("TIERCACHE_LOCK_TIMEOUT", " "), ("REDIS_URL", "")]).expect("valid"),
        Config::default()
    );
}

#[test]
fn the_core_reads_only_its_own_variables() {
    for setting in Config::SETTINGS.rows() {
        let connection = [
            "REDIS_URL",
            "REDIS_CLUSTER_URLS",
            "REDIS_USERNAME",
            "REDIS_PASSWORD",
        ];
        assert!(
            setting.name.starts_with("TIERCACHE_") || connection.contains(&setting.name),
            "{}",
            setting.name
        );
    }
}

#[test]
fn the_table_passes_its_self_check() {
    // Names declared once, one-sentence docs, cells that keep their markdown row, whole-number
    // bounds the fields can hold.
    let problems = Config::SETTINGS.problems();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_docs_hold_the_rendered_table() {
    let docs = include_str!("../../../docs/CONFIGURATION.md");
    let table = Config::SETTINGS.markdown();
    assert!(
        docs.contains(&table),
        "docs/CONFIGURATION.md must hold the core's table as rendered:\n{table}"
    );
}
