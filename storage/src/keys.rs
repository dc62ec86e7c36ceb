//! The key layout of the one sled tree the store uses.
//!
//! All data lives in one tree (a commit's atomicity comes from its journal
//! record, and a rebuild of the totals is marked until it is done); the
//! first byte of a key says which kind of record it is:
//!
//! | prefix | key after the prefix                    | value                  |
//! |--------|-----------------------------------------|------------------------|
//! | `S`    | day (u32 `YYYYMMDD`), item, 0, seq (u64) | group of sales         |
//! | `A`    | item, 0, month (u32 `YYYYMM`)           | totals of the month    |
//! | `I`    | client sale id                          | fingerprint, seq       |
//! | `B`    | client batch id                         | fingerprint, seq, conflicting positions |
//! | `M`    | name                                    | store facts (layout …) |
//!
//! Numbers are big-endian so that keys sort by day and month. Item names
//! never contain a 0 byte (control characters are refused), so 0 ends them.

use chrono::{Datelike, NaiveDate};

use crate::date::Month;
use crate::item::Item;

pub(crate) const SALES: u8 = b'S';
pub(crate) const TOTALS: u8 = b'A';
pub(crate) const SALE_IDS: u8 = b'I';
pub(crate) const BATCH_IDS: u8 = b'B';

pub(crate) const META_LAYOUT: &[u8] = b"Mlayout";
pub(crate) const META_NEXT_SEQ: &[u8] = b"Mnext_seq";
pub(crate) const META_SEEDED: &[u8] = b"Mseeded";
/// Present while commits are being applied to sled in several batches:
/// sled then holds part of them, which only the journal can complete.
pub(crate) const META_APPLYING: &[u8] = b"Mapplying";
/// The key of the commit journal's checksums, new at every opening.
pub(crate) const META_JOURNAL_KEY: &[u8] = b"Mjournal_key";
/// Present after a clean shutdown: the journal then holds nothing sled
/// lacks, and its absence is no loss.
pub(crate) const META_CLEAN: &[u8] = b"Mclean";
/// Present while the totals are being rewritten from the sales: they are
/// incomplete, and opening rebuilds them again.
pub(crate) const META_REBUILDING: &[u8] = b"Mrebuilding";

pub(crate) fn group_key(day: NaiveDate, item: &Item, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(14 + item.as_str().len());
    key.push(SALES);
    key.extend_from_slice(&day_number(day).to_be_bytes());
    key.extend_from_slice(item.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Splits a group key into its day, item and sequence number.
pub(crate) fn parse_group_key(key: &[u8]) -> Option<(NaiveDate, Item, u64)> {
    let rest = key.strip_prefix(&[SALES])?;
    let (day, rest) = rest.split_at_checked(4)?;
    let (item, seq) = rest.split_at_checked(rest.len().checked_sub(9)?)?;
    let (zero, seq) = seq.split_first()?;
    if *zero != 0 {
        return None;
    }
    let day = day_from_number(u32::from_be_bytes(day.try_into().ok()?))?;
    let item = Item::from_stored(String::from_utf8(item.to_vec()).ok()?);
    Some((day, item, u64::from_be_bytes(seq.try_into().ok()?)))
}

pub(crate) fn totals_key(item: &Item, month: Month) -> Vec<u8> {
    let mut key = Vec::with_capacity(6 + item.as_str().len());
    key.push(TOTALS);
    key.extend_from_slice(item.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(&month.number().to_be_bytes());
    key
}

pub(crate) fn parse_totals_key(key: &[u8]) -> Option<(Item, Month)> {
    let rest = key.strip_prefix(&[TOTALS])?;
    let (item, month) = rest.split_at_checked(rest.len().checked_sub(5)?)?;
    let (zero, month) = month.split_first()?;
    if *zero != 0 {
        return None;
    }
    let month = Month::from_number(u32::from_be_bytes(month.try_into().ok()?))?;
    let item = Item::from_stored(String::from_utf8(item.to_vec()).ok()?);
    Some((item, month))
}

pub(crate) fn id_key(prefix: u8, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

fn day_number(day: NaiveDate) -> u32 {
    day.year() as u32 * 10_000 + day.month() * 100 + day.day()
}

fn day_from_number(number: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt((number / 10_000) as i32, number / 100 % 100, number % 100)
}

/// A key shown to an operator: printable bytes as text, others escaped.
pub(crate) fn display_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_round_trip_and_sort_by_day() {
        let item = Item::parse("pa paya").unwrap();
        let early = NaiveDate::from_ymd_opt(2023, 1, 31).unwrap();
        let late = NaiveDate::from_ymd_opt(2023, 2, 1).unwrap();
        let key = group_key(early, &item, 42);
        assert_eq!(parse_group_key(&key), Some((early, item.clone(), 42)));
        assert!(key < group_key(late, &item, 0));
    }

    #[test]
    fn totals_keys_round_trip() {
        let item = Item::parse("kiwi").unwrap();
        let month = Month::of(NaiveDate::from_ymd_opt(2023, 12, 1).unwrap());
        assert_eq!(
            parse_totals_key(&totals_key(&item, month)),
            Some((item, month))
        );
        assert_eq!(parse_totals_key(b"Akiwi"), None);
    }
}
