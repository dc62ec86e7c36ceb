//! Properties of the input path every sale takes (JSON files through the
//! client and importer, wire fields through the gRPC handlers): no input
//! panics, everything accepted obeys the rules, and valid sales survive
//! a round trip exactly.

use proptest::prelude::*;
use sales_storage::documents::SaleDocument;
use sales_storage::json::parse_sale;
use sales_storage::{
    Item, Price, Sale, SaleDate, MAX_ITEM_CHARS, MAX_PRICE, MAX_QUANTITY,
};

/// Checks the invariants every accepted sale must hold.
fn assert_valid(sale: &Sale) {
    let item = sale.item.as_str();
    assert!(!item.trim().is_empty() && item.trim() == item);
    assert!(item.chars().count() <= MAX_ITEM_CHARS);
    assert!(!item.chars().any(char::is_control));
    assert_eq!(
        Item::parse(item).as_ref(),
        Ok(&sale.item),
        "normalising twice changes nothing"
    );
    assert!((1..=MAX_QUANTITY).contains(&u64::from(sale.quantity.get())));
    assert!(sale.price.units() <= MAX_PRICE * 10_000);
    assert_eq!(SaleDate::parse(&sale.date.to_string()), Ok(sale.date));
}

fn json_text() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        "[a-zA-Z ]{0,12}",
        "\\PC{0,8}",
        Just("caf\u{e9}".to_string())
    ];
    let quantity = prop_oneof!["-?[0-9]{1,22}", "[0-9]\\.[0-9]", Just("1e2".to_string())];
    let price = prop_oneof![
        "-?[0-9]{1,12}(\\.[0-9]{0,7})?([eE][-+]?[0-9]{1,3})?",
        Just("NaN".to_string()),
        Just("\"7.30\"".to_string()),
    ];
    let date = prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        "\\PC{0,20}",
    ];
    (item, quantity, price, date).prop_map(|(item, quantity, price, date)| {
        format!(
            r#"{{"item": {}, "quantity": {quantity}, "price": {price}, "date": {}}}"#,
            serde_json::to_string(&item).unwrap(),
            serde_json::to_string(&date).unwrap()
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        if let Ok(sale) = parse_sale(&text) {
            assert_valid(&sale.sale);
        }
        for read in SaleDocument::new(text.as_bytes()) {
            if let Ok(Ok(sale)) = read.map(|r| r.sale) {
                assert_valid(&sale.sale);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for read in SaleDocument::new(bytes.as_slice()) {
            if let Ok(Ok(sale)) = read.map(|r| r.sale) {
                assert_valid(&sale.sale);
            }
        }
    }

    #[test]
    fn near_valid_sales_are_either_valid_or_refused_by_field(text in json_text()) {
        match parse_sale(&text) {
            Ok(sale) => assert_valid(&sale.sale),
            Err(rejection) => prop_assert!(
                ["item", "quantity", "price", "date", "json"].contains(&rejection.field),
                "{rejection}"
            ),
        }
    }

    #[test]
    fn wire_fields_never_panic_and_accepted_ones_are_valid(
        item in "\\PC{0,30}",
        quantity in any::<i64>(),
        price in "\\PC{0,30}",
        date in "\\PC{0,40}",
    ) {
        if let Ok(sale) = Sale::from_fields(&item, quantity, &price, &date) {
            assert_valid(&sale);
        }
    }

    #[test]
    fn valid_sales_round_trip_exactly(
        item in "[a-z]{1,10}( [a-z]{1,10})?",
        quantity in 1u32..=1_000_000,
        units in 0u64..=10_000_000_000_000,
        seconds in 0i64..4_000_000_000,
        offset_minutes in -1080i32..=1080,
    ) {
        let price = Price::from_units(units).unwrap();
        let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
        let date = chrono::DateTime::from_timestamp(seconds, 0).unwrap().with_timezone(&offset);
        let text = format!(
            r#"{{"item": "{item}", "quantity": {quantity}, "price": {price}, "date": "{}"}}"#,
            date.to_rfc3339()
        );
        let sale = parse_sale(&text).unwrap().sale;
        prop_assert_eq!(sale.item.as_str(), item.as_str());
        prop_assert_eq!(sale.quantity.get(), quantity);
        prop_assert_eq!(sale.price.units(), units);
        prop_assert_eq!(sale.date.to_string(), date.format("%Y-%m-%dT%H:%M:%S%:z").to_string());
    }

    #[test]
    fn a_recovered_float_price_rounds_back_to_the_same_float(price in 0f32..1_000_000f32) {
        if let Ok(recovered) = Price::from_f32(price) {
            let back: f32 = recovered.to_string().parse().unwrap();
            prop_assert_eq!(back, price);
        }
    }
}
