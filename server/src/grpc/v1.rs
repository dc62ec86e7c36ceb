//! `sales.v1.SalesIngest`: exact prices, idempotent ids, bulk streaming.

use std::collections::VecDeque;

use sales_proto::v1::sales_ingest_server::SalesIngest;
use sales_proto::v1::{
    Outcome as WireOutcome, RecordSaleReply, RecordSaleRequest,
    Rejection as WireRejection, Sale as WireSale, SaleBatch, StreamSalesReply,
};
use sales_storage::{
    NewSale, Outcome, Rejection, Sale, SaleId, WriteRequest, WriterHandle,
};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status, Streaming};

use super::{
    invalid, store_failure, stream_failure, too_many_items, STREAM_ITEM_LIMIT_RULE,
};

/// Batches of one stream being written at once: enough to keep the writer
/// busy while the next batch is decoded, few enough to bound memory.
const BATCHES_IN_FLIGHT: usize = 4;

/// Most refusals listed in a stream's reply; the count covers them all.
const LISTED_REJECTIONS: usize = 100;

pub(crate) struct IngestService {
    writer: WriterHandle,
}

impl IngestService {
    pub(crate) fn new(writer: WriterHandle) -> IngestService {
        IngestService { writer }
    }
}

fn to_new_sale(sale: &WireSale) -> Result<NewSale, Rejection> {
    Ok(NewSale {
        sale: Sale::from_fields(&sale.item, sale.quantity, &sale.price, &sale.date)?,
        id: SaleId::parse_optional("id", &sale.id)?,
    })
}

#[tonic::async_trait]
impl SalesIngest for IngestService {
    #[tracing::instrument(name = "RecordSale", skip_all)]
    async fn record_sale(
        &self,
        request: Request<RecordSaleRequest>,
    ) -> Result<Response<RecordSaleReply>, Status> {
        let wire = request
            .into_inner()
            .sale
            .ok_or_else(|| invalid(&Rejection::new("sale", "", "is missing")))?;
        let new = to_new_sale(&wire).map_err(|rejection| invalid(&rejection))?;
        let month = new.sale.date.month().to_string();

        let outcomes = self
            .writer
            .write(WriteRequest::sales(vec![new]))
            .await
            .map_err(store_failure)?;
        let outcome = match outcomes.first() {
            Some(Outcome::Stored) => WireOutcome::Stored,
            Some(Outcome::Duplicate) => WireOutcome::Duplicate,
            Some(Outcome::TooManyItems) => return Err(too_many_items(&wire.item)),
            Some(Outcome::Conflict) | None => {
                return Err(Status::already_exists(format!(
                    "id {:?} is already stored with different content; nothing changed",
                    wire.id
                )))
            }
        };
        Ok(Response::new(RecordSaleReply {
            outcome: outcome.into(),
            month,
        }))
    }

    #[tracing::instrument(name = "StreamSales", skip_all, fields(received, stored))]
    async fn stream_sales(
        &self,
        request: Request<Streaming<SaleBatch>>,
    ) -> Result<Response<StreamSalesReply>, Status> {
        let mut stream = request.into_inner();
        let mut tally = Tally::default();
        let mut in_flight: VecDeque<PendingBatch> = VecDeque::new();

        while let Some(batch) = stream.message().await? {
            let pending = self.start_batch(batch, &mut tally);
            in_flight.extend(pending);
            while in_flight.len() >= BATCHES_IN_FLIGHT {
                finish_batch(in_flight.pop_front(), &mut tally).await?;
            }
        }
        while !in_flight.is_empty() {
            finish_batch(in_flight.pop_front(), &mut tally).await?;
        }

        let span = tracing::Span::current();
        span.record("received", tally.reply.received);
        span.record("stored", tally.reply.stored);
        tracing::info!(
            received = tally.reply.received,
            stored = tally.reply.stored,
            duplicates = tally.reply.duplicates,
            rejected = tally.reply.rejected,
            "stream finished"
        );
        Ok(Response::new(tally.reply))
    }
}

/// Running counts of a stream.
#[derive(Default)]
struct Tally {
    reply: StreamSalesReply,
}

impl Tally {
    fn reject(&mut self, position: u64, field: &str, reason: String) {
        self.reply.rejected += 1;
        if self.reply.rejections.len() < LISTED_REJECTIONS {
            self.reply.rejections.push(WireRejection {
                position,
                field: field.to_string(),
                reason,
            });
        }
    }
}

/// A batch handed to the writer: its task and the stream positions of its
/// sales, to report conflicts by position.
struct PendingBatch {
    positions: Vec<u64>,
    task: JoinHandle<sales_storage::WriteResult>,
}

impl IngestService {
    /// Validates a batch, counts its refusals and hands the rest to the
    /// writer without waiting.
    fn start_batch(&self, batch: SaleBatch, tally: &mut Tally) -> Option<PendingBatch> {
        let first = tally.reply.received;
        tally.reply.received += batch.sales.len() as u64;

        let mut positions = Vec::with_capacity(batch.sales.len());
        let mut valid = Vec::with_capacity(batch.sales.len());
        for (offset, wire) in batch.sales.iter().enumerate() {
            let position = first + offset as u64;
            match to_new_sale(wire) {
                Ok(new) => {
                    positions.push(position);
                    valid.push(new);
                }
                Err(rejection) => {
                    tally.reject(position, rejection.field, rejection.to_string())
                }
            }
        }
        if valid.is_empty() {
            return None;
        }

        let request = match SaleId::parse_optional("batch_id", &batch.batch_id) {
            Ok(Some(id)) => WriteRequest::batch(id, valid),
            Ok(None) => WriteRequest::sales(valid),
            Err(rejection) => {
                // A bad batch id refuses its batch, not the whole stream:
                // earlier batches may already be stored.
                for position in positions {
                    tally.reject(position, rejection.field, rejection.to_string());
                }
                return None;
            }
        };
        let writer = self.writer.clone();
        let task = tokio::spawn(async move { writer.write(request).await });
        Some(PendingBatch { positions, task })
    }
}

async fn finish_batch(
    pending: Option<PendingBatch>,
    tally: &mut Tally,
) -> Result<(), Status> {
    let Some(pending) = pending else {
        return Ok(());
    };
    let outcomes = pending
        .task
        .await
        .map_err(|_| Status::internal("the write task failed"))?
        .map_err(|error| {
            stream_failure(error, tally.reply.stored, tally.reply.duplicates)
        })?;
    for (position, outcome) in pending.positions.into_iter().zip(outcomes) {
        match outcome {
            Outcome::Stored => tally.reply.stored += 1,
            Outcome::Duplicate => tally.reply.duplicates += 1,
            Outcome::Conflict => tally.reject(
                position,
                "id",
                "this id (or batch id) is already stored with different content".into(),
            ),
            Outcome::TooManyItems => {
                tally.reject(position, "item", STREAM_ITEM_LIMIT_RULE.into())
            }
        }
    }
    Ok(())
}
