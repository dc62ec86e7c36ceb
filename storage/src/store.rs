//! The sled store: opening it safely, the atomic write path, and the scans
//! behind `verify` and `rebuild`.
//!
//! Guarantees, in order of importance:
//! 1. A commit is one journal record: its sales, their totals, their ids
//!    and the sequence counter land together or not at all.
//! 2. A commit is on disk before anyone is told it succeeded: appended to
//!    the commit journal (see [`crate::journal`]) and pushed to the
//!    device, then applied to sled, which flushes in the background.
//! 3. The totals (`A` records) always equal a fold of the sales (`S`
//!    records); `verify` proves it and `rebuild` restores it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chrono::NaiveDate;
use xxhash_rust::xxh3::xxh3_128;

use crate::aggregates::{Statistics, Totals};
use crate::codec::{self, put_varint, Reader, ID_FORMAT};
use crate::date::Month;
use crate::error::StoreError;
use crate::group;
use crate::item::Item;
use crate::journal::{self, Durability, Journal, Record};
use crate::keys::{self, BATCH_IDS, SALES, SALE_IDS, TOTALS};
use crate::sale::{NewSale, SaleId};

/// The layout version this program reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache, in bytes. sled's default is 1 GiB; a sales store
    /// needs far less because reads are served from the totals in memory.
    pub cache_bytes: u64,
    /// Open a database with an older layout, for `migrate` only.
    pub allow_old_layout: bool,
    /// Create the database if the directory does not hold one.
    pub create: bool,
    /// Most distinct items the store tracks; sales of further new items are
    /// refused. Bounds memory and the size of the statistics report.
    pub max_items: usize,
    /// Open a database whose commit journal is damaged, or whose files hold
    /// part of a commit the journal cannot complete, by giving up what
    /// cannot be recovered: commits after the damage are dropped and
    /// partly applied commits are rolled back. For `migrations-tool repair`
    /// only; [`Store::recovery_notes`] says what was lost.
    pub recover: bool,
    /// Make every commit survive a power cut: `fdatasync` the commit
    /// journal after each commit (and sled's file at each checkpoint).
    /// Without it a commit is written to the disk device with
    /// `sync_file_range`, as sled's own flush does: it survives the process
    /// and the operating system crashing, not necessarily a power cut.
    pub fsync: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_bytes: 64 * 1024 * 1024,
            allow_old_layout: false,
            create: true,
            max_items: 100_000,
            fsync: false,
            recover: false,
        }
    }
}

/// The statistics as of the last durable commit, shared with readers.
/// Readers take the read lock only while they copy or render.
pub type SharedStatistics = Arc<RwLock<Statistics>>;

/// What happened to one sale in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The sale is stored and counted.
    Stored,
    /// A sale (or batch) with this id and the same content was already
    /// stored; nothing changed.
    Duplicate,
    /// This id is already stored with other content; nothing changed.
    Conflict,
    /// The sale's item is new and the store already tracks the maximum
    /// number of items; nothing changed.
    TooManyItems,
}

/// A unit of work for the writer: sales that may carry ids, optionally
/// under a batch id that makes the whole request idempotent.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub(crate) batch: Option<(SaleId, u128)>,
    pub(crate) sales: Vec<NewSale>,
}

impl WriteRequest {
    /// Sales whose ids (if any) are checked one by one.
    pub fn sales(sales: Vec<NewSale>) -> WriteRequest {
        WriteRequest { batch: None, sales }
    }

    /// Sales stored all together under a batch id: sending the same batch
    /// again counts every sale as a duplicate.
    pub fn batch(id: SaleId, sales: Vec<NewSale>) -> WriteRequest {
        let mut fingerprints = Vec::with_capacity(sales.len() * 16);
        for new in &sales {
            fingerprints.extend_from_slice(&fingerprint(new).to_le_bytes());
        }
        WriteRequest {
            batch: Some((id, xxh3_128(&fingerprints))),
            sales,
        }
    }

    /// Number of sales in the request.
    pub fn len(&self) -> usize {
        self.sales.len()
    }

    /// True when the request holds no sale.
    pub fn is_empty(&self) -> bool {
        self.sales.is_empty()
    }
}

fn fingerprint(new: &NewSale) -> u128 {
    new.sale.fingerprint()
}

/// Progress of the server's first-start import of sample data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedState {
    /// Never attempted.
    NotStarted,
    /// Begun but not finished (the server stopped during it): resume it.
    Started,
    /// Finished, or decided against; never import again.
    Done,
}

/// The sales database.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    next_seq: u64,
    statistics: SharedStatistics,
    max_items: usize,
    /// Where commits are made durable before sled applies them; opened
    /// last, once sled holds everything the file held.
    journal: Option<Journal>,
    /// Commits durable in the journal but not yet applied to sled.
    pending: Pending,
    /// sled's log file, kept open to `fdatasync` it when `fsync` is set.
    sync_file: Option<std::fs::File>,
    /// Set by [`Store::flush`]: the clean-shutdown mark is in sled and must
    /// go before the next commit.
    marked_clean: bool,
    /// What opening with `recover` gave up, for the operator.
    recovery_notes: Vec<String>,
    /// Why a commit failed, once one may have half-reached the disk: from
    /// then on every write is refused until the process restarts and
    /// reloads.
    failure: Option<String>,
}

