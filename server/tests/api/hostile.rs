//! Hostile input through gRPC: every case is refused with the field named
//! (or accepted under a documented rule, with exact values), and a refusal
//! leaves the statistics untouched.

use sales_proto::v1::{RecordSaleRequest, SaleBatch};
use tonic::Code;

use crate::helpers::{figures, v1_sale, TestApp};

const DATE: &str = "2023-01-31T06:03:17+00:00";

#[tokio::test]
async fn hostile_fields_are_refused_by_name_and_store_nothing() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let long = "x".repeat(10_000);
    let long_price = format!("1{}e-1000004", "0".repeat(100));
    let cases: Vec<(&str, i64, &str, &str, &str)> = vec![
        ("", 1, "1", DATE, "item"),
        ("   ", 1, "1", DATE, "item"),
        (&long, 1, "1", DATE, "item"),
        ("pa\u{7}paya", 1, "1", DATE, "item"),
        ("papaya\u{200b}", 1, "1", DATE, "item"),
        ("\u{feff}papaya", 1, "1", DATE, "item"),
        ("papaya", 0, "1", DATE, "quantity"),
        ("papaya", -1, "1", DATE, "quantity"),
        ("papaya", 1_000_001, "1", DATE, "quantity"),
        ("papaya", i64::MAX, "1", DATE, "quantity"),
        ("papaya", 1, "-0.01", DATE, "price"),
        ("papaya", 1, "NaN", DATE, "price"),
        ("papaya", 1, "Infinity", DATE, "price"),
        ("papaya", 1, "0.00001", DATE, "price"),
        ("papaya", 1, "1e10", DATE, "price"),
        ("papaya", 1, &long_price, DATE, "price"),
        ("papaya", 1, "", DATE, "price"),
        ("papaya", 1, "1", "2023-01-31T06:03:17", "date"),
        ("papaya", 1, "1", "2023-01-31T24:00:00Z", "date"),
        ("papaya", 1, "1", "2023-12-31T23:59:60Z", "date"),
        ("papaya", 1, "1", "0000-01-01T00:00:00Z", "date"),
        ("papaya", 1, "1", "10000-01-01T00:00:00Z", "date"),
        ("papaya", 1, "1", "2023-01-31T06:03:17+23:00", "date"),
    ];

    for (item, quantity, price, date, field) in cases {
        let sale = v1_sale(item, quantity, price, date, "");
        let status = client
            .record_sale(RecordSaleRequest { sale: Some(sale) })
            .await
            .expect_err(field);
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{field}: {}",
            status.message()
        );
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
        assert!(
            status.message().len() < 400,
            "message too long: {}",
            status.message()
        );
    }
    assert_eq!(app.statistics().await, serde_json::json!({}));
}

#[tokio::test]
async fn edge_values_that_the_rules_accept_are_stored_exactly() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let accepted = [
        ("edge", 1_000_000, "1000000000", "2023-03-01T00:00:00+05:45"),
        ("edge", 1, "7.3e0", "2023-03-31T23:59:59.999999-00:00"),
        ("edge", 2, "73E-1", "2023-03-15T12:00:00Z"),
        ("edge", 3, "0", "2023-03-15T12:00:00+14:00"),
    ];

    for (item, quantity, price, date) in accepted {
        let sale = v1_sale(item, quantity, price, date, "");
        client
            .record_sale(RecordSaleRequest { sale: Some(sale) })
            .await
            .expect(price);
    }

    let statistics = app.statistics().await;
    assert_eq!(
        figures(&statistics["edge"]["monthly"]["2023-03"]),
        (1_000_006, "1000000000000021.9".into(), 4)
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_stores_nothing() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let sales = (0..50_000)
        .map(|n| v1_sale("bulk", 1, "1", DATE, &format!("{n:0>80}")))
        .collect();

    let status = client
        .stream_sales(tokio_stream::iter(vec![SaleBatch {
            batch_id: String::new(),
            sales,
        }]))
        .await
        .expect_err("too large");

    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    assert_eq!(app.statistics().await, serde_json::json!({}));
}

