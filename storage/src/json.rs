//! Sales written as JSON, the way tills, files and the seed write them:
//! `{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya",
//! "price": 7.3}`, with an optional `"id"`.
//!
//! Numbers are read from their exact text, never through a float, so
//! `7.3` is 7.3 and `7.12345` is refused rather than rounded.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::date::SaleDate;
use crate::error::Rejection;
use crate::item::Item;
use crate::money::Price;
use crate::quantity::Quantity;
use crate::sale::{NewSale, Sale, SaleId};

/// The fields a sale object may have. Anything else is refused, so that a
/// misspelt `"quantitiy"` is an error instead of a silently missing field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSale<'a> {
    #[serde(borrow)]
    item: Option<&'a RawValue>,
    #[serde(borrow)]
    quantity: Option<&'a RawValue>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    date: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
}

/// Parses one sale object.
///
/// ```
/// use sales_storage::json::parse_sale;
/// let sale = parse_sale(r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5,
///                           "item": "papaya", "price": 7.3}"#).unwrap();
/// assert_eq!(sale.sale.price.to_string(), "7.3");
/// ```
pub fn parse_sale(text: &str) -> Result<NewSale, Rejection> {
    let fields = read_object(text)?;
    let sale = Sale {
        item: Item::parse(&string_field("item", fields.item)?)?,
        quantity: Quantity::parse(number_field("quantity", fields.quantity)?)?,
        price: Price::parse(&price_text(fields.price)?)?,
        date: SaleDate::parse(&string_field("date", fields.date)?)?,
    };
    let id = match fields.id {
        None => None,
        Some(raw) => {
            let id = string_field("id", Some(raw))?;
            if id.is_empty() {
                return Err(Rejection::new(
                    "id",
                    "",
                    "must not be empty; leave the field out for a sale without an id",
                ));
            }
            SaleId::parse_optional("id", &id)?
        }
    };
    Ok(NewSale { sale, id })
}

/// Parses one line of the seed's database file, whose prices went through
/// a 32-bit float (`7.300000190734863`). Returns the sale and whether its
/// price had to be recovered to the decimal the sender meant.
pub fn parse_legacy_sale(text: &str) -> Result<(Sale, bool), Rejection> {
    let fields = read_object(text)?;
    let price_text = number_field("price", fields.price)?;
    let price_value: f64 = price_text
        .parse()
        .map_err(|_| Rejection::new("price", price_text, "is not a number"))?;
    let (price, recovered) = Price::recover_from_f64(price_value)?;
    let sale = Sale {
        item: Item::parse(&string_field("item", fields.item)?)?,
        quantity: Quantity::parse(number_field("quantity", fields.quantity)?)?,
        price,
        date: SaleDate::parse(&string_field("date", fields.date)?)?,
    };
    Ok((sale, recovered))
}

/// Reads the object's fields, mapping JSON syntax errors to rejections
/// that say what to fix.
fn read_object(text: &str) -> Result<JsonSale<'_>, Rejection> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.trim_start().chars().next();
    if first.is_some() && first != Some('{') {
        return Err(Rejection::new(
            "json",
            "",
            "must be an object such as {\"item\": …}",
        ));
    }
    serde_json::from_str::<JsonSale<'_>>(text).map_err(|error| explain(text, &error))
}

fn explain(text: &str, error: &serde_json::Error) -> Rejection {
    let message = error.to_string();
    if let Some(field) = non_finite_number_field(text, error) {
        return Rejection::new(
            field,
            "",
            "NaN and Infinity are not JSON numbers; send a finite number",
        );
    }
    if message.contains("unknown field") {
        let rule = message
            .split(", expected")
            .next()
            .unwrap_or(&message)
            .to_string();
        return Rejection::new(
            "json",
            "",
            format!("{rule}; the fields are item, quantity, price, date and id"),
        );
    }
    Rejection::new("json", "", format!("is not valid JSON: {message}"))
}

/// When parsing stopped at `NaN` or `Infinity` (which Python's json module
/// writes), names the field that held it.
fn non_finite_number_field(
    text: &str,
    error: &serde_json::Error,
) -> Option<&'static str> {
    let line = text.lines().nth(error.line().checked_sub(1)?)?;
    let column = error.column().checked_sub(1)?;
    let before = line.get(..column)?;
    let before = before.strip_suffix('-').unwrap_or(before);
    let at = line.get(column..)?;
    let at = at.strip_prefix('-').unwrap_or(at);
    if !["NaN", "Infinity"].iter().any(|word| at.starts_with(word)) {
        return None;
    }

    let key = before
        .trim_end()
        .strip_suffix(':')?
        .trim_end()
        .strip_suffix('"')?;
    let key = &key[key.rfind('"')? + 1..];
    ["item", "quantity", "price", "date", "id"]
        .into_iter()
        .find(|known| *known == key)
}

