//! Money as it arrives in a request: the decimal text of a JSON number (or string), read exactly
//! into cents. A binary float would turn `0.29` into `0.28999…` and decide the answer by rounding.

/// The largest amount accepted, in cents (ten million in the currency's units): a guard against a
/// typo the size of a bank, and far below any overflow.
pub const MAX_CENTS: i64 = 1_000_000_000;

/// Reads `text` (`12`, `12.5`, `12.50`, `1.25e1`) as a positive amount of cents.
///
/// Refused, each with a message that says why: not a number, zero or negative, more than two
/// decimals (`12.345`), larger than [`MAX_CENTS`].
pub fn parse_cents(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let not_a_number = || format!("{text:?} is not a decimal amount such as 12.50");
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = unsigned[at + 1..].parse().map_err(|_| not_a_number())?;
            (&unsigned[..at], exp)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(not_a_number());
    }
    // The value is digits × 10^(exponent − fraction length); in cents, the power is 2 more.
    let digits: String = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let power = i64::from(exponent) - fraction.len() as i64 + 2;
    let significant = digits.trim_end_matches('0');
    let trailing_zeros = (digits.len() - significant.len()) as i64;
    if significant.is_empty() {
        return Err(format!("the amount must be more than 0, not {text}"));
    }
    if negative {
        return Err(format!("the amount must be more than 0, not {text}"));
    }
    if power + trailing_zeros < 0 {
        return Err(format!(
            "{text} has more than two decimals; amounts are in cents"
        ));
    }
    let too_large = || format!("{text} is larger than the maximum of {}", MAX_CENTS / 100);
    let shift = u32::try_from(power + trailing_zeros).map_err(|_| too_large())?;
    if significant.len() + shift as usize > 18 {
        return Err(too_large());
    }
    let cents = significant
        .parse::<i64>()
        .ok()
        .and_then(|s| 10_i64.checked_pow(shift).and_then(|p| s.checked_mul(p)))
        .ok_or_else(too_large)?;
    if cents > MAX_CENTS {
        return Err(too_large());
    }
    Ok(cents)
}

/// Cents as a decimal number of units, for JSON answers (`1250` → `12.5`).
pub fn cents_to_units(cents: i64) -> f64 {
    cents as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_becomes_exact_cents() {
        for (text, cents) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.29", 29),
            ("0.01", 1),
            ("12.500", 1250),
            ("1.25e1", 1250),
            ("125E-2", 125),
            ("+3", 300),
            ("10000000", MAX_CENTS),
        ] {
            assert_eq!(parse_cents(text), Ok(cents), "{text}");
        }
    }

    #[test]
    fn bad_amounts_say_why() {
        for (text, why) in [
            ("0", "more than 0"),
            ("0.00", "more than 0"),
            ("-5", "more than 0"),
            ("12.345", "two decimals"),
            ("1e-3", "two decimals"),
            ("10000000.01", "maximum"),
            ("1e400", "maximum"),
            ("99999999999999999999999", "maximum"),
            ("twelve", "not a decimal"),
            ("1.2.3", "not a decimal"),
            (".", "not a decimal"),
            ("", "not a decimal"),
            ("1e", "not a decimal"),
        ] {
            let err = parse_cents(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
