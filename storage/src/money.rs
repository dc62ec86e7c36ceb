//! Exact money: prices and revenues in fixed point, never floating point.
//!
//! A price is a whole number of ten-thousandths (4 decimal places), so
//! 7.30 is stored as 73 000 and 4 × 7.30 adds up to exactly 29.2.

use std::fmt;

use crate::error::Rejection;

/// Decimal places a price keeps. A price with more is refused rather than
/// rounded, so that no sender loses money silently.
pub const PRICE_DECIMALS: u32 = 4;

/// Fixed-point units in one currency unit.
const UNITS_PER_WHOLE: u64 = 10u64.pow(PRICE_DECIMALS);

/// Largest accepted price, in currency units.
pub const MAX_PRICE: u64 = 1_000_000_000;

/// A unit price in ten-thousandths of a currency unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(u64);

impl Price {
    /// Parses decimal text as a sender writes it: `7.3`, `7.30`, `0.5`,
    /// `1e2` or `7.3E0`. Refuses negatives, more than 4 decimal places and
    /// prices over [`MAX_PRICE`].
    ///
    /// ```
    /// use sales_storage::Price;
    /// assert_eq!(Price::parse("7.30").unwrap().to_string(), "7.3");
    /// assert!(Price::parse("7.12345").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Price, Rejection> {
        let units =
            parse_decimal(text).map_err(|rule| Rejection::new("price", text, rule))?;
        Price::from_units(units).map_err(|rule| Rejection::new("price", text, rule))
    }

    /// Recovers the price a sender meant from a 32-bit float, as the seed's
    /// protocol sends it: the shortest decimal that rounds to the same float
    /// (7.300000190734863 becomes 7.3).
    pub fn from_f32(price: f32) -> Result<Price, Rejection> {
        if !price.is_finite() {
            return Err(Rejection::new(
                "price",
                &price.to_string(),
                "is not a finite number",
            ));
        }
        // Rust prints the shortest decimal that parses back to the same f32.
        Price::parse(&price.to_string())
    }

    /// Like [`Price::from_f32`] for a 64-bit value that was once an f32,
    /// such as the seed's database file, which printed floats as doubles.
    /// Returns the price and whether the text needed recovering.
    pub fn recover_from_f64(price: f64) -> Result<(Price, bool), Rejection> {
        let direct = Price::parse(&price.to_string());
        let narrowed = price as f32;
        if f64::from(narrowed) != price {
            // Not an f32 widened to f64: the sender really wrote this value.
            return direct.map(|exact| (exact, false));
        }

        // An f32 widened to f64: read it as the seed's server did, as the
        // shortest decimal of the f32 (600000.125 is 600000.1, as a seed
        // client sending 600000.1 meant).
        let recovered = Price::from_f32(narrowed)?;
        Ok((recovered, direct.ok() != Some(recovered)))
    }

    /// Builds a price from its fixed-point units.
    pub fn from_units(units: u64) -> Result<Price, String> {
        if units > MAX_PRICE * UNITS_PER_WHOLE {
            return Err(format!("must be at most {MAX_PRICE}"));
        }
        Ok(Price(units))
    }

    /// The price in ten-thousandths.
    pub fn units(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, u128::from(self.0), false)
    }
}

/// A sum of quantity × price, exact, in ten-thousandths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revenue(u128);

impl Revenue {
    /// Revenue of `quantity` units at `price`.
    pub fn of(quantity: u64, price: Price) -> Revenue {
        Revenue(u128::from(quantity) * u128::from(price.0))
    }

    /// Wraps a stored sum of ten-thousandths.
    pub fn from_units(units: u128) -> Revenue {
        Revenue(units)
    }

    /// The revenue in ten-thousandths.
    pub fn units(self) -> u128 {
        self.0
    }

    /// Adds two revenues. Saturates instead of wrapping: reaching 2^128
    /// ten-thousandths would take more sales than any disk holds.
    pub fn plus(self, other: Revenue) -> Revenue {
        Revenue(self.0.saturating_add(other.0))
    }

