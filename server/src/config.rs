//! The server's settings: defaults in code, overridden by environment
//! variables, overridden by flags. `sales-server --help` lists them all.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Runs the sales service: gRPC ingest and the HTTP statistics API.
#[derive(Debug, Clone, Parser)]
#[command(name = "sales-server", version, about)]
pub struct Settings {
    /// Address of the gRPC ingest service (port 0 picks a free port).
    #[arg(long, env = "SALES_GRPC_ADDR", default_value = "0.0.0.0:50051")]
    pub grpc_addr: SocketAddr,

    /// Address of the HTTP statistics API (port 0 picks a free port).
    #[arg(long, env = "SALES_HTTP_ADDR", default_value = "0.0.0.0:50052")]
    pub http_addr: SocketAddr,

    /// Directory of the sled database; created if missing.
    #[arg(long, env = "SALES_DB", default_value = "db")]
    pub db: PathBuf,

    /// Directory of sample sales (`YYYY/M/D/NNNNN.json`) imported on the
    /// first start with a new database. Skipped if the directory is missing.
    #[arg(long, env = "SALES_SEED_DATA", default_value = "data")]
    pub seed_data: PathBuf,

    /// Do not import the seed data, even into a new database.
    #[arg(long, env = "SALES_NO_SEED", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub no_seed: bool,

    /// sled's page cache in MiB. Statistics are served from memory, so the
    /// cache mainly speeds up id look-ups and verification.
    #[arg(long, env = "SALES_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,

    /// Most distinct items the store tracks; sales of further new items are
    /// refused with RESOURCE_EXHAUSTED. Bounds memory and the size of the
    /// statistics report.
    #[arg(long, env = "SALES_MAX_ITEMS", default_value_t = 100_000)]
    pub max_items: usize,

    /// fdatasync the commit journal after every commit (and sled's file at
    /// checkpoints), so that an acknowledged sale survives a power cut, not
    /// only a crash of the process or the system. Costs about 0.13 ms per
    /// commit instead of 0.07 ms (commits are shared by concurrent
    /// requests).
    #[arg(long, env = "SALES_FSYNC", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub fsync: bool,

    /// Require `authorization: Bearer TOKEN` on every gRPC ingest call.
    /// Off when unset, for the local quick start.
    #[arg(long, env = "SALES_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,

    /// HTTP worker threads.
    #[arg(long, env = "SALES_HTTP_WORKERS", default_value_t = 2)]
    pub http_workers: usize,

    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "SALES_SHUTDOWN_GRACE", default_value_t = 5)]
    pub shutdown_grace_secs: u64,

    /// Log format: human-readable text or one JSON object per line.
    /// The level is set with RUST_LOG (default: info).
    #[arg(long, env = "SALES_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Settings for tests and embedding: free loopback ports, the given
    /// database directory, no seed import.
    pub fn for_tests(db: PathBuf) -> Settings {
        Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db,
            seed_data: PathBuf::from("data"),
            no_seed: true,
            cache_mb: 16,
            max_items: 100_000,
            fsync: false,
            ingest_token: None,
            http_workers: 1,
            shutdown_grace_secs: 5,
            log_format: LogFormat::Text,
        }
    }
}
