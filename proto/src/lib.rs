//! The gRPC contracts, generated at build time from `proto/`.
//!
//! Two contracts live side by side: [`seed`], the original project's
//! `SalesService` kept wire-compatible, and [`v1`], the versioned contract
//! with exact prices, ids and streaming. Server, client and tests share these
//! generated types so that no one edits generated code by hand.

/// The seed's contract: service `SalesService` in no protobuf package.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod seed {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// Version 1 of the ingest contract, protobuf package `sales.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/sales.v1.rs"));
}

/// Metadata of a `StreamSales` error: how many of the stream's sales were
/// stored, and how many were duplicates, before storing failed.
pub mod stream_failure {
    /// Sales of the stream newly stored before the failure.
    pub const STORED: &str = "sales-stored";
    /// Sales of the stream found already stored before the failure.
    pub const DUPLICATES: &str = "sales-duplicates";
}
