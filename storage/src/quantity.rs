//! Quantities: how many units a sale sold.

use crate::error::Rejection;

/// Largest quantity in one sale. Far above any till's real sale, low
/// enough that a typo (an extra six zeros) is caught rather than counted.
pub const MAX_QUANTITY: u64 = 1_000_000;

/// A validated quantity, 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    /// Checks a quantity received as a number.
    pub fn new(quantity: i64) -> Result<Quantity, Rejection> {
        if quantity < 1 {
            return Err(Rejection::new(
                "quantity",
                &quantity.to_string(),
                "must be at least 1",
            ));
        }
        if quantity as u64 > MAX_QUANTITY {
            return Err(Rejection::new(
                "quantity",
                &quantity.to_string(),
                format!("must be at most {MAX_QUANTITY}"),
            ));
        }
        Ok(Quantity(quantity as u32))
    }

    /// Checks a quantity written as JSON number text. Only whole numbers
    /// written without a point or exponent are accepted: `5`, not `5.0`.
    pub fn parse(text: &str) -> Result<Quantity, Rejection> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Rejection::new(
                "quantity",
                text,
                "must be a whole number such as 5 (no decimal point or exponent)",
            ));
        }
        match text.parse::<i64>() {
            Ok(quantity) => Quantity::new(quantity),
            Err(_) if text.starts_with('-') => {
                Err(Rejection::new("quantity", text, "must be at least 1"))
            }
            Err(_) => Err(Rejection::new(
                "quantity",
                text,
                format!("must be at most {MAX_QUANTITY}"),
            )),
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_range() {
        assert_eq!(Quantity::new(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse("1000000").unwrap().get(), 1_000_000);
    }

    #[test]
    fn refuses_zero_negative_huge_and_fractional() {
        for (text, rule) in [
            ("0", "at least 1"),
            ("-3", "at least 1"),
            ("1000001", "at most"),
            ("99999999999999999999999", "at most"),
            ("-99999999999999999999999", "at least 1"),
            ("5.0", "whole number"),
            ("5e0", "whole number"),
            ("", "whole number"),
        ] {
            let rejection = Quantity::parse(text).expect_err(text);
            assert_eq!(rejection.field, "quantity");
            assert!(rejection.rule.contains(rule), "{text}: {}", rejection.rule);
        }
    }
}
