//! Splits a JSON document into sales one at a time, whatever its shape: a
//! single object (the seed's files), an array of objects, or objects one
//! per line (NDJSON) or simply one after another.
//!
//! Only one sale's text is held in memory at a time, so a file of any size
//! streams through, and every sale keeps the line it started on for error
//! messages.

use std::io::{self, BufRead};

use crate::error::Rejection;
use crate::json::parse_sale;
use crate::sale::NewSale;

/// Largest accepted text of one sale. A real sale is about 100 bytes.
pub const MAX_SALE_BYTES: usize = 64 * 1024;

/// Where a sale came from: its file (or `<stdin>`) and line, for messages
/// the user can act on. The name is shared by all the sales of a file, so
/// a place costs a few bytes.
#[derive(Clone, Debug)]
pub struct Place {
    /// The file as the user named it, or `<stdin>`.
    pub file: std::sync::Arc<str>,
    /// The line the sale starts on, from 1.
    pub line: u64,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One sale read from a document, or the reason it could not be.
#[derive(Debug)]
pub struct ReadSale {
    /// Line (from 1) where the sale's text starts.
    pub line: u64,
    /// Position of the sale in the document, from 0.
    pub index: u64,
    pub sale: Result<NewSale, Rejection>,
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Nothing but white space read yet.
    Unknown,
    /// Values one after another (one object, or NDJSON).
    Sequence,
    /// Inside a top-level `[ … ]`.
    Array,
    /// After the top-level array's `]`.
    ArrayClosed,
    /// A structural error ended the document.
    Broken,
}

/// Where the scanner is inside the value it is reading.
#[derive(Default)]
struct Value {
    open: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    scalar: bool,
    to_line_end: bool,
    oversized: bool,
    start_line: u64,
    text: Vec<u8>,
}

/// One value's text and the line it starts on, or a structural error and
/// the line where it was found.
type Scanned = Result<(u64, Vec<u8>), (u64, String)>;

/// Iterator over the sales of a JSON document.
pub struct SaleDocument<R> {
    reader: R,
    shape: Shape,
    line: u64,
    index: u64,
    started: bool,
    value: Value,
}

impl<R: BufRead> SaleDocument<R> {
    /// Reads sales from `reader`; the shape is detected from the first
    /// character that is not white space (`[` means an array).
    pub fn new(reader: R) -> SaleDocument<R> {
        SaleDocument {
            reader,
            shape: Shape::Unknown,
            line: 1,
            index: 0,
            started: false,
            value: Value::default(),
        }
    }

    /// Skips a UTF-8 byte order mark, which Windows tools put first.
    fn skip_bom(&mut self) -> io::Result<()> {
        self.started = true;
        let head = self.reader.fill_buf()?;
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.reader.consume(3);
        }
        Ok(())
    }

    /// Scans until one value is complete, or the input ends.
    fn next_text(&mut self) -> io::Result<Option<Scanned>> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(self.finish());
            }

            let mut used = 0;
            let mut outcome = None;
            for &byte in chunk {
                match step(&mut self.shape, &mut self.value, &mut self.line, byte) {
                    Step::Consumed => used += 1,
                    Step::Done { consumed } => {
                        used += usize::from(consumed);
                        outcome = Some(Ok(self.take_value()));
                        break;
                    }
                    Step::Broken(reason) => {
                        used += 1;
                        outcome = Some(Err((self.line, reason)));
                        break;
                    }
                }
            }
            self.reader.consume(used);
            if outcome.is_some() {
                return Ok(outcome);
            }
        }
    }

    fn take_value(&mut self) -> (u64, Vec<u8>) {
        let value = std::mem::take(&mut self.value);
        if value.oversized {
            return (value.start_line, Vec::new());
        }
        (value.start_line, value.text)
    }

    /// Called at the end of input: closes a trailing scalar or reports what
    /// is unfinished.
    fn finish(&mut self) -> Option<Scanned> {
        let shape = std::mem::replace(&mut self.shape, Shape::Broken);
        if self.value.open {
            if self.value.scalar {
                return Some(Ok(self.take_value()));
            }
            let line = self.value.start_line;
            self.value = Value::default();
            return Some(Err((line, "is not valid JSON: the input ends before this value is closed (a missing } or \")".into())));
        }
        if shape == Shape::Array {
            return Some(Err((
                self.line,
                "the input ends before the array's closing ]".into(),
            )));
        }
        None
    }
}

