//! The sales server as a library: open the store, seed it, serve gRPC and
//! HTTP on bound listeners, and stop cleanly on one shutdown signal.
//!
//! `main.rs` only parses settings and calls [`Application::build`] and
//! [`Application::run_until`]; tests do the same with free ports and a
//! temporary database.

pub mod config;
mod grpc;
mod http;
pub mod shutdown;
pub mod telemetry;
pub mod testing;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sales_proto::seed::sales_service_server::SalesServiceServer;
use sales_proto::v1::sales_ingest_server::SalesIngestServer;
use sales_storage::import::import_directory;
use sales_storage::{SeedState, Store, StoreOptions, Writer};
use tonic::transport::server::TcpIncoming;

pub use config::Settings;

/// A server ready to run: store open, listeners bound.
pub struct Application {
    settings: Settings,
    writer: Writer,
    grpc: tokio::net::TcpListener,
    http: std::net::TcpListener,
}

impl Application {
    /// Opens the database (importing the seed data into a new one), starts
    /// the writer and binds both ports. Must run inside a Tokio runtime.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if settings.ingest_token.as_deref() == Some("") {
            anyhow::bail!(
                "the ingest token (--ingest-token or SALES_INGEST_TOKEN) is set but empty; \
                 set a real token, or unset it to leave ingest open"
            );
        }
        // Ports first: a busy port should fail before any import work.
        let grpc = tokio::net::TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| {
                format!("cannot listen for gRPC on {}", settings.grpc_addr)
            })?;
        let http =
            std::net::TcpListener::bind(settings.http_addr).with_context(|| {
                format!("cannot listen for HTTP on {}", settings.http_addr)
            })?;

        let options = StoreOptions {
            cache_bytes: settings.cache_mb * 1024 * 1024,
            max_items: settings.max_items,
            fsync: settings.fsync,
            ..StoreOptions::default()
        };
        let opened = Instant::now();
        let db = settings.db.clone();
        let store =
            tokio::task::spawn_blocking(move || Store::open(&db, &options)).await??;
        tracing::info!(
            db = %settings.db.display(),
            micros = opened.elapsed().as_micros() as u64,
            "database opened"
        );
        let writer = start_writer(&settings, store).await?;
        Ok(Application {
            settings,
            writer,
            grpc,
            http,
        })
    }

    /// The address gRPC clients connect to.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The address of the HTTP statistics API.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// Serves until `shutdown` completes (or a server fails), then stops
    /// taking requests, lets in-flight ones finish within the grace period,
    /// flushes and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Application {
            settings,
            writer,
            grpc,
            http,
        } = self;
        tracing::info!(
            grpc = %grpc.local_addr()?,
            http = %http.local_addr()?,
            "serving"
        );

        let grace = Duration::from_secs(settings.shutdown_grace_secs);
        let http_server = http::server(
            http,
            writer.statistics(),
            writer.health(),
            settings.http_workers,
            settings.shutdown_grace_secs,
        )?;
        let http_handle = http_server.handle();
        let mut http_task = tokio::spawn(http_server);

        let (stop_grpc, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut grpc_task = tokio::spawn(
            grpc_router(&settings, &writer).serve_with_incoming_shutdown(
                grpc_connections(grpc),
                async {
                    let _ = grpc_stopped.await;
                },
            ),
        );

        tokio::select! {
            () = shutdown => tracing::info!("shutdown requested; finishing in-flight requests"),
            result = &mut grpc_task => tracing::error!(?result, "gRPC server stopped unexpectedly"),
            result = &mut http_task => tracing::error!(?result, "HTTP server stopped unexpectedly"),
        }

        let _ = stop_grpc.send(());
        let drained = tokio::time::timeout(grace, async {
            tokio::join!(http_handle.stop(true), async {
                if !grpc_task.is_finished() {
                    let _ = (&mut grpc_task).await;
                }
            })
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "requests still running after the grace period; stopping anyway"
            );
            grpc_task.abort();
        }

        let store = tokio::task::spawn_blocking(move || writer.close()).await??;
        tracing::info!(db = %store.path().display(), "database flushed and closed");
        Ok(())
    }
}

