//! The gRPC ingest services: the seed's `SalesService` and `sales.v1`.
//! Handlers only translate: wire message → validated sale → writer →
//! reply. All rules live in `sales_storage`.

mod seed;
mod v1;

use sales_proto::stream_failure;
use sales_storage::{Rejection, StoreError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub(crate) use seed::SeedService;
pub(crate) use v1::IngestService;

/// Largest accepted gRPC message. A batch of 4 096 sales is about 400 kB.
pub(crate) const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// A refused sale: `INVALID_ARGUMENT`, with the field in the message and
/// as a `BadRequest` field violation for clients that read details.
pub(crate) fn invalid(rejection: &Rejection) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(rejection.field, rejection.to_string());
    Status::with_error_details(Code::InvalidArgument, rejection.to_string(), details)
}

/// A store failure: the sender is not at fault, so the reply says only
/// that the sale was not stored; the cause goes to the log once.
pub(crate) fn store_failure(error: StoreError) -> Status {
    match error {
        StoreError::ShuttingDown => Status::unavailable(
            "the server is shutting down; retry against the new instance",
        ),
        other => {
            tracing::error!(error = %other, "sale not stored");
            Status::internal(
                "the sale could not be stored; nothing was recorded, retry later",
            )
        }
    }
}

/// A store failure in the middle of a stream: earlier batches of the same
/// stream may be stored, so "nothing was recorded" would be wrong. The
/// counts also go in metadata, for clients to add up.
pub(crate) fn stream_failure(error: StoreError, stored: u64, duplicates: u64) -> Status {
    let status = store_failure(error);
    let message = format!(
        "the server stopped storing this stream's sales after storing \
         {stored} of them; later ones may or may not be stored, and \
         sending them again counts those that are as duplicates"
    );
    let mut status = Status::new(status.code(), message);
    let metadata = status.metadata_mut();
    metadata.insert(stream_failure::STORED, stored.into());
    metadata.insert(stream_failure::DUPLICATES, duplicates.into());
    status
}

/// Why a sale of a new item was refused when the store is full of items.
pub(crate) const ITEM_LIMIT_RULE: &str =
    "is a new item, and the store already tracks the \
    most items it is configured for (--max-items); nothing was stored";

/// The same for a sale of a stream: a batch with a batch id is stored
/// whole or not at all, so a sale of a known item can be refused with it.
pub(crate) const STREAM_ITEM_LIMIT_RULE: &str =
    "was not stored: it, or its batch (stored whole or not at all), brings \
    new items beyond the most the store is configured to track (--max-items); \
    raise the limit and send it again";

/// `RESOURCE_EXHAUSTED`: the sale is valid but the store's item limit is
/// reached. The operator can raise `--max-items`.
pub(crate) fn too_many_items(item: &str) -> Status {
    let rejection = Rejection::new("item", item, ITEM_LIMIT_RULE);
    tracing::warn!(%rejection, "item limit reached");
    Status::resource_exhausted(rejection.to_string())
}

/// Checks `authorization: Bearer TOKEN` when a token is configured.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    expected: Option<Vec<u8>>,
}

impl BearerAuth {
    pub(crate) fn new(token: Option<&str>) -> BearerAuth {
        BearerAuth {
            expected: token.map(|token| token.as_bytes().to_vec()),
        }
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(
        &mut self,
        request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let header = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        // The scheme is case-insensitive (RFC 9110); the token is not.
        let given = match header.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => token,
            _ => &[],
        };
        if constant_time_equal(given, expected) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong token: send `authorization: Bearer TOKEN` with the \
                 token the server was started with",
            ))
        }
    }
}

/// Compares without stopping at the first difference, so that response
/// times do not reveal how much of a guessed token was right.
fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter()) {
        difference |= usize::from(x ^ y);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_failure_says_how_many_sales_were_stored_and_hides_the_cause() {
        let stopping = stream_failure(StoreError::ShuttingDown, 8_192, 4_096);
        assert_eq!(stopping.code(), Code::Unavailable);
        assert!(stopping.message().contains("after storing 8192 of them"));
        let metadata = stopping.metadata();
        assert_eq!(metadata.get(stream_failure::STORED).unwrap(), "8192");
        assert_eq!(metadata.get(stream_failure::DUPLICATES).unwrap(), "4096");

        let failed =
            stream_failure(StoreError::WriteFailed("/srv/db: disk full".into()), 0, 0);
        assert_eq!(failed.code(), Code::Internal);
        assert!(failed.message().contains("after storing 0 of them"));
        assert!(!failed.message().contains("/srv/db"));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_equal(b"Bearer abc", b"Bearer abc"));
        assert!(!constant_time_equal(b"Bearer abd", b"Bearer abc"));
        assert!(!constant_time_equal(b"Bearer ab", b"Bearer abc"));
        assert!(!constant_time_equal(b"", b"Bearer abc"));
    }
}