    /// The exact decimal text for JSON, always with a decimal point so that
    /// readers expecting the seed's floats see one: `29.2`, `30.0`.
    pub fn to_json_number(self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = fmt::write(&mut text, format_args!("{}", JsonRevenue(self)));
        text
    }
}

impl fmt::Display for Revenue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0, false)
    }
}

struct JsonRevenue(Revenue);

impl fmt::Display for JsonRevenue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(f, self.0 .0, true)
    }
}

/// Writes fixed-point ten-thousandths as the shortest exact decimal.
fn write_fixed(f: &mut fmt::Formatter<'_>, units: u128, keep_point: bool) -> fmt::Result {
    let per_whole = u128::from(UNITS_PER_WHOLE);
    let whole = units / per_whole;
    let fraction = units % per_whole;
    if fraction == 0 {
        return if keep_point {
            write!(f, "{whole}.0")
        } else {
            write!(f, "{whole}")
        };
    }

    let digits = format!("{fraction:0width$}", width = PRICE_DECIMALS as usize);
    write!(f, "{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a non-negative decimal (JSON number syntax, leading zeros and a
/// leading `+` on the exponent allowed) into ten-thousandths, exactly.
fn parse_decimal(text: &str) -> Result<u64, String> {
    if text.len() > MAX_PRICE_TEXT {
        return Err(format!("is longer than {MAX_PRICE_TEXT} characters"));
    }
    if let Some(magnitude) = text.strip_prefix('-') {
        // Minus zero is zero; anything else below zero is refused.
        return match parse_decimal(magnitude) {
            Ok(0) => Ok(0),
            _ => Err("must not be negative".into()),
        };
    }
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "nan" | "inf" | "infinity" | "+inf" | "+infinity"
    ) {
        return Err("is not a finite number".into());
    }

    let (mantissa, exponent) = split_exponent(text)?;
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err("is not a decimal number such as 7.30".into());
    }
    if mantissa.ends_with('.') {
        return Err(
            "is not a decimal number such as 7.30 (digits must follow the point)".into(),
        );
    }

    // The value is digits × 10^(exponent - fraction length); shift it to
    // ten-thousandths and refuse any non-zero digit that would fall off.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let shift = i64::from(PRICE_DECIMALS)
        .saturating_add(exponent)
        .saturating_sub(fraction.len() as i64);
    scale_digits(digits, shift)
}

/// Longest accepted price text. A real price needs a dozen characters; a
/// limit keeps the arithmetic below exact and cheap.
const MAX_PRICE_TEXT: usize = 64;

/// Splits `1.5e3` into (`1.5`, 3).
fn split_exponent(text: &str) -> Result<(&str, i64), String> {
    let Some(at) = text.find(['e', 'E']) else {
        return Ok((text, 0));
    };
    let (mantissa, exponent) = (&text[..at], &text[at + 1..]);
    let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Err("has a malformed exponent".into());
    }
    // An exponent beyond i64 is refused; the shift below saturates.
    let exponent: i64 = exponent
        .parse()
        .map_err(|_| "has a malformed exponent".to_string())?;
    Ok((mantissa, exponent))
}