fn present<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<&'a str, Rejection> {
    let raw = raw
        .ok_or_else(|| Rejection::new(field, "", "is missing (or null)"))?
        .get();
    Ok(raw)
}

fn string_field(
    field: &'static str,
    raw: Option<&RawValue>,
) -> Result<String, Rejection> {
    let raw = present(field, raw)?;
    serde_json::from_str::<String>(raw)
        .map_err(|_| Rejection::new(field, raw, "must be a JSON string"))
}

fn number_field<'a>(
    field: &'static str,
    raw: Option<&'a RawValue>,
) -> Result<&'a str, Rejection> {
    let raw = present(field, raw)?;
    if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        Ok(raw)
    } else {
        Err(Rejection::new(field, raw, "must be a JSON number"))
    }
}

/// A price may be a JSON number (`7.3`) or a decimal in a string
/// (`"7.30"`), for senders whose JSON library only has floats.
fn price_text(raw: Option<&RawValue>) -> Result<String, Rejection> {
    let text = present("price", raw)?;
    if text.starts_with('"') {
        return string_field("price", raw);
    }
    number_field("price", raw).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": 7.3}"#;

    fn refusal(text: &str) -> Rejection {
        parse_sale(text).expect_err(text)
    }

    #[test]
    fn reads_the_seed_format() {
        let sale = parse_sale(GOOD).unwrap();
        assert_eq!(sale.sale.item.as_str(), "papaya");
        assert_eq!(sale.sale.quantity.get(), 5);
        assert_eq!(sale.sale.price.units(), 73_000);
        assert_eq!(sale.sale.date.to_string(), "2023-01-31T06:03:17+00:00");
        assert_eq!(sale.id, None);
    }

    #[test]
    fn reads_ids_string_prices_bom_and_crlf() {
        let text =
            "\u{feff}{\"id\": \"till-1/7\", \"date\": \"2023-01-31T06:03:17Z\",\r\n \
                    \"quantity\": 2, \"item\": \"kiwi\", \"price\": \"0.35\"}\r\n";
        let sale = parse_sale(text).unwrap();
        assert_eq!(sale.id.unwrap().as_str(), "till-1/7");
        assert_eq!(sale.sale.price.to_string(), "0.35");
    }

    #[test]
    fn names_the_field_of_every_refusal() {
        let cases = [
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "item": "papaya", "price": 7.3}"#,
                "quantity",
                "missing",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 0, "item": "papaya", "price": 7.3}"#,
                "quantity",
                "at least 1",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": -7.3}"#,
                "price",
                "negative",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17", "quantity": 5, "item": "papaya", "price": 7.3}"#,
                "date",
                "offset",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": NaN}"#,
                "price",
                "NaN",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": Infinity}"#,
                "price",
                "Infinity",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": -Infinity}"#,
                "price",
                "Infinity",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": NaN, "item": "papaya", "price": 1}"#,
                "quantity",
                "NaN",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": 1, "id": ""}"#,
                "id",
                "must not be empty",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": "5", "item": "papaya", "price": 7.3}"#,
                "quantity",
                "JSON number",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": 7, "price": 7.3}"#,
                "item",
                "JSON string",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": null, "price": 7.3}"#,
                "item",
                "missing (or null)",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": 7.3, "colour": "red"}"#,
                "json",
                "unknown field `colour`",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5, "item": "papaya", "price": 7.3, "price": 8}"#,
                "json",
                "duplicate field `price`",
            ),
            (
                r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 5"#,
                "json",
                "not valid JSON",
            ),
            ("[1, 2]", "json", "object"),
            ("", "json", "not valid JSON"),
        ];
        for (text, field, rule) in cases {
            let rejection = refusal(text);
            assert_eq!(rejection.field, field, "{text}");
            assert!(rejection.to_string().contains(rule), "{text}: {rejection}");
        }
    }

    #[test]
    fn legacy_lines_recover_float_prices() {
        let line = r#"{"item": "papaya", "quantity": 4, "price": 7.300000190734863, "date": "2023-01-31T06:03:17+00:00"}"#;
        let (sale, recovered) = parse_legacy_sale(line).unwrap();
        assert!(recovered);
        assert_eq!(sale.revenue().to_json_number(), "29.2");
    }
}
