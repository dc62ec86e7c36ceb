//! A sale: the one fact the service records.

use xxhash_rust::xxh3::xxh3_128;

use crate::date::SaleDate;
use crate::error::Rejection;
use crate::item::Item;
use crate::money::{Price, Revenue};
use crate::quantity::Quantity;

/// A validated sale. The only ways to build one check every field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sale {
    pub item: Item,
    pub quantity: Quantity,
    pub price: Price,
    pub date: SaleDate,
}

impl Sale {
    /// Validates a sale received as text fields, as the versioned gRPC
    /// contract carries it. Fields are checked in a fixed order (item,
    /// quantity, price, date) and the first fault is reported.
    pub fn from_fields(
        item: &str,
        quantity: i64,
        price: &str,
        date: &str,
    ) -> Result<Sale, Rejection> {
        Ok(Sale {
            item: Item::parse(item)?,
            quantity: Quantity::new(quantity)?,
            price: Price::parse(price)?,
            date: SaleDate::parse(date)?,
        })
    }

    /// What this sale adds to revenue.
    pub fn revenue(&self) -> Revenue {
        Revenue::of(u64::from(self.quantity.get()), self.price)
    }

    /// A fingerprint of the sale's content, used to tell a retry (same id,
    /// same content) from a conflict (same id, other content).
    pub(crate) fn fingerprint(&self) -> u128 {
        let text = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            self.item,
            self.quantity.get(),
            self.price.units(),
            self.date
        );
        xxh3_128(text.as_bytes())
    }
}

/// Longest client-chosen id, in bytes.
pub const MAX_ID_BYTES: usize = 200;

/// A client-chosen id that makes a sale (or a batch) idempotent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SaleId(String);

impl SaleId {
    /// Checks an id: 1 to 200 bytes, no control characters. An empty text
    /// means "no id" and gives `None`.
    pub fn parse_optional(
        field: &'static str,
        id: &str,
    ) -> Result<Option<SaleId>, Rejection> {
        if id.is_empty() {
            return Ok(None);
        }
        if id.len() > MAX_ID_BYTES {
            return Err(Rejection::new(
                field,
                id,
                format!(
                    "is {} bytes long; at most {MAX_ID_BYTES} are allowed",
                    id.len()
                ),
            ));
        }
        if id.chars().any(crate::item::is_hidden) {
            return Err(Rejection::new(
                field,
                id,
                "must not contain control or invisible characters",
            ));
        }
        Ok(Some(SaleId(id.to_string())))
    }

    pub(crate) fn from_stored(id: String) -> SaleId {
        SaleId(id)
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A sale on its way into the store, with its optional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSale {
    pub sale: Sale,
    pub id: Option<SaleId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_every_field_in_order() {
        let sale =
            Sale::from_fields("papaya", 5, "7.3", "2023-01-31T06:03:17+00:00").unwrap();
        assert_eq!(sale.revenue().to_json_number(), "36.5");

        let rejection = Sale::from_fields("", 0, "-1", "bad").unwrap_err();
        assert_eq!(rejection.field, "item");
        let rejection = Sale::from_fields("papaya", 0, "-1", "bad").unwrap_err();
        assert_eq!(rejection.field, "quantity");
        let rejection = Sale::from_fields("papaya", 1, "-1", "bad").unwrap_err();
        assert_eq!(rejection.field, "price");
    }

    #[test]
    fn fingerprint_sees_every_field() {
        let base =
            Sale::from_fields("papaya", 5, "7.3", "2023-01-31T06:03:17+00:00").unwrap();
        let variants = [
            Sale::from_fields("mango", 5, "7.3", "2023-01-31T06:03:17+00:00").unwrap(),
            Sale::from_fields("papaya", 6, "7.3", "2023-01-31T06:03:17+00:00").unwrap(),
            Sale::from_fields("papaya", 5, "7.31", "2023-01-31T06:03:17+00:00").unwrap(),
            Sale::from_fields("papaya", 5, "7.3", "2023-01-31T06:03:17+01:00").unwrap(),
        ];
        for variant in variants {
            assert_ne!(base.fingerprint(), variant.fingerprint());
        }
        let same =
            Sale::from_fields("papaya", 5, "7.30", "2023-01-31T06:03:17Z").unwrap();
        assert_eq!(base.fingerprint(), same.fingerprint());
    }

    #[test]
    fn ids_are_optional_and_bounded() {
        assert_eq!(SaleId::parse_optional("id", "").unwrap(), None);
        assert!(SaleId::parse_optional("id", "till-4/000123")
            .unwrap()
            .is_some());
        assert!(SaleId::parse_optional("id", &"x".repeat(201)).is_err());
        assert!(SaleId::parse_optional("id", "a\nb").is_err());
    }
}
