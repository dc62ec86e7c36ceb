//! Talking to the server: one sale with `RecordSale`, many with
//! `StreamSales`, retrying transient failures with backoff.
//!
//! A retry resends a whole window of batches. That is safe because every
//! batch carries an id derived from its content: batches that reached the
//! disk before the failure come back as duplicates, not as new sales.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    outage: Outage,
}

/// The retry budget, shared by every stream of the run: it counts from the
/// first failure since the last success, so a run gives up once the server
/// has been unreachable for `--retry-secs`, however many streams wait.
#[derive(Clone)]
struct Outage {
    since: Arc<std::sync::Mutex<Option<Instant>>>,
    limit: Duration,
}

impl Outage {
    fn keep_trying(&self) -> bool {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        let started = *since.get_or_insert_with(Instant::now);
        started.elapsed() < self.limit
    }

    fn over(&self) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
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
        call_timeout: Duration,
    ) -> anyhow::Result<Connection> {
        if server.starts_with("https://") {
            anyhow::bail!(
                "--server {server:?}: TLS is not supported by this client, and the server \
                 speaks plain gRPC; use http:// (behind a TLS-terminating proxy if the \
                 network is not trusted)"
            );
        }
        let endpoint = Endpoint::from_shared(server.to_string())
            .map_err(|error| {
                anyhow::anyhow!("--server {server:?} is not a valid URL: {error}")
            })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            // Without an answer, a call would wait forever on a server that
            // accepted the connection and then froze.
            .timeout(call_timeout)
            // Pings notice a dead server or network sooner, even while a
            // long stream is being sent.
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        // An empty SALES_INGEST_TOKEN (as compose passes when unset) means none.
        let token = match token.filter(|token| !token.is_empty()) {
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
        Ok(Connection {
            client,
            outage: Outage {
                since: Arc::default(),
                limit: retry_for,
            },
        })
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
        let mut pause = Duration::from_millis(100);
        loop {
            match call(self.client.clone()).await {
                Err(status) if is_transient(&status) && self.outage.keep_trying() => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(3));
                }
                Err(status) => return Err(status),
                Ok(reply) => {
                    self.outage.over();
                    return Ok(reply);
                }
            }
        }
    }
}

/// Failures worth retrying: the server is restarting or unreachable.
pub(crate) fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::Aborted
            | Code::DeadlineExceeded
            // A server shutting down cancels the streams it has not finished.
            | Code::Cancelled
    )
}