fn grpc_router(settings: &Settings, writer: &Writer) -> tonic::transport::server::Router {
    let auth = grpc::BearerAuth::new(settings.ingest_token.as_deref());
    let seed = SalesServiceServer::new(grpc::SeedService::new(writer.handle()))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let v1 = SalesIngestServer::new(grpc::IngestService::new(writer.handle()))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(
            seed,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            v1, auth,
        ))
}

/// The gRPC connections, with Nagle's algorithm off. Set here, not on the
/// builder: tonic ignores its own `tcp_nodelay` for a listener it did not
/// bind, and with Nagle on a small reply can wait for the peer's next ACK,
/// which cut unary throughput with 64 calls in flight by 15 %.
fn grpc_connections(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Starts the writer, first importing the seed data directory into a new
/// database. The import is marked as started before it begins and done
/// after it ends, so an import interrupted by a crash or a stop resumes on
/// the next start; sales already imported come back as duplicates (each
/// sale's id is its file path), never twice. A database that already holds
/// sales, or was started with `--no-seed`, is never seeded.
async fn start_writer(settings: &Settings, store: Store) -> anyhow::Result<Writer> {
    let state = store.seed_state()?;
    let empty = store
        .statistics()
        .read()
        .map(|s| s.item_count() == 0)
        .unwrap_or(false);
    let wanted = match state {
        SeedState::Done => false,
        SeedState::Started => true,
        SeedState::NotStarted => {
            !settings.no_seed && empty && settings.seed_data.is_dir()
        }
    };
    if state == SeedState::Started && settings.no_seed {
        tracing::warn!(
            dir = %settings.seed_data.display(),
            "an interrupted import of sample data is pending; it resumes at the next \
             start without --no-seed"
        );
    }
    if settings.no_seed || !wanted {
        if state == SeedState::NotStarted {
            store.set_seed_state(SeedState::Done)?;
        }
        return Ok(Writer::start(store)?);
    }
    if !settings.seed_data.is_dir() {
        anyhow::bail!(
            "an import of sample data from {} was interrupted and cannot resume: the \
             directory is missing. Start from the directory that holds it (or pass \
             --seed-data), or start with --no-seed to keep the database as it is",
            settings.seed_data.display()
        );
    }

    if state == SeedState::Started {
        tracing::info!(dir = %settings.seed_data.display(), "resuming an interrupted seed import");
    }
    store.set_seed_state(SeedState::Started)?;
    let writer = Writer::start(store)?;
    import_seed(settings, &writer).await?;
    let store = tokio::task::spawn_blocking(move || writer.close()).await??;
    store.set_seed_state(SeedState::Done)?;
    Ok(Writer::start(store)?)
}

async fn import_seed(settings: &Settings, writer: &Writer) -> anyhow::Result<()> {
    let handle = writer.handle();
    let dir = settings.seed_data.clone();
    let report = tokio::task::spawn_blocking(move || import_directory(&handle, &dir, ""))
        .await??;
    tracing::info!(
        dir = %settings.seed_data.display(),
        files = report.files,
        stored = report.stored,
        duplicates = report.duplicates,
        rejected = report.rejected,
        millis = report.elapsed.as_millis() as u64,
        "imported seed data"
    );
    for (place, rejection) in report.rejections.iter().take(20) {
        tracing::warn!(%place, %rejection, "seed sale refused");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn grpc_connections_are_accepted_without_nagle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut connections = grpc_connections(listener);

        let _caller = tokio::net::TcpStream::connect(address).await.unwrap();
        let accepted = connections.next().await.unwrap().unwrap();

        assert!(accepted.nodelay().unwrap());
    }
}