#[tokio::test]
async fn a_bad_batch_id_refuses_its_batch_and_not_the_stream() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let batches = vec![
        SaleBatch {
            batch_id: "ok/0".into(),
            sales: vec![v1_sale("kiwi", 2, "0.35", DATE, "")],
        },
        SaleBatch {
            batch_id: "x".repeat(201),
            sales: vec![v1_sale("kiwi", 5, "0.35", DATE, "")],
        },
        SaleBatch {
            batch_id: "bad\nid".into(),
            sales: vec![v1_sale("kiwi", 7, "0.35", DATE, "")],
        },
    ];

    let reply = client
        .stream_sales(tokio_stream::iter(batches))
        .await
        .expect("answered")
        .into_inner();

    assert_eq!((reply.received, reply.stored, reply.rejected), (3, 1, 2));
    let refused: Vec<(u64, &str)> = reply
        .rejections
        .iter()
        .map(|r| (r.position, r.field.as_str()))
        .collect();
    assert_eq!(refused, vec![(1, "batch_id"), (2, "batch_id")]);
    assert_eq!(
        figures(&app.statistics().await["kiwi"]),
        (2, "0.7".into(), 1)
    );
}

#[tokio::test]
async fn new_items_beyond_the_limit_are_refused_and_known_ones_still_count() {
    let app = TestApp::start_with(|settings| settings.max_items = 2).await;
    let mut client = app.v1_client().await;
    for item in ["apple", "kiwi"] {
        let sale = v1_sale(item, 1, "1", DATE, "");
        client
            .record_sale(RecordSaleRequest { sale: Some(sale) })
            .await
            .expect(item);
    }

    let third = v1_sale("mango", 1, "1", DATE, "");
    let refused = client
        .record_sale(RecordSaleRequest { sale: Some(third) })
        .await
        .expect_err("limit");
    let known = v1_sale("kiwi", 4, "1", DATE, "");
    client
        .record_sale(RecordSaleRequest { sale: Some(known) })
        .await
        .expect("known item");

    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused.message().starts_with("item \"mango\""),
        "{}",
        refused.message()
    );
    let statistics = app.statistics().await;
    assert_eq!(statistics.as_object().unwrap().len(), 2);
    assert_eq!(figures(&statistics["kiwi"]), (5, "5.0".into(), 2));
}

#[tokio::test]
async fn a_batch_refused_for_the_item_limit_reserves_no_id() {
    let app = TestApp::start_with(|settings| settings.max_items = 1).await;
    let mut client = app.v1_client().await;
    let batch = SaleBatch {
        batch_id: "load/0".into(),
        sales: vec![
            v1_sale("apple", 1, "1", DATE, ""),
            v1_sale("kiwi", 2, "1", DATE, ""),
        ],
    };

    let refused = client
        .stream_sales(tokio_stream::iter(vec![batch.clone()]))
        .await
        .unwrap()
        .into_inner();
    let lone = SaleBatch {
        batch_id: "load/1".into(),
        sales: vec![v1_sale("apple", 3, "1", DATE, "")],
    };
    let apple = client
        .stream_sales(tokio_stream::iter(vec![lone]))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        (refused.stored, refused.duplicates, refused.rejected),
        (0, 0, 2)
    );
    assert_eq!(refused.rejections[0].field, "item");
    assert!(
        refused.rejections[0]
            .reason
            .contains("its batch (stored whole or not at all)"),
        "{}",
        refused.rejections[0].reason
    );
    assert_eq!(apple.stored, 1);
    assert_eq!(
        figures(&app.statistics().await["apple"]),
        (3, "3.0".into(), 1)
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_an_empty_token_is_refused_at_start() {
    let app =
        TestApp::start_with(|settings| settings.ingest_token = Some("s3cret".into()))
            .await;
    let mut client = app.v1_client().await;
    let mut request = tonic::Request::new(RecordSaleRequest {
        sale: Some(v1_sale("kiwi", 1, "1", DATE, "")),
    });
    request
        .metadata_mut()
        .insert("authorization", "bearer s3cret".parse().unwrap());

    client
        .record_sale(request)
        .await
        .expect("lower-case scheme accepted");
    let dir = tempfile::TempDir::new().unwrap();
    let mut settings = sales_server::Settings::for_tests(dir.path().join("db"));
    settings.ingest_token = Some(String::new());
    let empty = sales_server::testing::TestServer::start_with(settings).await;

    let message = format!("{:#}", empty.err().expect("refused"));
    assert!(message.contains("set but empty"), "{message}");
}
