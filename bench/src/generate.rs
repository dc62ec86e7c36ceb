//! Deterministic sample sales: the same arguments always give the same
//! sales, so the committed `data/` directory can be regenerated and the
//! benchmark's input is the same on every machine.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// The catalogue: item names with their fixed unit prices (as decimal
/// text, exactly as they appear in the JSON).
pub(crate) const CATALOGUE: [(&str, &str); 10] = [
    ("papaya", "7.3"),
    ("apple", "0.45"),
    ("banana", "0.25"),
    ("mango", "1.99"),
    ("kiwi", "0.35"),
    ("orange", "0.6"),
    ("pineapple", "3.5"),
    ("grapes", "2.99"),
    ("watermelon", "4.75"),
    ("strawberry", "3.2"),
];

/// UTC offsets used, most sales in UTC, a few elsewhere so that months
/// are taken from the sale's own clock near midnight.
const OFFSETS: [&str; 8] = [
    "+00:00", "+00:00", "+00:00", "+00:00", "+00:00", "-05:00", "+01:00", "+05:30",
];

/// SplitMix64: a tiny, well-known generator; good enough for sample data
/// and fully reproducible.
pub(crate) struct Random(u64);

impl Random {
    pub(crate) fn new(seed: u64) -> Random {
        Random(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One generated sale.
pub(crate) struct SampleSale {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) json: String,
}

/// Generates `count` sales spread evenly over `year`, in date order.
pub(crate) fn sales(
    count: u64,
    year: i32,
    seed: u64,
) -> impl Iterator<Item = SampleSale> {
    let mut random = Random::new(seed);
    let days = if chrono::NaiveDate::from_ymd_opt(year, 2, 29).is_some() {
        366
    } else {
        365
    };
    let seconds_in_year = days * 86_400u64;
    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
        .unwrap_or_default()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();

    (0..count).map(move |index| {
        // Even spacing plus jitter keeps the sales in order.
        let slot = seconds_in_year / count.max(1);
        let second = index * slot + random.below(slot.max(1));
        let local = start + chrono::Duration::seconds(second as i64);
        let (item, price) = CATALOGUE[random.below(CATALOGUE.len() as u64) as usize];
        let quantity = 1 + random.below(10);
        let offset = OFFSETS[random.below(OFFSETS.len() as u64) as usize];
        use chrono::Datelike;
        SampleSale {
            year: local.year(),
            month: local.month(),
            day: local.day(),
            json: format!(
                r#"{{"date": "{}{offset}", "quantity": {quantity}, "item": "{item}", "price": {price}}}"#,
                local.format("%Y-%m-%dT%H:%M:%S")
            ),
        }
    })
}

/// Writes sales in the seed's layout: `DIR/YYYY/M/D/NNNNN.json`, one sale
/// per file, numbered in date order.
pub(crate) fn write_directory(
    dir: &Path,
    count: u64,
    year: i32,
    seed: u64,
) -> io::Result<()> {
    for (index, sale) in sales(count, year, seed).enumerate() {
        let folder = dir.join(format!("{}/{}/{}", sale.year, sale.month, sale.day));
        fs::create_dir_all(&folder)?;
        fs::write(
            folder.join(format!("{:05}.json", index + 1)),
            format!("{}\n", sale.json),
        )?;
    }
    Ok(())
}

/// Writes sales as NDJSON, one per line.
pub(crate) fn write_ndjson(
    out: &mut impl Write,
    count: u64,
    year: i32,
    seed: u64,
) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    for sale in sales(count, year, seed) {
        writeln!(out, "{}", sale.json)?;
    }
    out.flush()
}

/// Writes sales as NDJSON with `items` distinct items on random days of
/// `year`, out of date order: nearly every sale lands in an item and day
/// of its own, the hardest case for the store's grouping and memory.
pub(crate) fn write_wide_ndjson(
    out: &mut impl Write,
    count: u64,
    items: u64,
    year: i32,
    seed: u64,
) -> io::Result<()> {
    let mut random = Random::new(seed);
    let mut out = io::BufWriter::new(out);
    let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default();
    for _ in 0..count {
        let day = start + chrono::Duration::days(random.below(365) as i64);
        let item = random.below(items);
        let (_, price) = CATALOGUE[random.below(CATALOGUE.len() as u64) as usize];
        let quantity = 1 + random.below(10);
        writeln!(
            out,
            r#"{{"date": "{day}T12:00:00+00:00", "quantity": {quantity}, "item": "item {item:04}", "price": {price}}}"#
        )?;
    }
    out.flush()
}
