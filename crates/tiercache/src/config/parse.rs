//! The text forms settings are written in, read into values, and values written back as the docs
//! show a default. [`crate::SettingValue`] says which form a setting takes; nothing else parses.

use std::time::Duration;

use super::error::ConfigError;

/// The unit a bare number stands for in a duration setting (`900` is 900 s with
/// [`BareUnit::Seconds`]); a number with a unit (`250ms`, `30s`, `15m`, `2h`) means the same in either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareUnit {
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
}

/// A whole number; `_` may group digits (`100_000`).
pub(crate) fn whole(text: &str) -> Option<u64> {
    text.trim().replace('_', "").parse().ok()
}

/// `true`/`false`, also `1`/`0`, `yes`/`no`, `on`/`off`, in any case.
pub(crate) fn switch(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A number strictly between 0 and 1 (`0.8`).
pub(crate) fn fraction(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| *f > 0.0 && *f < 1.0)
}

/// A percentage from 0 to 100 with or without `%` (`95`, `95%`), as a fraction.
pub(crate) fn percent(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    trimmed
        .strip_suffix('%')
        .unwrap_or(trimmed)
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .map(|p| p / 100.0)
}

/// A positive duration: a bare number in `bare` units, or a number with `ms`, `s`, `m` or `h`.
pub(crate) fn duration(text: &str, bare: BareUnit) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let duration = match (unit.trim(), bare) {
        ("", BareUnit::Seconds) | ("s", _) => Duration::from_secs(n),
        ("", BareUnit::Millis) | ("ms", _) => Duration::from_millis(n),
        ("m", _) => Duration::from_secs(n.checked_mul(60)?),
        ("h", _) => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    };
    (!duration.is_zero()).then_some(duration)
}

/// What a bad duration's error says is allowed.
pub(crate) fn duration_expected(bare: BareUnit) -> &'static str {
    match bare {
        BareUnit::Seconds => {
            "a positive duration: seconds (900) or with a unit (250ms, 30s, 15m, 2h)"
        }
        BareUnit::Millis => {
            "a positive duration: milliseconds (200) or with a unit (250ms, 30s, 15m, 2h)"
        }
    }
}

/// A duration as a person writes it: `500 ms`, `30 s`, `1 h`, `24 h`.
pub(crate) fn show_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 || d.is_zero() {
        format!("{} ms", d.as_millis())
    } else if d.as_secs().is_multiple_of(3600) {
        format!("{} h", d.as_secs() / 3600)
    } else {
        format!("{} s", d.as_secs())
    }
}

/// A whole number with thousands separated: `100,000`.
pub(crate) fn show_whole(n: u64) -> String {
    let digits = n.to_string();
    let mut shown = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            shown.push(',');
        }
        shown.push(digit);
    }
    shown
}

/// A size in bytes: whole mebibytes as `16 MiB`, anything else counted (`1,024 bytes`).
pub(crate) fn show_bytes(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", show_whole(n / MIB))
    } else {
        format!("{} bytes", show_whole(n))
    }
}

/// A fraction as a percentage, `0.95` as `95 %`: rounded to a thousandth of a percent, since
/// `0.9 * 100.0` is not exactly 90 in binary.
pub(crate) fn show_percent(fraction: f64) -> String {
    format!("{} %", (fraction * 100_000.0).round() / 1000.0)
}

/// Parses a duration setting as [`crate::Config::from_env`] parses its response times: milliseconds
/// when bare (`200`), or with a unit (`250ms`, `30s`, `15m`, `2h`); zero is refused. For layers above
/// the cache that read settings of their own without a [`crate::SettingsTable`], so every duration
/// variable reads alike.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tiercache::parse_duration_setting("X_TIMEOUT", "2s").unwrap(), Duration::from_secs(2));
/// assert_eq!(tiercache::parse_duration_setting("X_TIMEOUT", "250").unwrap(), Duration::from_millis(250));
/// assert!(tiercache::parse_duration_setting("X_TIMEOUT", "soon").unwrap_err().to_string().contains("X_TIMEOUT"));
/// ```
pub fn parse_duration_setting(var: &str, value: &str) -> Result<Duration, ConfigError> {
    duration(value, BareUnit::Millis).ok_or_else(|| ConfigError::InvalidValue {
        var: var.to_owned(),
        value: value.to_owned(),
        expected: duration_expected(BareUnit::Millis).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_duration_is_read_in_its_settings_unit() {
        assert_eq!(
            duration("900", BareUnit::Seconds),
            Some(Duration::from_secs(900))
        );
        assert_eq!(
            duration("200", BareUnit::Millis),
            Some(Duration::from_millis(200))
        );
        for bare in [BareUnit::Seconds, BareUnit::Millis] {
            assert_eq!(duration("250ms", bare), Some(Duration::from_millis(250)));
            assert_eq!(duration(" 30s ", bare), Some(Duration::from_secs(30)));
            assert_eq!(duration("15m", bare), Some(Duration::from_secs(900)));
            assert_eq!(duration("2h", bare), Some(Duration::from_secs(7200)));
            for refused in [
                "0",
                "0s",
                "soon",
                "-1",
                "1.5s",
                "3d",
                "",
                "99999999999999999999h",
            ] {
                assert_eq!(duration(refused, bare), None, "{refused:?}");
            }
        }
    }

    #[test]
    fn other_forms_accept_what_their_errors_promise() {
        assert_eq!(whole(" 100_000 "), Some(100_000));
        assert_eq!(whole("-1"), None);
        assert_eq!(switch("ON"), Some(true));
        assert_eq!(switch("no"), Some(false));
        assert_eq!(switch("maybe"), None);
        assert_eq!(fraction("0.75"), Some(0.75));
        assert_eq!(fraction("1"), None);
        assert_eq!(fraction("0"), None);
        assert_eq!(percent("95%"), Some(0.95));
        assert_eq!(percent(" 2 "), Some(0.02));
        assert_eq!(percent("120"), None);
    }

    #[test]
    fn defaults_are_shown_as_a_person_writes_them() {
        assert_eq!(show_duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(show_duration(Duration::from_secs(900)), "900 s");
        assert_eq!(show_duration(Duration::from_secs(86_400)), "24 h");
        assert_eq!(show_whole(1_000_000), "1,000,000");
        assert_eq!(show_whole(15), "15");
        assert_eq!(show_bytes(256 << 20), "256 MiB");
        assert_eq!(show_bytes(1024), "1,024 bytes");
        assert_eq!(show_percent(0.9), "90 %");
        assert_eq!(show_percent(0.955), "95.5 %");
    }
}
