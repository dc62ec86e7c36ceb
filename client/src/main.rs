//! `sales-client`: reads sales as JSON and pushes them to the sales
//! server.
//!
//! With no arguments it reads stdin, as the seed's client did:
//! `sales-client < data/2023/1/10/00261.json`. Arguments may be files
//! (one object, an array, or NDJSON) and directories in the seed's layout.
//! A single sale is sent with `RecordSale`; anything more streams through
//! `StreamSales` in batches.

// Printing results is this program's job.
#![allow(clippy::print_stdout)]

mod input;
mod report;
mod send;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sales_proto::stream_failure;
use sales_proto::v1::{Outcome as WireOutcome, SaleBatch, StreamSalesReply};
use tokio::task::JoinHandle;

use input::{Event, PlacedBatch, Reader, Source};
use report::{exit, Progress, Summary};
use sales_storage::documents::Place;
use send::Connection;

/// Pushes sales (JSON) to the sales service.
#[derive(Parser)]
#[command(name = "sales-client", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Files or directories to read; `-` or nothing reads stdin. A file
    /// holds one JSON object, an array of them, or one per line (NDJSON).
    inputs: Vec<PathBuf>,

    /// The server's gRPC address.
    #[arg(long, env = "SALES_SERVER", default_value = "http://localhost:50051")]
    server: String,

    /// Bearer token, if the server requires one.
    #[arg(long, env = "SALES_INGEST_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Sales per batch in a stream.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    batch_size: u64,

    /// Keep retrying an unreachable or restarting server for this many
    /// seconds before giving up.
    #[arg(long, default_value_t = 30)]
    retry_secs: u64,

    /// Give up on a call that gets no answer for this many seconds, and
    /// retry it (a server that is frozen, or a network that drops packets).
    /// A call carries at most 16,384 sales.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,

    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,

    /// Put this before the ids derived from file paths (for example
    /// `shop-b/`), so that two sources with the same file names do not
    /// collide.
    #[arg(long, default_value = "")]
    id_prefix: String,
}

const EXIT_CODES: &str =
    "Exit codes: 0 all sales stored (or already stored), 1 some sales \
refused, 2 bad arguments or unreadable input, 3 server unreachable or failing.";

/// Sales sent in one stream; a retry resends at most this many, and the
/// client holds at most `STREAMS_IN_FLIGHT` windows in memory.
const WINDOW_SALES: usize = 16_384;

/// Streams in flight at once: enough to keep the server's writer busy
/// while the next window is read and sent.
const STREAMS_IN_FLIGHT: usize = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(exit::SERVER);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> u8 {
    let server = with_scheme(&cli.server);
    let connection = match Connection::new(
        &server,
        cli.token.as_deref(),
        Duration::from_secs(cli.retry_secs),
        Duration::from_secs(cli.timeout_secs),
    ) {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!("error: {error}");
            return exit::USAGE;
        }
    };
    let sources: Vec<Source> = if cli.inputs.is_empty() {
        vec![Source::Stdin]
    } else {
        cli.inputs
            .iter()
            .map(|input| Source::from_argument(input))
            .collect()
    };

    let bytes_read = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(
        input::total_bytes(&sources),
        Arc::clone(&bytes_read),
        !cli.no_progress,
    );
    let (events, mut received) = tokio::sync::mpsc::channel(8);
    let reader = Reader::new(
        cli.batch_size as usize,
        bytes_read,
        events,
        cli.id_prefix.clone(),
    );
    let reading = tokio::task::spawn_blocking(move || reader.run(sources));

    let mut sender = Sender::new(connection, &server);
    while let Some(event) = received.recv().await {
        sender.handle(event).await;
        progress.message(sender.summary.sent, sender.summary.stored);
        if sender.summary.server_error.is_some() {
            // Gave up on the server: reading on would only count sales
            // that cannot be sent. Closing the channel stops the reader.
            sender.summary.stopped_reading = true;
            break;
        }
    }
    drop(received);
    let _ = reading.await;
    sender.finish().await;
    progress.finish();
    sender.summary.finish()
}