impl Store {
    /// Opens (or creates) the store at `path`, checking its layout, and
    /// loads the totals into memory.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let existed = path.join("conf").exists();
        if !options.create && !existed {
            return Err(StoreError::Missing { path: shown });
        }
        let db = open_sled(path, options.cache_bytes)?;
        // Every database this program creates holds its layout version from
        // the first open on. One that existed but holds nothing at all has
        // lost its log: refuse it rather than start over on an empty one.
        if existed && db.first()?.is_none() {
            return Err(StoreError::Damaged {
                path: shown,
                cause: "the database files exist but no record could be read back".into(),
            });
        }
        let layout = read_layout(&db, &shown)?;
        if layout > LAYOUT_VERSION {
            return Err(StoreError::LayoutTooNew {
                path: shown,
                found: layout,
                supported: LAYOUT_VERSION,
            });
        }
        if layout < LAYOUT_VERSION && !options.allow_old_layout {
            return Err(StoreError::LayoutTooOld {
                path: shown,
                found: layout,
                supported: LAYOUT_VERSION,
            });
        }

        let sync_file = match options.fsync {
            true => {
                Some(std::fs::File::open(path.join("db")).map_err(sled::Error::from)?)
            }
            false => None,
        };
        let durability = match options.fsync {
            true => Durability::PowerLoss,
            false => Durability::Device,
        };
        let next_seq = read_meta_u64(&db, keys::META_NEXT_SEQ)?.unwrap_or(0);
        let journal_key = read_meta_u64(&db, keys::META_JOURNAL_KEY)?;
        let unfinished = read_meta_u64(&db, keys::META_APPLYING)?;
        let clean = db.get(keys::META_CLEAN)?.is_some();
        let records = journal::read(path, journal_key.unwrap_or(0), next_seq)
            .map_err(|error| journal_error(path, error))?;

        let mut recovery_notes = Vec::new();
        let mut recovery = Recovery {
            db: &db,
            path: &shown,
            recover: options.recover,
            notes: &mut recovery_notes,
        };
        let records = match records {
            Some(records) => records,
            None if journal_key.is_some() && !clean => {
                recovery.lost(
                    "the commit journal is missing, and the database was not shut down \
                     cleanly: acknowledged commits it held are lost"
                        .into(),
                )?;
                Vec::new()
            }
            None => Vec::new(),
        };
        let next_seq = recovery.replay(next_seq, records, unfinished)?;
        let rolled_back = recovery.roll_back_unfinished(next_seq, unfinished)?;

