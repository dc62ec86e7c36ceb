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
        if let Some(hidden) = name.chars().find(|c| is_hidden(*c)) {
            return reject(&format!(
                "must not contain control or invisible characters (found U+{:04X}); \
                 they make names that look alike count as different items",
                u32::from(hidden)
            ));
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

/// Characters that cannot be seen or that reorder text: control
/// characters, zero-width spaces, soft hyphens, byte order marks, bidi
/// overrides and line separators. Zero-width joiners (U+200C, U+200D) stay
/// allowed: emoji sequences and several scripts need them.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
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
    fn zero_width_joiners_stay_allowed() {
        assert!(Item::parse("\u{1F469}\u{200D}\u{1F373} special").is_ok());
        assert!(Item::parse("\u{645}\u{200C}\u{627}").is_ok());
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
            ("\u{feff}papaya", "U+FEFF"),
            ("papaya\u{200b}", "U+200B"),
            ("pa\u{ad}paya", "U+00AD"),
            ("abc\u{202e}gpj.exe", "U+202E"),
            ("pa\u{2028}paya", "U+2028"),
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