/// A stream in flight: its batches (to locate refusals) and its reply.
type StreamTask = JoinHandle<(Vec<Place>, Result<StreamSalesReply, tonic::Status>)>;

/// A count the server put in an error's metadata; 0 when absent.
fn metadata_count(status: &tonic::Status, key: &str) -> u64 {
    status
        .metadata()
        .get(key)
        .and_then(|value| value.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// `localhost:50051` and `localhost` both mean `http://localhost:50051`.
fn with_scheme(server: &str) -> String {
    if server.contains("://") {
        return server.to_string();
    }
    // A bare host (no port, and not a bracketed IPv6 address with one).
    let has_port = server.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && !host.ends_with(':')
    });
    if has_port {
        format!("http://{server}")
    } else {
        format!("http://{server}:50051")
    }
}

/// An id for a single sale sent without one, unique to this run, so that
/// retrying after a lost reply cannot count it twice while sending the same
/// sale again in a later run still records a new sale, as the seed did.
fn one_off_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = format!("{}:{}", now.as_nanos(), std::process::id());
    format!(
        "client-once:{:032x}",
        xxhash_rust::xxh3::xxh3_128(seed.as_bytes())
    )
}

/// Gathers batches into windows and streams them.
struct Sender {
    connection: Connection,
    server: String,
    window: Vec<PlacedBatch>,
    window_sales: usize,
    streams: Vec<StreamTask>,
    started_streaming: bool,
    summary: Summary,
}

impl Sender {
    fn new(connection: Connection, server: &str) -> Sender {
        Sender {
            connection,
            server: server.to_string(),
            window: Vec::new(),
            window_sales: 0,
            streams: Vec::new(),
            started_streaming: false,
            summary: Summary::default(),
        }
    }

    async fn handle(&mut self, event: Event) {
        match event {
            Event::Refused { place, rejection } => {
                self.summary.refuse(&place, &rejection.to_string())
            }
            Event::Skipped { dir, files } => self.summary.skipped.push(format!(
                "{dir}: skipped {files} entries that are not regular .json or .ndjson files, or are links to files or directories read already"
            )),
            Event::Unreadable { place, error } => {
                self.summary.unreadable.push(format!("{place}: {error}"))
            }
            Event::Batch(batch) => {
                self.window_sales += batch.wire.sales.len();
                self.window.push(batch);
                if self.window_sales >= WINDOW_SALES {
                    self.launch().await;
                }
            }
        }
    }

    /// Starts streaming the current window, waiting for an earlier stream
    /// if too many are in flight.
    async fn launch(&mut self) {
        self.started_streaming = true;
        let window = std::mem::take(&mut self.window);
        self.window_sales = 0;
        if self.streams.len() >= STREAMS_IN_FLIGHT {
            let oldest = self.streams.remove(0);
            self.collect(oldest).await;
        }
        if self.summary.server_error.is_some() {
            // Each further call would wait for the same failing server.
            self.summary.unsent += window
                .iter()
                .map(|batch| batch.wire.sales.len() as u64)
                .sum::<u64>();
            return;
        }
        let (batches, places): (Vec<SaleBatch>, Vec<Vec<Place>>) = window
            .into_iter()
            .map(|batch| (batch.wire, batch.places))
            .unzip();
        let places: Vec<Place> = places.into_iter().flatten().collect();
        let connection = self.connection.clone();
        self.streams.push(tokio::spawn(async move {
            let reply = connection.stream(batches.into()).await;
            (places, reply)
        }));
    }

    async fn finish(&mut self) {
        let single = !self.started_streaming
            && self.window.len() == 1
            && self.window[0].wire.sales.len() == 1;
        if single {
            self.send_one().await;
        } else if !self.window.is_empty() {
            self.launch().await;
        }
        for stream in std::mem::take(&mut self.streams) {
            self.collect(stream).await;
        }
    }

