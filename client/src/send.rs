//! Talking to the server: one sale with `RecordSale`, many with
//! `StreamSales`, retrying transient failures with backoff.
//!
//! A retry resends a whole window of batches. That is safe because every
//! batch carries an id derived from its content: batches that reached the
//! disk before the failure come back as duplicates, not as new sales.

use std::sync::Arc;
use std::time::Duration;

use sales_proto::v1::sales_ingest_client::SalesIngestClient;
use sales_proto::v1::{
    RecordSaleReply, RecordSaleRequest, Sale as WireSale, SaleBatch, StreamSalesReply,
};
use tonic::codegen::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

/// How the client reaches the server.
#[derive(Clone)]
pub(crate) struct Connection {
    client: SalesIngestClient<InterceptedService<Channel, Token>>,
    retry_for: Duration,
}

/// Adds `authorization: Bearer TOKEN` when a token is set.
#[derive(Clone)]
pub(crate) struct Token(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl Connection {
    /// Prepares a connection; nothing is dialled until the first call.
    pub(crate) fn new(
        server: &str,
        token: Option<&str>,
        retry_for: Duration,
    ) -> anyhow::Result<Connection> {
        let endpoint = Endpoint::from_shared(server.to_string())
            .map_err(|error| {
                anyhow::anyhow!("--server {server:?} is not a valid URL: {error}")
            })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true);
        let token = match token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| anyhow::anyhow!("the token must be printable ASCII"))?,
            ),
            None => None,
        };
        let client =
            SalesIngestClient::with_interceptor(endpoint.connect_lazy(), Token(token))
                .max_decoding_message_size(16 * 1024 * 1024);
        Ok(Connection { client, retry_for })
    }

    /// Records one sale.
    pub(crate) async fn record(&self, sale: WireSale) -> Result<RecordSaleReply, Status> {
        self.with_retries(|mut client| {
            let request = RecordSaleRequest {
                sale: Some(sale.clone()),
            };
            async move {
                client
                    .record_sale(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
    }

    /// Sends batches as one stream and returns the server's summary.
    /// Each attempt copies one batch at a time as it is sent, so a window
    /// is held in memory once, not once per attempt.
    pub(crate) async fn stream(
        &self,
        batches: Arc<[SaleBatch]>,
    ) -> Result<StreamSalesReply, Status> {
        self.with_retries(|mut client| {
            let batches = Arc::clone(&batches);
            async move {
                let count = batches.len();
                let stream =
                    tokio_stream::iter((0..count).map(move |i| batches[i].clone()));
                client
                    .stream_sales(stream)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
    }

    async fn with_retries<F, Fut, T>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut(SalesIngestClient<InterceptedService<Channel, Token>>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            match call(self.client.clone()).await {
                Err(status)
                    if is_transient(&status) && started.elapsed() < self.retry_for =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
                other => return other,
            }
        }
    }
}

/// Failures worth retrying: the server is restarting or unreachable.
fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Aborted | Code::DeadlineExceeded
    )
}