        let statistics = Arc::new(RwLock::new(load_totals(&db)?));
        let mut store = Store {
            db,
            path: path.to_path_buf(),
            next_seq,
            statistics,
            max_items: options.max_items,
            journal: None,
            pending: Pending::default(),
            sync_file,
            recovery_notes,
            marked_clean: false,
            failure: None,
        };
        let interrupted_rebuild = store.db.get(keys::META_REBUILDING)?.is_some();
        if interrupted_rebuild {
            tracing::warn!(
                "a rebuild of the totals was interrupted; rebuilding them again"
            );
        }
        if rolled_back || interrupted_rebuild {
            store.rebuild_totals()?;
        }
        store.start_journal(path, durability, unfinished.is_some())?;
        Ok(store)
    }

    /// Makes the store ready to write: a new journal key (records already
    /// in the file become unreadable: sled holds them all now), the
    /// unfinished marker cleared, the clean-shutdown mark removed, all of
    /// it durable before the first record is written.
    fn start_journal(
        &mut self,
        path: &Path,
        durability: Durability,
        clear_unfinished: bool,
    ) -> Result<(), StoreError> {
        // The file first: a crash before the key is stored leaves a file
        // nobody needs, while the other order would leave a database that
        // expects a journal that is not there.
        let key = journal::new_key();
        let journal = Journal::prepare(path, durability, key)
            .map_err(|error| journal_error(path, error))?;
        self.db.insert(keys::META_JOURNAL_KEY, &key.to_be_bytes())?;
        self.db.remove(keys::META_CLEAN)?;
        if clear_unfinished {
            self.db.remove(keys::META_APPLYING)?;
        }
        self.db.flush()?;
        if let Some(file) = &self.sync_file {
            file.sync_data().map_err(sled::Error::from)?;
        }
        self.journal = Some(journal);
        Ok(())
    }

    /// The journal; opening always sets it before it returns the store.
    fn journal_mut(&mut self) -> Result<&mut Journal, StoreError> {
        self.journal.as_mut().ok_or_else(|| {
            StoreError::WriteFailed("the commit journal is not open".into())
        })
    }

    /// What opening with [`StoreOptions::recover`] gave up; empty when
    /// nothing was lost.
    pub fn recovery_notes(&self) -> &[String] {
        &self.recovery_notes
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A live view of the statistics, updated after every commit.
    pub fn statistics(&self) -> SharedStatistics {
        Arc::clone(&self.statistics)
    }

    /// Stores requests in one atomic, durable commit, and says per sale
    /// what happened. Nothing is visible to readers before it is on disk.
    pub fn commit(
        &mut self,
        requests: &[WriteRequest],
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        let outcomes = self.commit_to_journal(requests)?;
        self.apply_pending()?;
        Ok(outcomes)
    }

    /// The first half of [`Store::commit`]: on return the commit is durable
    /// and counted in the statistics, so its senders can be answered, but
    /// sled has not applied it yet. [`Store::apply_pending`] does that, for
    /// all the commits since the last call at once: one sled batch for
    /// many small commits costs far less than one each.
    pub fn commit_to_journal(
        &mut self,
        requests: &[WriteRequest],
    ) -> Result<Vec<Vec<Outcome>>, StoreError> {
        if let Some(cause) = &self.failure {
            return Err(StoreError::WriteFailed(format!(
                "an earlier write failed ({cause}), and nothing more is written until \
                 the program restarts and reloads the database"
            )));
        }

        if self.marked_clean {
            // Writing again after a flush: a lost journal is a loss again.
            self.db.remove(keys::META_CLEAN)?;
            self.db.flush()?;
            self.marked_clean = false;
        }
        let seq = self.next_seq;
        let current = self.statistics.read().unwrap_or_else(|e| e.into_inner());
        let mut plan = CommitPlan::new(seq, self.max_items);
        let ids = KnownIds {
            db: &self.db,
            pending: &self.pending.writes,
        };
        let outcomes = requests
            .iter()
            .map(|request| plan.add_request(&ids, &current, request))
            .collect::<Result<Vec<_>, _>>()?;
        if plan.stored == 0 && plan.claimed.is_empty() {
            return Ok(outcomes);
        }
        let writes = plan.finish(&current);
        drop(current);

        let record = self.journal_mut()?.encode(seq, &writes);
        if !self.journal_mut()?.has_room(record.len()) {
            self.apply_pending()?;
            self.checkpoint()?;
        }
        let writing = std::time::Instant::now();
        let appended = self.journal_mut()?.append(&record);
        appended.map_err(|error| self.fail(error.into()))?;
        tracing::debug!(
            sales = plan.stored,
            micros = writing.elapsed().as_micros() as u64,
            "commit in the journal"
        );
        self.pending.add(writes);

        self.next_seq = seq + 1;
        let mut statistics = self.statistics.write().unwrap_or_else(|e| e.into_inner());
        for ((item, month), delta) in &plan.deltas {
            statistics.add(item, *month, delta);
        }
        Ok(outcomes)
    }

    /// Writes (counted in sled keys) of the commits not yet applied.
    pub fn pending_writes(&self) -> usize {
        self.pending.count
    }

    /// Applies the journaled commits to sled in one atomic batch, and
    /// checkpoints when the journal has grown large: sled is flushed and
    /// the journal starts over.
    pub fn apply_pending(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        if pending.count > 0 {
            let writes = pending.writes.into_iter().collect();
            apply_writes(&self.db, writes, None).map_err(|error| self.fail(error))?;
        }
        let journal_full = self
            .journal
            .as_ref()
            .is_some_and(|journal| journal.len() >= journal::CHECKPOINT_BYTES);
        if journal_full {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Makes sled hold every commit durably, so that the journal may be
    /// written over.
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.db.flush().map_err(|error| self.fail(error))?;
        if let Some(file) = &self.sync_file {
            let synced = file.sync_data();
            synced.map_err(|error| self.fail(error.into()))?;
        }
        if let Some(journal) = &mut self.journal {
            journal.start_over();
        }
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            "checkpoint: sled flushed, journal started over"
        );
        Ok(())
    }

    /// Whether a write failed: from then on every write is refused until
    /// the process restarts.
    pub fn has_failed(&self) -> bool {
        self.failure.is_some()
    }

    fn fail(&mut self, error: sled::Error) -> StoreError {
        self.failure = Some(error.to_string());
        tracing::error!(%error, "commit failed; refusing further writes until restart");
        StoreError::Io(error)
    }

    /// How far the first-start import of sample data has come.
    pub fn seed_state(&self) -> Result<SeedState, StoreError> {
        Ok(match self.db.get(keys::META_SEEDED)?.as_deref() {
            None => SeedState::NotStarted,
            Some(b"started") => SeedState::Started,
            Some(_) => SeedState::Done,
        })
    }

    /// Records progress of the first-start import, durably.
    pub fn set_seed_state(&self, state: SeedState) -> Result<(), StoreError> {
        match state {
            SeedState::NotStarted => self.db.remove(keys::META_SEEDED)?,
            SeedState::Started => self.db.insert(keys::META_SEEDED, &b"started"[..])?,
            SeedState::Done => self.db.insert(keys::META_SEEDED, &b"done"[..])?,
        };
        self.db.flush()?;
        Ok(())
    }

    /// Counts the sales and recomputes the statistics by reading every raw
    /// sale: the slow, trustworthy path behind `verify` and `rebuild`.
    pub fn fold_sales(&self) -> Result<(Statistics, u64), StoreError> {
        let mut statistics = Statistics::default();
        let mut count = 0;
        self.for_each_sale(|sale| {
            statistics.add_sale(&sale.sale);
            count += 1;
        })?;
        Ok((statistics, count))
    }

    /// Calls `visit` for every stored sale, in key order (by local day,
    /// then item).
    pub fn for_each_sale(
        &self,
        mut visit: impl FnMut(NewSale),
    ) -> Result<(), StoreError> {
        for entry in self.db.scan_prefix([SALES]) {
            let (key, value) = entry?;
            let (day, item) = parse_group(&key)?;
            let sales =
                group::decode(day, &item, &value).map_err(|e| corrupt(&key, e))?;
            sales.into_iter().for_each(&mut visit);
        }
        Ok(())
    }

    /// The totals as stored on disk (not the in-memory copy).
    pub fn stored_totals(&self) -> Result<Statistics, StoreError> {
        load_totals(&self.db)
    }

    /// Replaces every stored total with a fold of the raw sales. Returns
    /// the number of sales folded.
    ///
    /// Key by key, not as one `apply_batch`, whose memory grows steeply
    /// with its keys (an item-month each, up to millions). `Mrebuilding`
    /// is durable before the first total is touched and removed after the
    /// last: if the rewrite is interrupted, opening sees the mark and
    /// rebuilds again, rather than serving half the totals.
    pub fn rebuild_totals(&mut self) -> Result<u64, StoreError> {
        self.apply_pending()?;
        let (folded, count) = self.fold_sales()?;
        self.db.insert(keys::META_REBUILDING, &[1u8][..])?;
        self.db.flush()?;
        for entry in self.db.scan_prefix([TOTALS]) {
            self.db.remove(entry?.0)?;
        }
        for (item, month, totals) in folded.entries() {
            self.db
                .insert(keys::totals_key(item, month), codec::encode_totals(totals))?;
        }
        self.db.remove(keys::META_REBUILDING)?;
        self.db.flush()?;
        *self.statistics.write().unwrap_or_else(|e| e.into_inner()) = folded;
        Ok(count)
    }

    /// The layout version written in the store.
    pub fn layout_version(&self) -> Result<u32, StoreError> {
        read_layout(&self.db, &self.path.display().to_string())
    }

    /// Writes the layout version, durably.
    pub fn set_layout_version(&self, version: u32) -> Result<(), StoreError> {
        self.db.insert(keys::META_LAYOUT, &version.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Writes everything into sled's files: for shutdown, so that the next
    /// start has nothing to replay and sled nothing left for its `Drop` to
    /// do.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.apply_pending()?;
        self.db.insert(keys::META_CLEAN, &[1u8][..])?;
        self.marked_clean = true;
        self.checkpoint()
    }
}

/// The pieces of one commit, gathered before anything is written.
struct CommitPlan<'a> {
    seq: u64,
    writes: Vec<journal::Write>,
    /// Ids claimed by this commit, with their fingerprints, so that two
    /// requests in one commit cannot both claim an id.
    claimed: HashMap<Vec<u8>, u128>,
    /// The conflicting positions of the batches this commit claimed.
    batch_conflicts: HashMap<Vec<u8>, Vec<u32>>,
    /// Borrowed from the requests: planning copies no sale.
    groups: BTreeMap<(NaiveDate, &'a Item), Vec<&'a NewSale>>,
    deltas: BTreeMap<(&'a Item, Month), Totals>,
    stored: usize,
    max_items: usize,
    /// Items this commit adds to the store.
    new_items: HashSet<&'a Item>,
}

impl<'a> CommitPlan<'a> {
    fn new(seq: u64, max_items: usize) -> CommitPlan<'a> {
        CommitPlan {
            seq,
            max_items,
            new_items: HashSet::new(),
            writes: Vec::new(),
            claimed: HashMap::new(),
            batch_conflicts: HashMap::new(),
            groups: BTreeMap::new(),
            deltas: BTreeMap::new(),
            stored: 0,
        }
    }

    fn add_request(
        &mut self,
        ids: &KnownIds,
        current: &Statistics,
        request: &'a WriteRequest,
    ) -> Result<Vec<Outcome>, StoreError> {
        // An empty batch stores nothing, so it reserves no id either; nor
        // does a batch refused for the item limit, which is all or nothing
        // so that sending it again later (with a higher limit) stores it.
        let batch = request
            .batch
            .as_ref()
            .filter(|_| !request.sales.is_empty())
            .map(|(id, fingerprint)| {
                (keys::id_key(BATCH_IDS, id.as_str()), *fingerprint)
            });
        if let Some((key, fingerprint)) = &batch {
            if !self.items_fit(&request.sales, current) {
                return Ok(vec![Outcome::TooManyItems; request.sales.len()]);
            }
            if let Some(outcomes) = self.seen_batch(ids, key, *fingerprint, request)? {
                return Ok(outcomes);
            }
        }

        let outcomes = self.add_sales(ids, current, request)?;

        if let Some((key, fingerprint)) = batch {
            // Claimed after its sales, to record which of them conflicted.
            let conflicts: Vec<u32> = outcomes
                .iter()
                .enumerate()
                .filter(|(_, outcome)| **outcome == Outcome::Conflict)
                .map(|(position, _)| position as u32)
                .collect();
            let record = encode_batch_id(fingerprint, self.seq, &conflicts);
            self.writes.push((key.clone(), record));
            self.claimed.insert(key.clone(), fingerprint);
            self.batch_conflicts.insert(key, conflicts);
        }
        Ok(outcomes)
    }

    /// The outcomes of a batch whose id is already taken: with the same
    /// content, its sales are duplicates except those that conflicted the
    /// first time, which conflict again; with other content, all conflict.
    fn seen_batch(
        &self,
        ids: &KnownIds,
        key: &[u8],
        fingerprint: u128,
        request: &WriteRequest,
    ) -> Result<Option<Vec<Outcome>>, StoreError> {
        let stored = match self.claimed.get(key) {
            Some(claimed) => Some(*claimed),
            None => ids.get(key)?,
        };
        let Some(stored) = stored else {
            return Ok(None);
        };
        if stored != fingerprint {
            return Ok(Some(vec![Outcome::Conflict; request.len()]));
        }
        let conflicts = match self.batch_conflicts.get(key) {
            Some(conflicts) => conflicts.clone(),
            None => ids.batch_conflicts(key)?.unwrap_or_default(),
        };
        let mut outcomes = vec![Outcome::Duplicate; request.len()];
        for position in conflicts {
            if let Some(outcome) = outcomes.get_mut(position as usize) {
                *outcome = Outcome::Conflict;
            }
        }
        Ok(Some(outcomes))
    }

    fn add_sales(
        &mut self,
        ids: &KnownIds,
        current: &Statistics,
        request: &'a WriteRequest,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(request.sales.len());
        for new in &request.sales {
            if !self.item_allowed(&new.sale.item, current) {
                outcomes.push(Outcome::TooManyItems);
                continue;
            }
            let outcome = match &new.id {
                Some(id) => self.claim(
                    ids,
                    keys::id_key(SALE_IDS, id.as_str()),
                    fingerprint(new),
                )?,
                None => Outcome::Stored,
            };
            if outcome == Outcome::Stored {
                self.add_sale(new);
            }
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Whether a sale of `item` may be stored: known items always, new ones
    /// while the store tracks fewer than the maximum. The limit bounds the
    /// memory the totals take and the size of the statistics report.
    fn item_allowed(&mut self, item: &'a Item, current: &Statistics) -> bool {
        if current.has_item(item) || self.new_items.contains(item) {
            return true;
        }
        if current.item_count() + self.new_items.len() >= self.max_items {
            return false;
        }
        self.new_items.insert(item);
        true
    }

    /// Whether every new item of `sales` fits under the item limit.
    fn items_fit(&self, sales: &[NewSale], current: &Statistics) -> bool {
        let mut new: HashSet<&Item> = HashSet::new();
        for sale in sales {
            let item = &sale.sale.item;
            if !current.has_item(item) && !self.new_items.contains(item) {
                new.insert(item);
            }
        }
        current.item_count() + self.new_items.len() + new.len() <= self.max_items
    }

    /// Claims an id for this commit, unless it is already taken.
    fn claim(
        &mut self,
        ids: &KnownIds,
        key: Vec<u8>,
        fingerprint: u128,
    ) -> Result<Outcome, StoreError> {
        let existing = match self.claimed.get(&key) {
            Some(claimed) => Some(*claimed),
            None => ids.get(&key)?,
        };
        match existing {
            Some(stored) if stored == fingerprint => Ok(Outcome::Duplicate),
            Some(_) => Ok(Outcome::Conflict),
            None => {
                self.writes
                    .push((key.clone(), encode_id(fingerprint, self.seq)));
                self.claimed.insert(key, fingerprint);
                Ok(Outcome::Stored)
            }
        }
    }

    fn add_sale(&mut self, new: &'a NewSale) {
        let sale = &new.sale;
        self.deltas
            .entry((&sale.item, sale.date.month()))
            .or_default()
            .add_sale(sale);
        self.groups
            .entry((sale.date.day(), &sale.item))
            .or_default()
            .push(new);
        self.stored += 1;
    }

    /// Turns the plan into the writes of one atomic batch: the ids, the
    /// groups, the new totals (current + delta) and the next sequence
    /// number.
    fn finish(&mut self, current: &Statistics) -> Vec<journal::Write> {
        let mut writes = std::mem::take(&mut self.writes);
        for ((day, item), sales) in &self.groups {
            writes.push((keys::group_key(*day, item, self.seq), group::encode(sales)));
        }
        for ((item, month), delta) in &self.deltas {
            let mut totals = current.get(item, *month).copied().unwrap_or_default();
            totals.add(delta);
            writes.push((
                keys::totals_key(item, *month),
                codec::encode_totals(&totals),
            ));
        }
        let next = (self.seq + 1).to_be_bytes().to_vec();
        writes.push((keys::META_NEXT_SEQ.to_vec(), next));
        writes
    }
}

/// Commits that are durable in the journal but not yet applied to sled,
/// merged (a later write of a key replaces an earlier one, as applying
/// them one by one would).
#[derive(Default)]
struct Pending {
    /// Planning looks here before sled for the ids these commits took.
    writes: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Writes added, counting repeats.
    count: usize,
}

impl Pending {
    fn add(&mut self, writes: Vec<journal::Write>) {
        self.count += writes.len();
        self.writes.extend(writes);
    }
}

/// Applies journaled commit writes to sled one key at a time, the
/// sequence counter last.
///
/// Not as one `apply_batch`: sled's memory grows steeply with the keys in
/// one batch (a probe writing 300,000 new keys peaked at 894 MB RSS in
/// batches of 4,096, 65 MB in batches of 100), and `apply_batch` takes a
/// lock shared by every database in the process that was seen to deadlock
/// against a flush of another database (tests open many). The journal is
/// what makes a commit atomic: sled recovers a prefix of its writes, so
/// after a crash it holds part of these writes at most, its counter still
/// points before them, and opening applies their journal records again
/// (every write puts a whole value, so applying twice changes nothing).
///
/// `Mapplying` is written first and removed last: if the journal is lost
/// while sled holds part of the writes, opening notices instead of serving
/// totals and ids whose sales are missing. `outstanding` is the mark of an
/// earlier interrupted apply (when replaying): it is kept, never lowered.
fn apply_writes(
    db: &sled::Db,
    writes: Vec<journal::Write>,
    outstanding: Option<u64>,
) -> sled::Result<()> {
    let mut counter = None;
    let mut data = Vec::with_capacity(writes.len());
    for (key, value) in writes {
        match key.as_slice() == keys::META_NEXT_SEQ {
            true => counter = Some(value),
            false => data.push((key, value)),
        }
    }

    let ends_at = counter
        .as_deref()
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    let mark = ends_at.max(outstanding.unwrap_or(0));
    db.insert(keys::META_APPLYING, &mark.to_be_bytes())?;
    for (key, value) in data {
        db.insert(key, value)?;
    }
    if let Some(value) = counter {
        db.insert(keys::META_NEXT_SEQ, value)?;
    }
    if outstanding.is_none() {
        db.remove(keys::META_APPLYING)?;
    }
    Ok(())
}

/// Where planning finds the ids already taken.
struct KnownIds<'s> {
    db: &'s sled::Db,
    /// The writes of commits not yet applied to sled.
    pending: &'s BTreeMap<Vec<u8>, Vec<u8>>,
}

impl KnownIds<'_> {
    /// The fingerprint stored under an id key, if the id is taken.
    fn get(&self, key: &[u8]) -> Result<Option<u128>, StoreError> {
        self.decode(key, |record| {
            decode_id(record).map(|(fingerprint, _)| fingerprint)
        })
    }

    /// The positions of a stored batch whose ids conflicted, if the batch
    /// id is taken.
    fn batch_conflicts(&self, key: &[u8]) -> Result<Option<Vec<u32>>, StoreError> {
        self.decode(key, decode_batch_conflicts)
    }

    /// Decodes the id record under `key`, pending or in sled.
    fn decode<T>(
        &self,
        key: &[u8],
        decode: impl Fn(&[u8]) -> Result<T, codec::Malformed>,
    ) -> Result<Option<T>, StoreError> {
        let decoded = match self.pending.get(key) {
            Some(record) => Some(decode(record)),
            None => self.db.get(key)?.map(|record| decode(&record)),
        };
        decoded.transpose().map_err(|e| corrupt(key, e))
    }
}

/// Brings sled up to date with the journal when a store is opened.
struct Recovery<'a> {
    db: &'a sled::Db,
    path: &'a str,
    /// Give up what cannot be recovered instead of refusing to open.
    recover: bool,
    notes: &'a mut Vec<String>,
}

