//! The seed's `SalesService/ProcessSale`, float price and all.

use tonic::Code;

use crate::helpers::{figures, seed_sale, TestApp};

#[tokio::test]
async fn a_float_price_of_7_3_counts_as_exactly_7_3() {
    let app = TestApp::start().await;
    let mut client = app.seed_client().await;

    let reply = client
        .process_sale(seed_sale("papaya", 4, 7.3, "2023-01-31T06:03:17+00:00"))
        .await
        .expect("stored")
        .into_inner();

    assert!(reply.message.contains("papaya"), "{}", reply.message);
    let statistics = app.statistics().await;
    assert_eq!(figures(&statistics["papaya"]), (4, "29.2".into(), 1));
    assert_eq!(
        figures(&statistics["papaya"]["monthly"]["2023-01"]),
        (4, "29.2".into(), 1)
    );
    assert_eq!(statistics["papaya"]["average_per_sale"], 4.0);
}

#[tokio::test]
async fn invalid_sales_are_refused_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let mut client = app.seed_client().await;
    let cases = [
        (
            seed_sale("papaya", 0, 7.3, "2023-01-31T06:03:17+00:00"),
            "quantity",
        ),
        (
            seed_sale("papaya", -2, 7.3, "2023-01-31T06:03:17+00:00"),
            "quantity",
        ),
        (
            seed_sale("papaya", 1, -7.3, "2023-01-31T06:03:17+00:00"),
            "price",
        ),
        (
            seed_sale("papaya", 1, f32::NAN, "2023-01-31T06:03:17+00:00"),
            "price",
        ),
        (
            seed_sale("papaya", 1, f32::INFINITY, "2023-01-31T06:03:17+00:00"),
            "price",
        ),
        (seed_sale("papaya", 1, 7.3, "2023-01-31T06:03:17"), "date"),
        (seed_sale("papaya", 1, 7.3, ""), "date"),
        (seed_sale("", 1, 7.3, "2023-01-31T06:03:17+00:00"), "item"),
        (
            seed_sale("pa\u{0}paya", 1, 7.3, "2023-01-31T06:03:17+00:00"),
            "item",
        ),
    ];

    for (sale, field) in cases {
        let status = client.process_sale(sale.clone()).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{sale:?}");
        assert!(
            status.message().starts_with(field),
            "{sale:?}: {}",
            status.message()
        );
    }
    assert_eq!(app.statistics().await, serde_json::json!({}));
}

#[tokio::test]
async fn nfc_and_nfd_spellings_count_as_one_item() {
    let app = TestApp::start().await;
    let mut client = app.seed_client().await;

    for name in ["caf\u{e9}", "cafe\u{301}"] {
        client
            .process_sale(seed_sale(name, 1, 2.5, "2023-05-01T10:00:00+02:00"))
            .await
            .expect("stored");
    }

    let statistics = app.statistics().await;
    let items: Vec<&String> = statistics.as_object().unwrap().keys().collect();
    assert_eq!(items, vec!["caf\u{e9}"]);
    assert_eq!(figures(&statistics["caf\u{e9}"]), (2, "5.0".into(), 2));
}