enum Step {
    Consumed,
    /// The value is complete; `consumed` says whether the byte belongs to it.
    Done {
        consumed: bool,
    },
    Broken(String),
}

/// Advances the scanner by one byte.
fn step(shape: &mut Shape, value: &mut Value, line: &mut u64, byte: u8) -> Step {
    if value.open {
        return step_in_value(value, line, byte);
    }
    if byte == b'\n' {
        *line += 1;
    }
    if byte.is_ascii_whitespace() {
        return Step::Consumed;
    }
    if byte.is_ascii_control() {
        // No JSON value starts with one: a binary file, or a file of zero
        // bytes. Stop here rather than read gigabytes of it.
        *shape = Shape::Broken;
        return Step::Broken(format!(
            "is not JSON text: it holds the control byte 0x{byte:02x} outside a string"
        ));
    }

    match *shape {
        Shape::Unknown if byte == b'[' => {
            *shape = Shape::Array;
            return Step::Consumed;
        }
        Shape::Unknown => *shape = Shape::Sequence,
        Shape::Array if byte == b',' => return Step::Consumed,
        Shape::Array if byte == b']' => {
            *shape = Shape::ArrayClosed;
            return Step::Consumed;
        }
        Shape::ArrayClosed | Shape::Broken => {
            *shape = Shape::Broken;
            return Step::Broken(
                "unexpected text after the end of the JSON array".into(),
            );
        }
        _ => {}
    }

    *value = Value {
        open: true,
        start_line: *line,
        ..Value::default()
    };
    match byte {
        b'{' | b'[' => value.depth = 1,
        b'"' => value.in_string = true,
        _ => {
            value.scalar = true;
            // Outside an array, stray text is one refusal per line, not one
            // per word.
            value.to_line_end = *shape == Shape::Sequence;
        }
    }
    value.text.push(byte);
    Step::Consumed
}

fn step_in_value(value: &mut Value, line: &mut u64, byte: u8) -> Step {
    if value.scalar {
        let ends = if value.to_line_end {
            byte == b'\n'
        } else {
            byte.is_ascii_whitespace() || matches!(byte, b',' | b']' | b'}')
        };
        if ends {
            return Step::Done { consumed: false };
        }
        push(value, byte);
        return Step::Consumed;
    }

    push(value, byte);
    if byte == b'\n' {
        *line += 1;
    }
    if value.in_string {
        if value.escaped {
            value.escaped = false;
        } else if byte == b'\\' {
            value.escaped = true;
        } else if byte == b'"' {
            value.in_string = false;
            if value.depth == 0 {
                return Step::Done { consumed: true };
            }
        }
        return Step::Consumed;
    }

    match byte {
        b'"' => value.in_string = true,
        b'{' | b'[' => value.depth += 1,
        b'}' | b']' => {
            value.depth -= 1;
            if value.depth == 0 {
                return Step::Done { consumed: true };
            }
        }
        _ => {}
    }
    Step::Consumed
}

fn push(value: &mut Value, byte: u8) {
    if value.text.len() >= MAX_SALE_BYTES {
        value.oversized = true;
        value.text = Vec::new();
    }
    if !value.oversized {
        value.text.push(byte);
    }
}

impl<R: BufRead> Iterator for SaleDocument<R> {
    type Item = io::Result<ReadSale>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.shape == Shape::Broken {
            return None;
        }
        if !self.started {
            if let Err(error) = self.skip_bom() {
                return Some(Err(error));
            }
        }

        let (line, sale) = match self.next_text() {
            Err(error) => return Some(Err(error)),
            Ok(None) => return None,
            Ok(Some(Err((line, reason)))) => {
                (line, Err(Rejection::new("json", "", reason)))
            }
            Ok(Some(Ok((line, text)))) => (line, parse_text(&text)),
        };
        let index = self.index;
        self.index += 1;
        Some(Ok(ReadSale { line, index, sale }))
    }
}