impl Recovery<'_> {
    /// Applies the journal's commits that sled does not hold yet (it lost
    /// the ones it had not flushed when the process stopped): the unbroken
    /// run from sled's next commit. Returns the next sequence number.
    /// `unfinished` is the mark of an interrupted apply; it stays until the
    /// caller has settled it.
    fn replay(
        &mut self,
        next_seq: u64,
        records: Vec<Record>,
        unfinished: Option<u64>,
    ) -> Result<u64, StoreError> {
        let mut expected = next_seq;
        let mut run = Vec::new();
        let mut beyond = None;
        for record in records {
            if record.seq == expected {
                run.push(record);
                expected += 1;
            } else {
                beyond = Some(record.seq);
            }
        }
        if let Some(last) = beyond {
            self.lost(format!(
                "the commit journal lacks commit {expected} (damaged or cut short), so \
                 the acknowledged commits after it, up to {last}, cannot be applied"
            ))?;
        }
        if run.is_empty() {
            return Ok(next_seq);
        }

        let commits = run.len();
        for record in run {
            apply_writes(self.db, record.writes, unfinished)?;
        }
        self.db.flush()?;
        tracing::info!(
            commits,
            "applied commits from the journal that sled had not written"
        );
        Ok(expected)
    }

    /// Checks that sled holds no commit in part: an interrupted apply must
    /// have been completed by the journal. One that was not is
    /// refused or, when recovering, rolled back: the sale groups and ids of
    /// the unfinished commits are removed (the caller then rebuilds the
    /// totals and clears the mark). Returns whether that happened.
    fn roll_back_unfinished(
        &mut self,
        next_seq: u64,
        unfinished: Option<u64>,
    ) -> Result<bool, StoreError> {
        let Some(target) = unfinished.filter(|target| *target > next_seq) else {
            return Ok(false);
        };
        self.lost(format!(
            "the database holds part of commits {next_seq} to {} but the commit journal \
             that completes them is missing or damaged",
            target - 1
        ))?;

        let mut removals = Vec::new();
        for entry in self.db.scan_prefix([SALES]) {
            let key = entry?.0;
            let (_, _, seq) = keys::parse_group_key(&key)
                .ok_or_else(|| corrupt(&key, codec::Malformed("bad key")))?;
            if seq >= next_seq {
                removals.push(key);
            }
        }
        for prefix in [SALE_IDS, BATCH_IDS] {
            for entry in self.db.scan_prefix([prefix]) {
                let (key, value) = entry?;
                let (_, seq) = decode_id(&value).map_err(|e| corrupt(&key, e))?;
                if seq >= next_seq {
                    removals.push(key);
                }
            }
        }
        let removed = removals.len();
        for key in &removals {
            self.db.remove(key)?;
        }
        self.db.flush()?;
        self.notes.push(format!(
            "rolled back to commit {}: removed {removed} records of the unfinished commits; \
             totals rebuilt from the sales",
            next_seq.saturating_sub(1)
        ));
        Ok(true)
    }

    /// Records a loss: refuses to open, unless recovering.
    fn lost(&mut self, what: String) -> Result<(), StoreError> {
        if !self.recover {
            return Err(StoreError::Damaged {
                path: self.path.to_string(),
                cause: what,
            });
        }
        tracing::warn!(loss = %what, "recovering: giving up what cannot be recovered");
        self.notes.push(what);
        Ok(())
    }
}