/// Computes `digits × 10^shift` as an integer, refusing lost precision.
fn scale_digits(digits: &str, shift: i64) -> Result<u64, String> {
    let too_large = || format!("must be at most {MAX_PRICE}");
    if digits.is_empty() {
        return Ok(0);
    }

    let kept = if shift >= 0 {
        if shift.saturating_add(digits.len() as i64) > 20 {
            return Err(too_large());
        }
        format!("{digits}{}", "0".repeat(shift as usize))
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).unwrap_or(usize::MAX);
        if cut >= digits.len() || digits[digits.len() - cut..].bytes().any(|b| b != b'0')
        {
            return Err(format!(
                "has more than {PRICE_DECIMALS} decimal places; round it to {PRICE_DECIMALS} \
                 or fewer"
            ));
        }
        digits[..digits.len() - cut].to_string()
    };
    kept.parse::<u64>().map_err(|_| too_large())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(text: &str) -> u64 {
        Price::parse(text).unwrap().units()
    }

    #[test]
    fn parses_plain_decimals_exactly() {
        assert_eq!(units("7.3"), 73_000);
        assert_eq!(units("7.30"), 73_000);
        assert_eq!(units("0"), 0);
        assert_eq!(units("0.0001"), 1);
        assert_eq!(units("007.5"), 75_000);
        assert_eq!(units("1000000000"), 10_000_000_000_000);
    }

    #[test]
    fn parses_exponent_notation() {
        assert_eq!(units("7.3e0"), 73_000);
        assert_eq!(units("73E-1"), 73_000);
        assert_eq!(units("1e2"), 1_000_000);
        assert_eq!(units("1.5e+1"), 150_000);
        assert_eq!(units("0e999999999999"), 0);
        assert_eq!(units("100000e-5"), 10_000);
        assert_eq!(units("-0"), 0);
        assert_eq!(units("-0.00"), 0);
    }

    #[test]
    fn refuses_what_it_cannot_keep_exactly() {
        for (text, rule) in [
            ("-1", "negative"),
            ("-0.5", "negative"),
            ("7.12345", "decimal places"),
            ("1e-5", "decimal places"),
            ("1000000000.0001", "at most"),
            ("1e10", "at most"),
            ("1e999999999999", "at most"),
            ("NaN", "finite"),
            ("Infinity", "finite"),
            ("", "decimal number"),
            ("7.", "digits must follow"),
            (".5", "decimal number"),
            ("7,3", "decimal number"),
            ("0x10", "decimal number"),
            ("1e", "exponent"),
            (" 7.3", "decimal number"),
            ("7.3 ", "decimal number"),
            ("1e-99999999999999999999", "exponent"),
            ("1e9223372036854775807", "at most"),
            ("1e-9223372036854775808", "decimal places"),
            (&format!("1{}e-1000004", "0".repeat(100)), "longer than 64"),
        ] {
            let rejection = Price::parse(text).expect_err(text);
            assert_eq!(rejection.field, "price");
            assert!(rejection.rule.contains(rule), "{text}: {}", rejection.rule);
        }
    }

    #[test]
    fn recovers_the_decimal_behind_a_float() {
        assert_eq!(Price::from_f32(7.3).unwrap().units(), 73_000);
        assert_eq!(Price::from_f32(0.1).unwrap().units(), 1_000);
        assert_eq!(Price::from_f32(19.99).unwrap().units(), 199_900);
        assert!(Price::from_f32(f32::NAN).is_err());
        assert!(Price::from_f32(f32::INFINITY).is_err());
        assert!(Price::from_f32(-1.0).is_err());
    }

    #[test]
    fn recovers_floats_widened_to_double() {
        let widened = f64::from(7.3f32);
        assert_eq!(widened, 7.300000190734863);
        assert_eq!(
            Price::recover_from_f64(widened).unwrap(),
            (Price(73_000), true)
        );
        assert_eq!(
            Price::recover_from_f64(7.3).unwrap(),
            (Price(73_000), false)
        );
        assert!(Price::recover_from_f64(7.123456789).is_err());
        let large = f64::from(600_000.1f32);
        assert_eq!(large, 600_000.125);
        assert_eq!(
            Price::recover_from_f64(large).unwrap(),
            (Price(6_000_001_000), true)
        );
        assert_eq!(
            Price::recover_from_f64(7.5).unwrap(),
            (Price(75_000), false)
        );
    }

    #[test]
    fn revenue_is_exact_and_prints_a_point() {
        let revenue = Revenue::of(4, Price::parse("7.3").unwrap());
        assert_eq!(revenue.to_json_number(), "29.2");
        assert_eq!(
            Revenue::of(3, Price::parse("10").unwrap()).to_json_number(),
            "30.0"
        );
        assert_eq!(
            Revenue::of(3, Price::parse("0.0001").unwrap()).to_string(),
            "0.0003"
        );
    }
}
