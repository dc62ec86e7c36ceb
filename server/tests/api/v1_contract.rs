//! `sales.v1.SalesIngest`: exact prices, ids, streaming.

use sales_proto::v1::{Outcome, RecordSaleRequest, SaleBatch};
use tonic::Code;

use crate::helpers::{figures, v1_sale, TestApp};

#[tokio::test]
async fn a_retried_sale_with_an_id_counts_once_and_a_changed_one_is_refused() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let sale = v1_sale(
        "kiwi",
        3,
        "0.35",
        "2023-01-31T23:30:00-05:00",
        "till-7/0001",
    );

    let first = client
        .record_sale(RecordSaleRequest {
            sale: Some(sale.clone()),
        })
        .await
        .expect("stored")
        .into_inner();
    let retry = client
        .record_sale(RecordSaleRequest {
            sale: Some(sale.clone()),
        })
        .await
        .expect("duplicate")
        .into_inner();
    let mut changed = sale.clone();
    changed.quantity = 4;
    let conflict = client
        .record_sale(RecordSaleRequest {
            sale: Some(changed),
        })
        .await
        .expect_err("conflict");

    assert_eq!(
        (first.outcome(), first.month.as_str()),
        (Outcome::Stored, "2023-01")
    );
    assert_eq!(retry.outcome(), Outcome::Duplicate);
    assert_eq!(conflict.code(), Code::AlreadyExists);
    let statistics = app.statistics().await;
    assert_eq!(figures(&statistics["kiwi"]), (3, "1.05".into(), 1));
    assert_eq!(
        figures(&statistics["kiwi"]["monthly"]["2023-01"]),
        (3, "1.05".into(), 1)
    );
}

#[tokio::test]
async fn exact_prices_are_kept_to_four_places_and_more_are_refused() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;

    for price in ["0.1", "0.2", "0.0001"] {
        let sale = v1_sale("grain", 3, price, "2023-03-01T00:00:00Z", "");
        client
            .record_sale(RecordSaleRequest { sale: Some(sale) })
            .await
            .expect("stored");
    }
    let too_precise = v1_sale("grain", 1, "0.00001", "2023-03-01T00:00:00Z", "");
    let status = client
        .record_sale(RecordSaleRequest {
            sale: Some(too_precise),
        })
        .await
        .expect_err("refused");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("decimal places"),
        "{}",
        status.message()
    );
    assert_eq!(
        figures(&app.statistics().await["grain"]),
        (9, "0.9003".into(), 3)
    );
}

#[tokio::test]
async fn a_stream_stores_the_valid_sales_and_lists_the_refused_by_position() {
    let app = TestApp::start().await;
    let mut client = app.v1_client().await;
    let batches = vec![
        SaleBatch {
            batch_id: "load-1/0".into(),
            sales: vec![
                v1_sale("mango", 2, "1.99", "2023-02-28T23:59:59+00:00", ""),
                v1_sale("mango", 0, "1.99", "2023-02-28T23:59:59+00:00", ""),
            ],
        },
        SaleBatch {
            batch_id: "load-1/1".into(),
            sales: vec![
                v1_sale("mango", 1, "1.99", "2023-03-01T00:00:00+00:00", ""),
                v1_sale("mango", 1, "abc", "2023-03-01T00:00:00+00:00", ""),
            ],
        },
    ];

    let reply = client
        .stream_sales(tokio_stream::iter(batches.clone()))
        .await
        .expect("streamed")
        .into_inner();
    let resent = client
        .stream_sales(tokio_stream::iter(batches))
        .await
        .expect("streamed again")
        .into_inner();

    assert_eq!(
        (
            reply.received,
            reply.stored,
            reply.duplicates,
            reply.rejected
        ),
        (4, 2, 0, 2)
    );
    let refused: Vec<(u64, &str)> = reply
        .rejections
        .iter()
        .map(|r| (r.position, r.field.as_str()))
        .collect();
    assert_eq!(refused, vec![(1, "quantity"), (3, "price")]);
    assert_eq!(
        (resent.stored, resent.duplicates, resent.rejected),
        (0, 2, 2)
    );
    let statistics = app.statistics().await;
    assert_eq!(figures(&statistics["mango"]), (3, "5.97".into(), 2));
    assert_eq!(
        figures(&statistics["mango"]["monthly"]["2023-02"]),
        (2, "3.98".into(), 1)
    );
    assert_eq!(
        figures(&statistics["mango"]["monthly"]["2023-03"]),
        (1, "1.99".into(), 1)
    );
}

#[tokio::test]
async fn ingest_requires_the_token_when_one_is_configured() {
    let app =
        TestApp::start_with(|settings| settings.ingest_token = Some("s3cret".into()))
            .await;
    let mut client = app.v1_client().await;
    let sale = v1_sale("kiwi", 1, "0.35", "2023-01-31T10:00:00Z", "");

    let missing = client
        .record_sale(RecordSaleRequest {
            sale: Some(sale.clone()),
        })
        .await
        .expect_err("no token");
    let mut wrong = tonic::Request::new(RecordSaleRequest {
        sale: Some(sale.clone()),
    });
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer guess".parse().unwrap());
    let wrong = client.record_sale(wrong).await.expect_err("wrong token");
    let mut right = tonic::Request::new(RecordSaleRequest { sale: Some(sale) });
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    client.record_sale(right).await.expect("right token");

    assert_eq!(missing.code(), Code::Unauthenticated);
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        figures(&app.statistics().await["kiwi"]),
        (1, "0.35".into(), 1)
    );
}