fn encode_id(fingerprint: u128, seq: u64) -> Vec<u8> {
    let mut out = vec![ID_FORMAT];
    out.extend_from_slice(&fingerprint.to_le_bytes());
    put_varint(&mut out, u128::from(seq));
    out
}

/// A batch id record: an id record followed by the positions of the
/// batch's sales that were refused as conflicts, so that sending the batch
/// again gives the same answer for them. Readers of plain id records
/// ignore the tail.
fn encode_batch_id(fingerprint: u128, seq: u64, conflicts: &[u32]) -> Vec<u8> {
    let mut out = encode_id(fingerprint, seq);
    if !conflicts.is_empty() {
        put_varint(&mut out, conflicts.len() as u128);
        for position in conflicts {
            put_varint(&mut out, u128::from(*position));
        }
    }
    out
}

fn decode_batch_conflicts(bytes: &[u8]) -> Result<Vec<u32>, codec::Malformed> {
    let mut reader = Reader::new(bytes);
    reader.byte()?;
    reader.bytes(16)?;
    reader.varint_u64()?;
    if reader.is_empty() {
        return Ok(Vec::new());
    }
    let count = reader.varint_u64()?;
    (0..count)
        .map(|_| {
            u32::try_from(reader.varint_u64()?)
                .map_err(|_| codec::Malformed("position out of range"))
        })
        .collect()
}

