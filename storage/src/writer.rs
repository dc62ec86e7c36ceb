//! The single writer: one thread owns the store and turns queued requests
//! into group commits.
//!
//! Every request waiting when a commit starts joins it, so one journal
//! write pays for many requests: a lone client waits for one, and
//! sixty-four concurrent clients share one instead of queueing for
//! sixty-four. Requesters are answered as soon as their commit is in the
//! journal; sled applies the journaled commits later, several at once,
//! while the requesters are busy sending their next requests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::store::{Outcome, SharedStatistics, Store, WriteRequest};

/// Requests are merged into one commit until it holds this many sales (a
/// single larger request is committed whole). Measured on the 2-core
/// machine: 1,024 loads a million sales faster than 65,536 (smaller commits
/// overlap better with decoding the next batch) and still gives 64
/// concurrent unary callers one shared flush.
const MAX_COMMIT_SALES: usize = 1_024;

/// Requests that may wait in the queue before senders are slowed down.
const QUEUE_DEPTH: usize = 1_024;

/// Journaled commits are applied to sled once they hold this many writes
/// (sled keys): one batch for many small commits is much cheaper than one
/// each, and bigger batches make sled itself hold far more memory.
const APPLY_AFTER_WRITES: usize = 1_024;

/// ... or once no request has come for this long.
const APPLY_WHEN_IDLE: Duration = Duration::from_millis(2);

/// The answer to a request: one outcome per sale.
pub type WriteResult = Result<Vec<Outcome>, StoreError>;

enum Job {
    Write(WriteRequest, oneshot::Sender<WriteResult>),
    Stop,
}

/// Owns the writer thread. Dropping it without [`Writer::close`] leaves the
/// thread to stop when every handle is gone.
pub struct Writer {
    handle: WriterHandle,
    thread: JoinHandle<Result<Store, StoreError>>,
    statistics: SharedStatistics,
    health: WriterHealth,
}

/// Whether the writer still takes writes, for health checks: after a
/// failed write (a full disk, say) it refuses every write until the
/// process restarts, and an orchestrator should know.
#[derive(Clone, Default)]
pub struct WriterHealth(Arc<AtomicBool>);

impl WriterHealth {
    /// False once a write has failed or the writer thread has stopped.
    pub fn is_writing(&self) -> bool {
        !self.0.load(Ordering::Relaxed)
    }

    fn set_failed(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A cheap, cloneable way to submit requests to the writer.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread, which takes ownership of the store.
    pub fn start(store: Store) -> Result<Writer, StoreError> {
        let statistics = store.statistics();
        let (queue, jobs) = mpsc::channel(QUEUE_DEPTH);
        // Only to wait for the queue with a time limit.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|error| {
                StoreError::WriteFailed(format!("cannot start writer: {error}"))
            })?;
        let health = WriterHealth::default();
        let thread_health = health.clone();
        let thread = std::thread::Builder::new()
            .name("sales-writer".into())
            .spawn(move || {
                let mut store = run(store, jobs, clock, &thread_health);
                thread_health.set_failed();
                // Flushed here, not left to sled's `Drop`: when every handle
                // is dropped without `close` (a runtime shutting down), the
                // store is dropped on this thread, and sled's flush from its
                // `Drop` was seen to hang forever while commits were pending.
                let flushed = store.flush();
                if let Err(error) = &flushed {
                    tracing::error!(%error, "flushing the database after the last write failed");
                }
                flushed.map(|()| store)
            })
            .map_err(|error| {
                StoreError::WriteFailed(format!("cannot start writer: {error}"))
            })?;
        Ok(Writer {
            handle: WriterHandle { queue },
            thread,
            statistics,
            health,
        })
    }

    /// A handle for submitting requests.
    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// The live statistics, updated after each durable commit.
    pub fn statistics(&self) -> SharedStatistics {
        SharedStatistics::clone(&self.statistics)
    }

    /// Whether writes are still taken.
    pub fn health(&self) -> WriterHealth {
        self.health.clone()
    }

    /// Finishes every request queued so far, stops the thread, flushes and
    /// gives the store back. Requests submitted afterwards fail with
    /// [`StoreError::ShuttingDown`].
    pub fn close(self) -> Result<Store, StoreError> {
        // If the queue is full this waits for room; the thread is draining it.
        let _ = self.handle.queue.blocking_send(Job::Stop);
        drop(self.handle);
        self.thread
            .join()
            .map_err(|_| StoreError::WriteFailed("the writer thread panicked".into()))?
    }
}

