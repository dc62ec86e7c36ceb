//! Item names: the key every statistic is grouped by.

use std::fmt;

use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::error::Rejection;

/// Longest item name, in characters after normalisation.
pub const MAX_ITEM_CHARS: usize = 200;

/// A validated item name in Unicode NFC.
///
/// Normalising is what keeps one item from splitting in two: "café" typed
/// with a combining accent (NFD) and with a precomposed "é" (NFC) are the
/// same item. Case is kept as sent: "Papaya" and "papaya" are two items.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item(String);

impl Item {
    /// Validates and normalises an item name.
    ///
    /// ```
    /// use sales_storage::Item;
    /// assert_eq!(Item::parse("cafe\u{301}").unwrap().as_str(), "caf\u{e9}");
    /// assert!(Item::parse(" papaya").is_err());
    /// ```
    pub fn parse(name: &str) -> Result<Item, Rejection> {
        let reject = |rule: &str| Err(Rejection::new("item", name, rule));
        if name.trim().is_empty() {
            return reject("must not be empty or only white space");
        }
        if name.chars().any(char::is_control) {
            return reject(
                "must not contain control characters (tabs, newlines, NUL, …)",
            );
        }
        if name.trim() != name {
            return reject("must not start or end with white space");
        }

        let normal = match is_nfc_quick(name.chars()) {
            IsNormalized::Yes => name.to_string(),
            _ => name.nfc().collect(),
        };
        let length = normal.chars().count();
        if length > MAX_ITEM_CHARS {
            return reject(&format!(
                "is {length} characters long; at most {MAX_ITEM_CHARS} are allowed"
            ));
        }
        Ok(Item(normal))
    }

    /// Wraps a name read back from the store, where it was validated on the
    /// way in.
    pub(crate) fn from_stored(name: String) -> Item {
        Item(name)
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfc_and_nfd_spellings_are_one_item() {
        let composed = Item::parse("caf\u{e9}").unwrap();
        let decomposed = Item::parse("cafe\u{301}").unwrap();
        assert_eq!(composed, decomposed);
    }

    #[test]
    fn keeps_case_and_inner_spaces() {
        assert_eq!(
            Item::parse("Blood Orange").unwrap().as_str(),
            "Blood Orange"
        );
    }

    #[test]
    fn refuses_names_that_would_confuse_reports() {
        let long = "x".repeat(10_000);
        for (name, rule) in [
            ("", "empty"),
            ("   ", "empty"),
            ("\u{3000}", "empty"),
            ("pa\u{0}paya", "control"),
            ("pa\npaya", "control"),
            ("\tpapaya", "control"),
            ("papaya ", "white space"),
            (long.as_str(), "10000 characters"),
        ] {
            let rejection = Item::parse(name).expect_err(name);
            assert_eq!(rejection.field, "item");
            assert!(
                rejection.rule.contains(rule),
                "{name:?}: {}",
                rejection.rule
            );
        }
    }

    #[test]
    fn accepts_exactly_the_maximum_length() {
        assert!(Item::parse(&"é".repeat(MAX_ITEM_CHARS)).is_ok());
        assert!(Item::parse(&"é".repeat(MAX_ITEM_CHARS + 1)).is_err());
    }
}