/// An id record: the content fingerprint and the commit that stored it.
fn decode_id(bytes: &[u8]) -> Result<(u128, u64), codec::Malformed> {
    let mut reader = Reader::new(bytes);
    if reader.byte()? != ID_FORMAT {
        return Err(codec::Malformed("unknown id format"));
    }
    let fingerprint = reader.bytes(16)?;
    let fingerprint = u128::from_le_bytes(
        fingerprint
            .try_into()
            .map_err(|_| codec::Malformed("truncated"))?,
    );
    Ok((fingerprint, reader.varint_u64()?))
}

fn parse_group(key: &[u8]) -> Result<(NaiveDate, Item), StoreError> {
    let (day, item, _) = keys::parse_group_key(key)
        .ok_or_else(|| corrupt(key, codec::Malformed("bad key")))?;
    Ok((day, item))
}

fn corrupt(key: &[u8], error: codec::Malformed) -> StoreError {
    StoreError::CorruptRecord {
        key: keys::display_key(key),
        cause: error.0.to_string(),
    }
}

/// A journal file that cannot be used; a full disk is said as such.
fn journal_error(dir: &Path, error: std::io::Error) -> StoreError {
    match error.kind() {
        std::io::ErrorKind::StorageFull => StoreError::Io(error.into()),
        _ => StoreError::Journal {
            path: journal::path_in(dir).display().to_string(),
            cause: error.to_string(),
        },
    }
}