    /// The seed's usage: one sale, one call, and the server's answer.
    async fn send_one(&mut self) {
        let batch = self.window.remove(0);
        let place = &batch.places[0];
        let mut sale = batch.wire.sales[0].clone();
        if sale.id.is_empty() {
            // On stdin, the seed's usage: every send is a new sale. From a
            // file, the id a batch of it would get, so that sending the file
            // again counts nothing twice, as with longer files.
            sale.id = match input::from_stdin(place) {
                true => one_off_id(),
                false => batch.wire.batch_id.clone(),
            };
        }
        match self.connection.record(sale.clone()).await {
            Ok(reply) => {
                self.summary.sent = 1;
                let outcome = match reply.outcome() {
                    WireOutcome::Duplicate => {
                        self.summary.duplicates += 1;
                        "already stored (same id, same content)"
                    }
                    _ => {
                        self.summary.stored += 1;
                        "stored"
                    }
                };
                println!(
                    "{outcome}: {} x {} at {} on {} (month {})",
                    sale.quantity, sale.item, sale.price, sale.date, reply.month
                );
            }
            Err(status) => self.server_refused(&place.to_string(), &status, 1),
        }
    }

    async fn collect(&mut self, stream: StreamTask) {
        let Ok((places, reply)) = stream.await else {
            self.summary.server_error = Some("a sending task failed".into());
            return;
        };
        let sales = places.len() as u64;
        match reply {
            Ok(reply) => {
                self.summary.sent += sales;
                self.summary.stored += reply.stored;
                self.summary.duplicates += reply.duplicates;
                for rejection in &reply.rejections {
                    let place = places
                        .get(rejection.position as usize)
                        .map_or_else(|| "?".to_string(), Place::to_string);
                    self.summary.refuse(&place, &rejection.reason);
                }
                // Refusals beyond the listed ones are counted, not located.
                let unlisted =
                    reply.rejected.saturating_sub(reply.rejections.len() as u64);
                self.summary.refused += unlisted;
            }
            Err(status) => {
                // What the stream settled before failing, when the server
                // says so: those sales are not among the unconfirmed.
                let stored = metadata_count(&status, stream_failure::STORED);
                let duplicates = metadata_count(&status, stream_failure::DUPLICATES);
                let settled = (stored + duplicates).min(sales);
                self.summary.sent += settled;
                self.summary.stored += stored.min(settled);
                self.summary.duplicates += settled - stored.min(settled);
                let place = places.first().map(Place::to_string).unwrap_or_default();
                self.server_refused(&place, &status, sales - settled);
            }
        }
    }

    fn server_refused(&mut self, place: &str, status: &tonic::Status, sales: u64) {
        match status.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::AlreadyExists
            | tonic::Code::ResourceExhausted => {
                self.summary.refuse(place, status.message());
            }
            tonic::Code::Unauthenticated => {
                self.summary.unsent += sales;
                self.summary.server_error =
                    Some(format!("the server refused the token: {} (set --token or SALES_INGEST_TOKEN)", status.message()));
            }
            // Made by this side's HTTP/2 stack, not sent by a gRPC server:
            // something else answers at that address.
            tonic::Code::Internal if std::error::Error::source(status).is_some() => {
                self.summary.unsent += sales;
                self.summary.server_error = Some(format!(
                    "{} does not answer as a gRPC server: {}; is that its gRPC port \
                     (50051 unless changed; 50052 is the HTTP statistics API)? Set --server \
                     or SALES_SERVER",
                    self.server,
                    status.message()
                ));
            }
            _ if send::is_transient(status) => {
                self.summary.unsent += sales;
                self.summary.server_error = Some(format!(
                    "cannot reach the server at {}, or it went away: {} ({:?}); \
                     is it running? Is that its gRPC port (50051 unless changed; 50052 \
                     is the HTTP statistics API)? Set --server or SALES_SERVER, or wait \
                     longer with --retry-secs",
                    self.server,
                    status.message(),
                    status.code()
                ));
            }
            _ => {
                self.summary.unsent += sales;
                self.summary.server_error = Some(format!(
                    "the server at {} failed to store sales: {} ({:?}); its log says why \
                     (a full disk, say). Once it is fixed, run the same command again: \
                     sales already stored count as duplicates",
                    self.server,
                    status.message(),
                    status.code()
                ));
            }
        }
    }
}
