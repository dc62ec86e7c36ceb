//! The binary formats of stored values. Every value starts with a format
//! version byte so that a later layout can be migrated record by record.
//!
//! Integers are LEB128 varints: a typical sale takes about ten bytes.
//! The format is written here rather than taken from a serialisation crate
//! because it is small, must never change by accident with a dependency
//! upgrade, and is the thing `migrate` will one day convert.

use crate::aggregates::Totals;
use crate::money::Revenue;

/// Version byte of a sale group record.
pub(crate) const GROUP_FORMAT: u8 = 1;

/// Version byte of a totals record.
pub(crate) const TOTALS_FORMAT: u8 = 1;

/// Version byte of an id record.
pub(crate) const ID_FORMAT: u8 = 1;

/// A value that does not decode: the files were damaged or written by
/// something else.
#[derive(Debug)]
pub(crate) struct Malformed(pub(crate) &'static str);

pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u128) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn zigzag(value: i64) -> u128 {
    ((value << 1) ^ (value >> 63)) as u64 as u128
}

pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Reads values back from a byte slice, failing cleanly on truncation.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn byte(&mut self) -> Result<u8, Malformed> {
        let (&first, rest) = self.bytes.split_first().ok_or(Malformed("truncated"))?;
        self.bytes = rest;
        Ok(first)
    }

    pub(crate) fn varint(&mut self) -> Result<u128, Malformed> {
        let mut value: u128 = 0;
        for shift in (0..128).step_by(7) {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed("varint too long"))
    }

    pub(crate) fn varint_u64(&mut self) -> Result<u64, Malformed> {
        u64::try_from(self.varint()?).map_err(|_| Malformed("value out of range"))
    }

    pub(crate) fn bytes(&mut self, length: usize) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < length {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(head)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Encodes per item and month totals.
pub(crate) fn encode_totals(totals: &Totals) -> Vec<u8> {
    let mut out = vec![TOTALS_FORMAT];
    put_varint(&mut out, u128::from(totals.sales));
    put_varint(&mut out, u128::from(totals.quantity));
    put_varint(&mut out, totals.revenue.units());
    out
}

pub(crate) fn decode_totals(bytes: &[u8]) -> Result<Totals, Malformed> {
    let mut reader = Reader::new(bytes);
    if reader.byte()? != TOTALS_FORMAT {
        return Err(Malformed("unknown totals format"));
    }
    let totals = Totals {
        sales: reader.varint_u64()?,
        quantity: reader.varint_u64()?,
        revenue: Revenue::from_units(reader.varint()?),
    };
    if !reader.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::MAX as u128, u128::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(Reader::new(&out).varint().unwrap(), value);
        }
        assert!(Reader::new(&[0x80]).varint().is_err());
    }

    #[test]
    fn zigzag_round_trips_signed_offsets() {
        for value in [0, -1, 1, -1439, 1439, i64::MIN / 2] {
            assert_eq!(unzigzag(zigzag(value) as u64), value);
        }
    }

    #[test]
    fn totals_round_trip() {
        let totals = Totals {
            sales: 3,
            quantity: 12,
            revenue: Revenue::from_units(876_000),
        };
        assert_eq!(decode_totals(&encode_totals(&totals)).unwrap(), totals);
        assert!(decode_totals(&[9, 1, 1, 1]).is_err());
    }
}