fn parse_text(text: &[u8]) -> Result<NewSale, Rejection> {
    if text.is_empty() {
        return Err(Rejection::new(
            "json",
            "",
            format!("the sale is larger than {MAX_SALE_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| Rejection::new("json", "", "is not valid UTF-8 text"))?;
    parse_sale(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALE: &str = r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": 7.3}"#;

    fn read(text: &str) -> Vec<(u64, Result<String, String>)> {
        SaleDocument::new(text.as_bytes())
            .map(|read| {
                let read = read.unwrap();
                let sale = read
                    .sale
                    .map(|s| s.sale.item.to_string())
                    .map_err(|r| r.to_string());
                (read.line, sale)
            })
            .collect()
    }

    #[test]
    fn a_file_of_zero_bytes_is_refused_at_its_first_byte() {
        let mut zeros = std::io::Read::take(std::io::repeat(0), 1 << 30);
        let reads: Vec<_> = SaleDocument::new(std::io::BufReader::new(&mut zeros))
            .map(|read| read.unwrap())
            .collect();

        assert_eq!(reads.len(), 1);
        let refusal = reads[0].sale.as_ref().unwrap_err().to_string();
        assert!(refusal.contains("control byte 0x00"), "{refusal}");
        assert!(
            zeros.limit() > (1 << 30) - 65_536,
            "read on after the first byte"
        );
    }

    #[test]
    fn reads_a_single_object() {
        assert_eq!(read(SALE), vec![(1, Ok("papaya".into()))]);
    }

    #[test]
    fn reads_ndjson_with_blank_lines_and_crlf() {
        let text = format!("{SALE}\r\n\r\n{}\r\n", SALE.replace("papaya", "kiwi"));
        assert_eq!(
            read(&text),
            vec![(1, Ok("papaya".into())), (3, Ok("kiwi".into()))]
        );
    }

    #[test]
    fn reads_a_pretty_printed_array() {
        let text = format!(
            "\u{feff}[\n  {SALE},\n  {}\n]\n",
            SALE.replace("papaya", "kiwi")
        );
        assert_eq!(
            read(&text),
            vec![(2, Ok("papaya".into())), (3, Ok("kiwi".into()))]
        );
    }

    #[test]
    fn a_bad_sale_does_not_hide_the_next() {
        let text = format!("{}\n{SALE}\n", SALE.replace("5", "0"));
        let sales = read(&text);
        assert!(sales[0].1.as_ref().unwrap_err().contains("quantity"));
        assert_eq!(sales[1], (2, Ok("papaya".into())));
    }

    #[test]
    fn braces_inside_strings_do_not_confuse_the_split() {
        let text = SALE.replace("papaya", "pa}pa{ya \\\" [");
        assert_eq!(read(&text), vec![(1, Ok("pa}pa{ya \" [".into()))]);
    }

    #[test]
    fn reports_unfinished_and_trailing_text() {
        let sales = read(&format!("[{SALE}"));
        assert!(sales[1].1.as_ref().unwrap_err().contains("closing ]"));
        let sales = read(r#"{"item": "papaya""#);
        assert!(sales[0]
            .1
            .as_ref()
            .unwrap_err()
            .contains("ends before this value"));
        let sales = read(&format!("[{SALE}] x"));
        assert!(sales[1].1.as_ref().unwrap_err().contains("after the end"));
    }

    #[test]
    fn empty_input_has_no_sales_and_scalars_are_refused() {
        assert!(read("").is_empty());
        assert!(read("  \n ").is_empty());
        let sales = read("42 true\nnot json\n");
        assert_eq!(sales.len(), 2);
        assert!(sales[0].1.as_ref().unwrap_err().contains("object"));
    }

    #[test]
    fn oversized_sales_are_refused_without_buffering_them() {
        let huge = format!(
            "{{\"item\": \"{}\"}}\n{SALE}",
            "x".repeat(MAX_SALE_BYTES * 2)
        );
        let sales = read(&huge);
        assert!(sales[0].1.as_ref().unwrap_err().contains("larger than"));
        assert_eq!(sales[1], (2, Ok("papaya".into())));
    }
}
