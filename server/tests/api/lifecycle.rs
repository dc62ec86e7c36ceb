//! Stopping, restarting and seeding.

use std::path::Path;

use sales_proto::v1::RecordSaleRequest;
use sales_server::testing::TestServer;
use sales_server::Settings;
use sales_storage::import::import_directory;
use sales_storage::{SeedState, Store, StoreOptions, Writer};

use crate::helpers::{figures, v1_sale, TestApp};

#[tokio::test]
async fn a_restart_keeps_every_sale_and_does_not_import_the_seed_again() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let app = TestApp::start_with(|settings| {
        settings.seed_data = data.clone();
        settings.no_seed = false;
    })
    .await;
    let mut client = app.v1_client().await;
    let sale = v1_sale("durian", 2, "12.5", "2023-06-01T12:00:00+08:00", "");
    client
        .record_sale(RecordSaleRequest { sale: Some(sale) })
        .await
        .expect("stored");
    let before = app.statistics().await;
    let db = app.dir.path().join("db");
    app.server.stop().await.expect("clean stop");

    let mut settings = Settings::for_tests(db);
    settings.seed_data = data;
    settings.no_seed = false;
    let restarted = TestServer::start_with(settings).await.expect("restarts");
    let after = restarted.statistics().await.unwrap();

    assert_eq!(after, before);
    assert_eq!(figures(&after["durian"]), (2, "25.0".into(), 1));
    let total: u64 = after
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["sales"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 10_001);
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_server_on_the_same_database_is_refused_clearly() {
    let app = TestApp::start().await;

    let second = TestServer::start(app.dir.path().join("db")).await;

    let message = format!("{:#}", second.err().expect("refused"));
    assert!(message.contains("in use by another process"), "{message}");
}

/// Prepares a database as a stopped or crashed server would leave it, with
/// the sales of `data/PART` imported and the seed state set to `state`,
/// then starts a server that may seed from `data/`; returns the number of
/// sales it serves.
async fn sales_after_start(part: &str, state: SeedState) -> u64 {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("db");
    let (at, from) = (db.clone(), data.join(part));
    tokio::task::spawn_blocking(move || {
        let store = Store::open(&at, &StoreOptions::default()).unwrap();
        store.set_seed_state(state).unwrap();
        let writer = Writer::start(store).unwrap();
        import_directory(&writer.handle(), &from, "").unwrap();
        writer.close().unwrap();
    })
    .await
    .unwrap();

    let mut settings = Settings::for_tests(db);
    settings.seed_data = data;
    settings.no_seed = false;
    let server = TestServer::start_with(settings).await.unwrap();
    let statistics = server.statistics().await.unwrap();
    server.stop().await.unwrap();
    statistics
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["sales"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn an_interrupted_seed_import_resumes_without_counting_twice() {
    assert_eq!(
        sales_after_start("2023/1", SeedState::Started).await,
        10_000
    );
}

#[tokio::test]
async fn a_database_that_already_has_sales_is_never_seeded() {
    assert_eq!(
        sales_after_start("2023/2/14", SeedState::NotStarted).await,
        27
    );
}