impl WriterHandle {
    /// Queues a request and waits, asynchronously, until it is durable.
    pub async fn write(&self, request: WriteRequest) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job::Write(request, reply))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Queues a request from blocking code and returns a receiver for its
    /// answer, so that a caller can keep several requests in flight.
    pub fn submit_blocking(
        &self,
        request: WriteRequest,
    ) -> Result<oneshot::Receiver<WriteResult>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .blocking_send(Job::Write(request, reply))
            .map_err(|_| StoreError::ShuttingDown)?;
        Ok(answer)
    }
}

/// Waits for the answer of [`WriterHandle::submit_blocking`].
pub fn wait_blocking(answer: oneshot::Receiver<WriteResult>) -> WriteResult {
    answer
        .blocking_recv()
        .map_err(|_| StoreError::ShuttingDown)?
}

fn run(
    mut store: Store,
    mut jobs: mpsc::Receiver<Job>,
    clock: tokio::runtime::Runtime,
    health: &WriterHealth,
) -> Store {
    let mut stopping = false;
    while !stopping {
        if store.has_failed() {
            health.set_failed();
        }
        let next = match store.pending_writes() {
            0 => jobs.blocking_recv(),
            _ => match clock.block_on(async {
                tokio::time::timeout(APPLY_WHEN_IDLE, jobs.recv()).await
            }) {
                Ok(job) => job,
                Err(_idle) => {
                    apply_pending(&mut store);
                    continue;
                }
            },
        };
        let Some(first) = next else {
            break;
        };

        // Gather everything already waiting, up to the commit size.
        let mut requests = Vec::new();
        let mut replies = Vec::new();
        let mut sales = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Stop => stopping = true,
                Job::Write(request, reply) => {
                    sales += request.len();
                    requests.push(request);
                    replies.push(reply);
                }
            }
            if stopping || sales >= MAX_COMMIT_SALES {
                break;
            }
            next = jobs.try_recv().ok();
        }

        if !requests.is_empty() {
            commit_and_answer(&mut store, &requests, replies);
        }
        if store.pending_writes() >= APPLY_AFTER_WRITES {
            apply_pending(&mut store);
        }
    }
    store
}

/// Brings sled up to date with the journal. A failure leaves the commits
/// safe in the journal (the next start applies them) and the store
/// refusing writes until then.
fn apply_pending(store: &mut Store) {
    if let Err(error) = store.apply_pending() {
        tracing::error!(
            %error,
            "applying journaled commits to sled failed; they are safe in the journal \
             and are applied at the next start. Restart the server"
        );
    }
}

fn commit_and_answer(
    store: &mut Store,
    requests: &[WriteRequest],
    replies: Vec<oneshot::Sender<WriteResult>>,
) {
    let sales: usize = requests.iter().map(WriteRequest::len).sum();
    let started = std::time::Instant::now();
    match store.commit_to_journal(requests) {
        Ok(outcomes) => {
            tracing::debug!(
                requests = requests.len(),
                sales,
                micros = started.elapsed().as_micros() as u64,
                "committed"
            );
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // A requester that gave up no longer needs its answer.
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            tracing::error!(%error, requests = requests.len(), sales, "commit failed");
            // Every requester gets the same failure; no second prefix.
            let message = match &error {
                StoreError::WriteFailed(message) => message.clone(),
                other => other.to_string(),
            };
            for reply in replies {
                let _ = reply.send(Err(StoreError::WriteFailed(message.clone())));
            }
        }
    }
}