/// A number kept under a `M` key, if the key is there.
fn read_meta_u64(db: &sled::Db, key: &[u8]) -> Result<Option<u64>, StoreError> {
    db.get(key)?.map(|bytes| read_u64(&bytes, key)).transpose()
}

fn read_u64(bytes: &[u8], key: &[u8]) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(key, codec::Malformed("not 8 bytes")))?;
    Ok(u64::from_be_bytes(array))
}

/// Reads the layout version; a brand-new, empty database gets the current
/// one written into it.
fn read_layout(db: &sled::Db, path: &str) -> Result<u32, StoreError> {
    if let Some(bytes) = db.get(keys::META_LAYOUT)? {
        let array: [u8; 4] =
            bytes.as_ref().try_into().map_err(|_| StoreError::Damaged {
                path: path.to_string(),
                cause: "the layout version record is malformed".into(),
            })?;
        return Ok(u32::from_be_bytes(array));
    }
    if db.first()?.is_some() {
        // Data without a version: written before layouts were versioned.
        return Ok(0);
    }
    db.insert(keys::META_LAYOUT, &LAYOUT_VERSION.to_be_bytes())?;
    db.flush()?;
    Ok(LAYOUT_VERSION)
}

fn load_totals(db: &sled::Db) -> Result<Statistics, StoreError> {
    let mut statistics = Statistics::default();
    for entry in db.scan_prefix([TOTALS]) {
        let (key, value) = entry?;
        let (item, month) = keys::parse_totals_key(&key)
            .ok_or_else(|| corrupt(&key, codec::Malformed("bad totals key")))?;
        let totals = codec::decode_totals(&value).map_err(|e| corrupt(&key, e))?;
        statistics.add(&item, month, &totals);
    }
    Ok(statistics)
}

/// Opens sled, turning its failures (including panics on damaged files)
/// into errors that say what to do.
fn open_sled(path: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let shown = path.display().to_string();
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(1_000));

    // The lock may be held for a moment by a process that is exiting, or
    // by sled's background threads just after a store was closed in this
    // process: wait a little before calling the database busy.
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let opened =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
        let error = match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(error)) => classify_open_error(shown.clone(), error),
            Err(panic) => {
                return Err(StoreError::Damaged {
                    path: shown,
                    cause: panic_message(&panic),
                })
            }
        };
        if !matches!(error, StoreError::Locked { .. })
            || std::time::Instant::now() > deadline
        {
            return Err(error);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// How long opening waits for another holder of the lock to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn classify_open_error(path: String, error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(io) if is_lock_error(&io) => StoreError::Locked { path },
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::StorageFull
            ) =>
        {
            StoreError::Io(sled::Error::Io(io))
        }
        // Anything else while reading the files back means they are not
        // what sled wrote: truncated, garbled, or from something else.
        other => StoreError::Damaged {
            path,
            cause: plain_cause(&other),
        },
    }
}

/// sled's error text without its empty backtrace and unknown offsets.
fn plain_cause(error: &sled::Error) -> String {
    error
        .to_string()
        .replace(" at file offset None", "")
        .replace(" backtrace ()", "")
}

fn is_lock_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock || error.to_string().contains("lock")
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "sled panicked while reading its files".into())
}

#[cfg(test)]
mod recovery_tests {
    use super::*;
    use crate::sale::Sale;

    fn options(recover: bool) -> StoreOptions {
        StoreOptions {
            cache_bytes: 1024 * 1024,
            recover,
            ..StoreOptions::default()
        }
    }

    fn wide_request(tag: &str) -> WriteRequest {
        let sales = (0..400)
            .map(|n| NewSale {
                sale: Sale::from_fields(
                    &format!("item {n}"),
                    1,
                    "2.5",
                    "2023-05-01T10:00:00+00:00",
                )
                .unwrap(),
                id: SaleId::parse_optional("id", &format!("{tag}-{n}")).unwrap(),
            })
            .collect();
        WriteRequest::sales(sales)
    }

    #[test]
    fn an_interrupted_rebuild_of_the_totals_is_finished_at_the_next_opening() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let mut store = Store::open(&db, &options(false)).unwrap();
        store.commit(&[wide_request("a")]).unwrap();
        let expected = store.statistics().read().unwrap().to_json();

