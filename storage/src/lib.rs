//! The core of the sales service: what a sale is, how it is checked, and
//! how it is stored in sled with per-item, per-month totals kept in the
//! same atomic, durable commit.
//!
//! The server, the client and the migrations tool all depend on this
//! crate; it depends on none of them and knows nothing of gRPC or HTTP.
//!
//! - Domain: [`Sale`] built from [`Item`], [`Quantity`], [`Price`] and
//!   [`SaleDate`]; every constructor validates and a refusal is a
//!   [`Rejection`] naming the field, the value and the rule.
//! - Input: [`json`] parses one sale; [`documents`] streams many.
//! - Storage: [`Store`] (opening, commits, scans) and [`Writer`], the one
//!   thread that writes, batching concurrent requests into group commits.
//! - Reads: [`Statistics`], kept in memory and updated after each commit.

mod aggregates;
mod codec;
mod date;
pub mod documents;
mod error;
mod group;
pub mod import;
mod item;
mod journal;
pub mod json;
mod keys;
pub mod listing;
pub mod migrate;
mod money;
mod quantity;
pub mod readahead;
mod sale;
mod store;
mod writer;

pub use aggregates::{Statistics, Totals};
pub use date::{Month, SaleDate};
pub use error::{Rejection, StoreError};
pub use item::{Item, MAX_ITEM_CHARS};
pub use money::{Price, Revenue, MAX_PRICE, PRICE_DECIMALS};
pub use quantity::{Quantity, MAX_QUANTITY};
pub use sale::{NewSale, Sale, SaleId, MAX_ID_BYTES};
pub use store::{
    Outcome, SeedState, SharedStatistics, Store, StoreOptions, WriteRequest,
    LAYOUT_VERSION,
};
pub use writer::{wait_blocking, WriteResult, Writer, WriterHandle, WriterHealth};
