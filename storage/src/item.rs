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
        if let Some(hidden) = hidden_in(name) {
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

/// Characters that cannot be seen, that look like a space without being
/// one, or that reorder text: control characters, zero-width spaces, soft
/// hyphens, byte order marks, bidi marks and overrides, line separators,
/// Hangul and Braille fillers, tag characters, invisible operators and
/// other format characters. Zero-width joiners and emoji variation
/// selectors are allowed where they do their job (see [`hidden_in`]).
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00A0}'
                | '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{2000}'..='\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202F}'
                | '\u{205F}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0D}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// The first character of `name` that hides something: a character
/// [`is_hidden`] refuses anywhere, a joiner (U+200C, U+200D) at either end,
/// an emoji variation selector (U+FE0E, U+FE0F) after a letter or digit
/// (where it changes nothing visible), or a combining mark with nothing to
/// combine with.
pub(crate) fn hidden_in(name: &str) -> Option<char> {
    let chars: Vec<char> = name.chars().collect();
    for (index, &c) in chars.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| chars[i]);
        let at_edge = index == 0 || index + 1 == chars.len();
        let hides = is_hidden(c)
            || (matches!(c, '\u{200C}' | '\u{200D}') && at_edge)
            || (matches!(c, '\u{FE0E}' | '\u{FE0F}')
                && previous.is_none_or(|p| p.is_alphanumeric() || p.is_whitespace()))
            || (index == 0 && unicode_normalization::char::is_combining_mark(c));
        if hides {
            return Some(c);
        }
    }
    None
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
        assert!(Item::parse("\u{2764}\u{FE0F} mug").is_ok());
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
            ("pa\u{3164}paya", "U+3164"),
            ("\u{61c}papaya", "U+061C"),
            ("papaya\u{fe0f}", "U+FE0F"),
            ("papaya\u{e0041}", "U+E0041"),
            ("papaya\u{200d}", "U+200D"),
            ("blood\u{a0}orange", "U+00A0"),
            ("blood\u{2007}orange", "U+2007"),
            ("\u{301}", "U+0301"),
            ("pa\u{2800}paya", "U+2800"),
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