        // What a crash half way through the rewrite leaves: the mark, and
        // only some of the totals.
        store.db.insert(keys::META_REBUILDING, &[1u8][..]).unwrap();
        let totals: Vec<_> = store.db.scan_prefix([TOTALS]).keys().collect();
        for key in totals.into_iter().take(150) {
            store.db.remove(key.unwrap()).unwrap();
        }
        store.flush().unwrap();
        drop(store);

        let reopened = Store::open(&db, &options(false)).unwrap();
        assert_eq!(reopened.statistics().read().unwrap().to_json(), expected);
        assert!(reopened.db.get(keys::META_REBUILDING).unwrap().is_none());
        assert_eq!(reopened.db.scan_prefix([TOTALS]).count(), 400);
    }

    /// Applies, as an interrupted apply would have, the mark (ending at
    /// `mark`) and the first 256 of the pending writes, which are then
    /// forgotten: sled holds part of them, the journal all of them.
    fn apply_first_writes(store: &mut Store, mark: u64) {
        let pending = std::mem::take(&mut store.pending);
        store
            .db
            .insert(keys::META_APPLYING, &mark.to_be_bytes())
            .unwrap();
        for (key, value) in pending.writes.into_iter().take(256) {
            store.db.insert(key, value).unwrap();
        }
    }

    /// sled holding the first writes of a commit, as a crash in the middle
    /// of applying it leaves it, with the journal that would complete it
    /// gone.
    fn half_applied_without_journal(dir: &Path) {
        let mut store = Store::open(dir, &options(false)).unwrap();
        store.commit(&[wide_request("whole")]).unwrap();
        store.commit_to_journal(&[wide_request("half")]).unwrap();
        apply_first_writes(&mut store, 2);
        store.db.flush().unwrap();
        drop(store);
        // The journal's records gone, the file still there.
        let journal = journal::path_in(dir);
        let size = std::fs::metadata(&journal).unwrap().len();
        std::fs::write(&journal, vec![0u8; size as usize]).unwrap();
    }

    #[test]
    fn a_half_applied_commit_is_completed_from_the_journal() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = Store::open(dir.path(), &options(false)).unwrap();
        // Eight commits of 50 sales, applied together; sled gets 256 of
        // their writes before the apply stops.
        let request = wide_request("half");
        for part in request.sales.chunks(50) {
            let part = WriteRequest::sales(part.to_vec());
            store.commit_to_journal(&[part]).unwrap();
        }
        apply_first_writes(&mut store, 8);
        drop(store);

        let reopened = Store::open(dir.path(), &options(false)).unwrap();

        assert!(reopened.recovery_notes().is_empty());
        let (folded, count) = reopened.fold_sales().unwrap();
        assert_eq!(count, 400);
        assert_eq!(reopened.stored_totals().unwrap(), folded);
        assert_eq!(reopened.db.get(keys::META_APPLYING).unwrap(), None);
    }

    #[test]
    fn replaying_a_wide_commit_keeps_the_mark_of_the_unfinished_ones_after_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = Store::open(dir.path(), &options(false)).unwrap();
        // Commit 0 is wide (more than one sled batch); 1 and 2 are small.
        store.commit_to_journal(&[wide_request("wide")]).unwrap();
        for n in 1..=2 {
            let small = WriteRequest::sales(
                wide_request(&format!("small{n}")).sales[..5].to_vec(),
            );
            store.commit_to_journal(&[small]).unwrap();
        }
        apply_first_writes(&mut store, 3);
        drop(store);
        // Keep commit 0's record only: zero from the second record on.
        let journal = journal::path_in(dir.path());
        let mut bytes = std::fs::read(&journal).unwrap();
        let magic = bytes[..4].to_vec();
        let second = (8..bytes.len())
            .step_by(8)
            .find(|&at| bytes[at..].starts_with(&magic))
            .unwrap();
        bytes[second..].fill(0);
        std::fs::write(&journal, bytes).unwrap();

        let error = Store::open(dir.path(), &options(false))
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("holds part of commits 1 to 2"),
            "{error}"
        );

        let repaired = Store::open(dir.path(), &options(true)).unwrap();
        let (folded, count) = repaired.fold_sales().unwrap();
        assert_eq!(count, 400, "commit 0 applied, 1 and 2 rolled back");
        assert_eq!(repaired.stored_totals().unwrap(), folded);
    }

    #[test]
    fn a_half_applied_commit_without_its_journal_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        half_applied_without_journal(dir.path());

        let error = Store::open(dir.path(), &options(false))
            .err()
            .expect("refused");

        assert!(
            error.to_string().contains("holds part of commits 1 to 1"),
            "{error}"
        );
        assert!(error.to_string().contains("repair"), "{error}");
    }

    #[test]
    fn recovering_rolls_a_half_applied_commit_back_to_the_last_whole_one() {
        let dir = tempfile::TempDir::new().unwrap();
        half_applied_without_journal(dir.path());

        let mut store = Store::open(dir.path(), &options(true)).unwrap();

        assert_eq!(
            store.recovery_notes().len(),
            2,
            "{:?}",
            store.recovery_notes()
        );
        let (folded, count) = store.fold_sales().unwrap();
        assert_eq!(count, 400);
        assert_eq!(store.stored_totals().unwrap(), folded);
        assert_eq!(*store.statistics().read().unwrap(), folded);
        assert_eq!(folded.grand_total().revenue.to_json_number(), "1000.0");
        // The lost commit's ids are free again: re-sending stores them.
        let outcomes = store.commit(&[wide_request("half")]).unwrap();
        assert!(outcomes[0]
            .iter()
            .all(|outcome| *outcome == Outcome::Stored));
        drop(store);
        let reopened = Store::open(dir.path(), &options(false)).unwrap();
        assert_eq!(reopened.fold_sales().unwrap().1, 800);
    }
}
