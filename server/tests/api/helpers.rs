//! Shared set-up for the API tests.

use sales_proto::seed::sales_service_client::SalesServiceClient;
use sales_proto::seed::SalesMessage;
use sales_proto::v1::sales_ingest_client::SalesIngestClient;
use sales_proto::v1::Sale;
use sales_server::testing::TestServer;
use sales_server::Settings;
use serde_json::Value;
use tempfile::TempDir;
use tonic::transport::Channel;

/// A test server with its own temporary database directory.
pub(crate) struct TestApp {
    pub(crate) server: TestServer,
    pub(crate) dir: TempDir,
}

impl TestApp {
    pub(crate) async fn start() -> TestApp {
        TestApp::start_with(|_| {}).await
    }

    pub(crate) async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = TempDir::new().expect("temporary directory");
        let mut settings = Settings::for_tests(dir.path().join("db"));
        adjust(&mut settings);
        let server = TestServer::start_with(settings)
            .await
            .expect("server starts");
        TestApp { server, dir }
    }

    pub(crate) async fn seed_client(&self) -> SalesServiceClient<Channel> {
        SalesServiceClient::connect(self.server.grpc_url.clone())
            .await
            .expect("connects")
    }

    pub(crate) async fn v1_client(&self) -> SalesIngestClient<Channel> {
        SalesIngestClient::connect(self.server.grpc_url.clone())
            .await
            .expect("connects")
    }

    pub(crate) async fn statistics(&self) -> Value {
        self.server.statistics().await.expect("statistics")
    }
}

pub(crate) fn seed_sale(
    item: &str,
    quantity: i32,
    price: f32,
    date: &str,
) -> SalesMessage {
    SalesMessage {
        item: item.into(),
        quantity,
        price,
        date: date.into(),
    }
}

pub(crate) fn v1_sale(
    item: &str,
    quantity: i64,
    price: &str,
    date: &str,
    id: &str,
) -> Sale {
    Sale {
        item: item.into(),
        quantity,
        price: price.into(),
        date: date.into(),
        id: id.into(),
    }
}

/// The exact text of a JSON number, as the server wrote it.
pub(crate) fn number(value: &Value) -> String {
    assert!(value.is_number(), "{value} is not a number");
    value.to_string()
}

/// `(total_quantity, total_revenue, sales)` of an item or month object.
pub(crate) fn figures(value: &Value) -> (u64, String, u64) {
    (
        value["total_quantity"].as_u64().expect("total_quantity"),
        number(&value["total_revenue"]),
        value["sales"].as_u64().expect("sales"),
    )
}
