//! A group record: the sales of one item on one local day, written by one
//! commit, under one key.
//!
//! Grouping is what makes bulk loads fast and small on disk: sled costs
//! about 10 µs and 200 bytes per key, while a sale inside a group costs
//! about ten bytes. The item and day live in the key, so each sale stores
//! only its time of day, offset, quantity, price and optional id.
//!
//! Format 1, after the version byte: the number of sales, then per sale
//! the second of the local day, the microsecond, the UTC offset in minutes
//! (zigzag), the quantity, the price in ten-thousandths, and the id's
//! length followed by its bytes (0 for no id). All integers are varints.

use chrono::NaiveDate;

use crate::codec::{self, put_varint, zigzag, Malformed, Reader, GROUP_FORMAT};
use crate::date::SaleDate;
use crate::item::Item;
use crate::money::Price;
use crate::quantity::Quantity;
use crate::sale::{NewSale, Sale, SaleId};

/// Encodes the sales of one item and day. Every sale must have that item
/// and day; the caller groups them.
pub(crate) fn encode(sales: &[&NewSale]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + sales.len() * 12);
    out.push(GROUP_FORMAT);
    put_varint(&mut out, sales.len() as u128);
    for new in sales {
        let sale = &new.sale;
        put_varint(&mut out, u128::from(sale.date.second_of_day()));
        put_varint(&mut out, u128::from(sale.date.micros()));
        put_varint(&mut out, zigzag(i64::from(sale.date.offset_minutes())));
        put_varint(&mut out, u128::from(sale.quantity.get()));
        put_varint(&mut out, u128::from(sale.price.units()));
        let id = new.id.as_ref().map_or("", SaleId::as_str);
        put_varint(&mut out, id.len() as u128);
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// Decodes a group record back into sales, validating every field as if
/// it had just arrived.
pub(crate) fn decode(
    day: NaiveDate,
    item: &Item,
    bytes: &[u8],
) -> Result<Vec<NewSale>, Malformed> {
    let mut reader = Reader::new(bytes);
    if reader.byte()? != GROUP_FORMAT {
        return Err(Malformed("unknown group format"));
    }
    let count = reader.varint_u64()?;
    // Each sale takes at least 6 bytes: a count beyond that is corrupt.
    if count > bytes.len() as u64 {
        return Err(Malformed("sale count larger than the record"));
    }

    let mut sales = Vec::with_capacity(count as usize);
    for _ in 0..count {
        sales.push(decode_sale(&mut reader, day, item)?);
    }
    if !reader.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok(sales)
}

fn decode_sale(
    reader: &mut Reader<'_>,
    day: NaiveDate,
    item: &Item,
) -> Result<NewSale, Malformed> {
    let second = small(reader.varint_u64()?)?;
    let micros = small(reader.varint_u64()?)?;
    let offset = i16::try_from(codec::unzigzag(reader.varint_u64()?))
        .map_err(|_| Malformed("offset out of range"))?;
    let date = SaleDate::from_parts(day, second, micros, offset)
        .ok_or(Malformed("invalid time of day or offset"))?;
    let quantity = Quantity::new(i64::try_from(reader.varint_u64()?).unwrap_or(-1))
        .map_err(|_| Malformed("quantity out of range"))?;
    let price = Price::from_units(reader.varint_u64()?)
        .map_err(|_| Malformed("price out of range"))?;

    let id_length = reader.varint_u64()? as usize;
    let id_bytes = reader.bytes(id_length)?;
    let id = match id_length {
        0 => None,
        _ => Some(SaleId::from_stored(
            String::from_utf8(id_bytes.to_vec())
                .map_err(|_| Malformed("id is not UTF-8"))?,
        )),
    };

    let sale = Sale {
        item: item.clone(),
        quantity,
        price,
        date,
    };
    Ok(NewSale { sale, id })
}

fn small(value: u64) -> Result<u32, Malformed> {
    u32::try_from(value).map_err(|_| Malformed("value out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse_sale;

    #[test]
    fn round_trips_sales_with_and_without_ids() {
        let sales = [
            parse_sale(r#"{"item": "kiwi", "quantity": 3, "price": 0.35, "date": "2023-01-31T23:30:00.5-05:00"}"#).unwrap(),
            parse_sale(r#"{"item": "kiwi", "quantity": 1000000, "price": 1000000000, "date": "2023-01-31T00:00:00+14:00", "id": "x/1"}"#).unwrap(),
        ];
        let refs: Vec<&NewSale> = sales.iter().collect();
        let bytes = encode(&refs);
        let day = sales[0].sale.date.day();
        let decoded = decode(day, &sales[0].sale.item, &bytes).unwrap();
        assert_eq!(decoded, sales);
    }

    #[test]
    fn a_typical_sale_takes_about_ten_bytes() {
        let sale = parse_sale(r#"{"item": "kiwi", "quantity": 3, "price": 7.3, "date": "2023-01-31T13:30:00+00:00"}"#).unwrap();
        let refs = vec![&sale; 100];
        let per_sale = encode(&refs).len() / 100;
        assert!(per_sale <= 10, "{per_sale} bytes per sale");
    }

    #[test]
    fn refuses_damaged_records_without_panicking() {
        let sale = parse_sale(r#"{"item": "kiwi", "quantity": 3, "price": 7.3, "date": "2023-01-31T13:30:00+00:00", "id": "abc"}"#).unwrap();
        let bytes = encode(&[&sale]);
        let day = sale.sale.date.day();
        for cut in 0..bytes.len() {
            assert!(decode(day, &sale.sale.item, &bytes[..cut]).is_err());
        }
        let mut wrong = bytes.clone();
        wrong[0] = 99;
        assert!(decode(day, &sale.sale.item, &wrong).is_err());
    }
}
