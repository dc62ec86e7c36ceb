//! The commit journal: the cheap way to make a commit durable before sled
//! has written it.
//!
//! sled's own `flush` costs about 190 µs per commit on the reference
//! machine, most of the time a lone client waits for. A commit is instead
//! written to this file as one checksummed record and pushed to the disk
//! (about 70 µs); only then is the client answered, and sled applies the
//! commit afterwards, flushing in the background. When the journal passes
//! [`CHECKPOINT_BYTES`] the store flushes sled and the journal is written
//! from its start again.
//!
//! The file is created at its full size and filled with zeros, and synced
//! once: a record is then always written over blocks that exist, so pushing
//! it with `sync_file_range` (which does not sync file metadata) is enough
//! for it to be found again after a crash of the operating system.
//!
//! On opening, records sled does not have yet (their sequence number is at
//! or past sled's next one) are applied again. Every aligned offset of the
//! file is tried, so damage in one record hides no other; which records
//! form an unbroken run from sled's next commit is the store's decision.
//!
//! The checksum is keyed with a random number kept in the database
//! (`Mjournal_key`) and changed at every opening: records of another
//! database, records from before the last opening, and records spelled out
//! by sale data sent on purpose (stale bytes hold sales verbatim) all fail
//! it.
//!
//! Record, 8-byte aligned: `magic: u32`, `len: u32`, `checksum: u64` (xxh3
//! of the payload seeded with the key), then the payload: format byte,
//! sequence number, count, and that many key/value pairs, each
//! length-prefixed; zeros pad it.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::codec::{put_varint, Malformed, Reader};

/// The journal's file name inside the database directory.
pub(crate) const FILE_NAME: &str = "commits.journal";

/// The size the file is created with.
const FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Past this much journal the store flushes sled and starts over.
pub(crate) const CHECKPOINT_BYTES: u64 = FILE_BYTES / 2;

/// A journal larger than this was not written by this program.
const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;

const MAGIC: u32 = 0x534a_524e;
const RECORD_FORMAT: u8 = 1;
const HEADER_BYTES: usize = 16;
const ALIGN: usize = 8;

/// One sled write, as the journal keeps it.
pub(crate) type Write = (Vec<u8>, Vec<u8>);

/// A commit read back from the journal.
pub(crate) struct Record {
    pub(crate) seq: u64,
    pub(crate) writes: Vec<Write>,
}

/// How far each append is pushed before it counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Written to the disk device (survives the process and the operating
    /// system crashing), as sled's own flush does.
    Device,
    /// Also through the device's write cache (`fdatasync`): survives a
    /// power cut.
    PowerLoss,
}

pub(crate) struct Journal {
    file: File,
    /// Where the next record goes.
    end: u64,
    /// The file's size: records are written only below it.
    capacity: u64,
    durability: Durability,
    key: u64,
}

/// Reads the journal in `dir` without changing it: the whole records under
/// `key` whose sequence number is at least `from_seq`, by sequence number.
/// `None` when there is no journal file.
pub(crate) fn read(
    dir: &Path,
    key: u64,
    from_seq: u64,
) -> std::io::Result<Option<Vec<Record>>> {
    let path = dir.join(FILE_NAME);
    if !check_regular_file(&path)? {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    File::open(&path)?.read_to_end(&mut bytes)?;
    let mut records: Vec<Record> = (0..bytes.len())
        .step_by(ALIGN)
        .filter(|&at| bytes[at..].starts_with(&MAGIC.to_le_bytes()))
        .filter_map(|at| record_at(&bytes, at, key))
        .filter(|record| record.seq >= from_seq)
        .collect();
    records.sort_by_key(|record| record.seq);
    records.dedup_by_key(|record| record.seq);
    Ok(Some(records))
}

impl Journal {
    /// Opens the journal in `dir` for writing records under `key`, creating
    /// it at full size if needed. Call only once sled holds every commit
    /// the file may hold: they are written over.
    pub(crate) fn prepare(
        dir: &Path,
        durability: Durability,
        key: u64,
    ) -> std::io::Result<Journal> {
        let path = dir.join(FILE_NAME);
        let existed = check_regular_file(&path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut journal = Journal {
            capacity: file.metadata()?.len(),
            file,
            end: 0,
            durability,
            key,
        };
        if journal.capacity < FILE_BYTES {
            journal.grow_to(FILE_BYTES)?;
        }
        if !existed {
            // The file's name must survive a crash as well as its blocks.
            File::open(dir)?.sync_all()?;
        }
        Ok(journal)
    }

    /// Encodes one commit as a record for this journal.
    pub(crate) fn encode(&self, seq: u64, writes: &[Write]) -> Vec<u8> {
        encode(seq, writes, self.key)
    }

    /// Whether a record of `length` bytes fits before the end of the file.
    pub(crate) fn has_room(&self, length: usize) -> bool {
        self.end + length as u64 <= self.capacity
    }

    /// Writes one encoded record and returns once it is durable. A record
    /// larger than the file grows the file first.
    pub(crate) fn append(&mut self, record: &[u8]) -> std::io::Result<()> {
        let needed = self.end + record.len() as u64;
        if needed > self.capacity {
            self.grow_to(needed.next_multiple_of(FILE_BYTES))?;
        }
        self.file.write_all_at(record, self.end)?;
        self.make_durable(self.end, record.len() as u64)?;
        self.end += record.len() as u64;
        Ok(())
    }

    /// Bytes written since the journal last started over.
    pub(crate) fn len(&self) -> u64 {
        self.end
    }

    /// Starts writing from the beginning again, over the old records. Call
    /// only once sled holds every commit durably: the old records are then
    /// all behind sled's sequence counter and never applied again.
    pub(crate) fn start_over(&mut self) {
        self.end = 0;
    }

    /// Extends the file with zeros, synced, so that later records are
    /// written over blocks that already exist.
    fn grow_to(&mut self, size: u64) -> std::io::Result<()> {
        const CHUNK: usize = 1024 * 1024;
        let zeros = vec![0u8; CHUNK];
        let mut offset = self.capacity;
        while offset < size {
            let length = (size - offset).min(CHUNK as u64) as usize;
            self.file.write_all_at(&zeros[..length], offset)?;
            offset += length as u64;
        }
        self.file.sync_all()?;
        self.capacity = size;
        Ok(())
    }

    fn make_durable(&self, offset: u64, length: u64) -> std::io::Result<()> {
        match self.durability {
            Durability::PowerLoss => self.file.sync_data(),
            Durability::Device => write_out(&self.file, offset, length),
        }
    }
}

/// The journal's path in a database directory, for messages.
pub(crate) fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Refuses anything but a regular file of a plausible size (a FIFO would
/// block opening forever, a device or a huge sparse file would be read
/// whole). Returns whether the file exists.
fn check_regular_file(path: &Path) -> std::io::Result<bool> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            // A dangling symlink: creating through it would be a surprise.
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(Error::other("it is a symbolic link to nothing"));
            }
            return Ok(false);
        }
        Err(error) => return Err(error),
    };
    if !metadata.is_file() {
        return Err(Error::other("it is not a regular file"));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(Error::other(format!(
            "it is {} bytes, far larger than this program writes it",
            metadata.len()
        )));
    }
    Ok(true)
}

/// Waits until a range of the file is on the device, without flushing the
/// device's cache (`sync_file_range`, what sled's own flush uses).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn write_out(file: &File, offset: u64, length: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;

    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    let offset =
        i64::try_from(offset).map_err(|_| Error::from(ErrorKind::InvalidInput))?;
    let length =
        i64::try_from(length).map_err(|_| Error::from(ErrorKind::InvalidInput))?;
    // SAFETY: the descriptor belongs to `file`, which is borrowed for the
    // whole call; the call reads no memory of ours.
    let result =
        unsafe { libc::sync_file_range(file.as_raw_fd(), offset, length, flags) };
    if result == 0 {
        Ok(())
    } else {
        Err(Error::last_os_error())
    }
}

/// Elsewhere there is no range write-out: flush the file's data.
#[cfg(not(target_os = "linux"))]
fn write_out(file: &File, _offset: u64, _length: u64) -> std::io::Result<()> {
    file.sync_data()
}

/// A new random journal key.
pub(crate) fn new_key() -> u64 {
    use std::hash::{BuildHasher, Hasher};

    // RandomState is seeded from the operating system's random source.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Encodes one commit as a record, padded to the alignment.
fn encode(seq: u64, writes: &[Write], key: u64) -> Vec<u8> {
    let size: usize = writes.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut record = Vec::with_capacity(HEADER_BYTES + 16 + size + ALIGN);
    record.resize(HEADER_BYTES, 0);
    record.push(RECORD_FORMAT);
    record.extend_from_slice(&seq.to_le_bytes());
    put_varint(&mut record, writes.len() as u128);
    for (key, value) in writes {
        put_varint(&mut record, key.len() as u128);
        record.extend_from_slice(key);
        put_varint(&mut record, value.len() as u128);
        record.extend_from_slice(value);
    }

    let payload_len = (record.len() - HEADER_BYTES) as u32;
    let checksum = xxh3_64_with_seed(&record[HEADER_BYTES..], key);
    record[..4].copy_from_slice(&MAGIC.to_le_bytes());
    record[4..8].copy_from_slice(&payload_len.to_le_bytes());
    record[8..HEADER_BYTES].copy_from_slice(&checksum.to_le_bytes());
    record.resize(record.len().next_multiple_of(ALIGN), 0);
    record
}

/// The whole record under `key` at `offset`, if there is one.
fn record_at(bytes: &[u8], offset: usize, key: u64) -> Option<Record> {
    let header = bytes.get(offset..offset.checked_add(HEADER_BYTES)?)?;
    if header[..4] != MAGIC.to_le_bytes() {
        return None;
    }
    let length = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let checksum = u64::from_le_bytes(header[8..].try_into().ok()?);
    let start = offset + HEADER_BYTES;
    let payload = bytes.get(start..start.checked_add(length)?)?;
    if xxh3_64_with_seed(payload, key) != checksum {
        return None;
    }
    decode_payload(payload).ok()
}

fn decode_payload(payload: &[u8]) -> Result<Record, Malformed> {
    let mut reader = Reader::new(payload);
    if reader.byte()? != RECORD_FORMAT {
        return Err(Malformed("unknown journal record format"));
    }
    let seq_bytes = reader.bytes(8)?;
    let seq =
        u64::from_le_bytes(seq_bytes.try_into().map_err(|_| Malformed("truncated"))?);
    let count = reader.varint_u64()?;
    let mut writes = Vec::new();
    for _ in 0..count {
        let key_len = reader.varint_u64()? as usize;
        let key = reader.bytes(key_len)?.to_vec();
        let value_len = reader.varint_u64()? as usize;
        let value = reader.bytes(value_len)?.to_vec();
        writes.push((key, value));
    }
    if !reader.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok(Record { seq, writes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: u64 = 42;

    fn writes(tag: u8) -> Vec<Write> {
        vec![
            (vec![b'S', tag], vec![tag; 3]),
            (b"Mnext_seq".to_vec(), vec![tag]),
        ]
    }

    fn seqs(dir: &Path, key: u64, from: u64) -> Vec<u64> {
        let records = read(dir, key, from).unwrap().unwrap();
        records.iter().map(|record| record.seq).collect()
    }

    fn append(journal: &mut Journal, seq: u64) {
        let record = journal.encode(seq, &writes(seq as u8));
        journal.append(&record).unwrap();
    }

    #[test]
    fn records_come_back_and_the_file_is_created_full_size() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path(), KEY, 0).unwrap().is_none());
        let mut journal = Journal::prepare(dir.path(), Durability::Device, KEY).unwrap();
        append(&mut journal, 7);
        append(&mut journal, 8);
        drop(journal);

        let records = read(dir.path(), KEY, 0).unwrap().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!((records[1].seq, &records[1].writes), (8, &writes(8)));
        assert_eq!(seqs(dir.path(), KEY, 8), vec![8]);
        let size = std::fs::metadata(path_in(dir.path())).unwrap().len();
        assert_eq!(size, FILE_BYTES);
    }

    #[test]
    fn a_damaged_record_hides_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal =
            Journal::prepare(dir.path(), Durability::PowerLoss, KEY).unwrap();
        for seq in 1..=3 {
            append(&mut journal, seq);
        }
        drop(journal);

        let path = path_in(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 3] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        assert_eq!(seqs(dir.path(), KEY, 0), vec![2, 3]);
    }

    #[test]
    fn records_under_another_key_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::prepare(dir.path(), Durability::Device, KEY).unwrap();
        append(&mut journal, 1);
        drop(journal);

        assert!(seqs(dir.path(), KEY + 1, 0).is_empty());
        assert_ne!(new_key(), new_key());
    }

    #[test]
    fn records_written_over_after_starting_over_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::prepare(dir.path(), Durability::Device, KEY).unwrap();
        for seq in 1..=4 {
            append(&mut journal, seq);
        }
        journal.start_over();
        append(&mut journal, 5);
        drop(journal);

        // Record 5 overwrote record 1; 2, 3 and 4 are still there, older.
        assert_eq!(seqs(dir.path(), KEY, 0), vec![2, 3, 4, 5]);
        assert_eq!(seqs(dir.path(), KEY, 5), vec![5]);
    }

    #[test]
    fn a_record_larger_than_the_file_grows_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::prepare(dir.path(), Durability::Device, KEY).unwrap();
        let big = vec![(b"Sbig".to_vec(), vec![7u8; FILE_BYTES as usize + 10])];
        let record = journal.encode(1, &big);
        assert!(!journal.has_room(record.len()));
        journal.append(&record).unwrap();
        drop(journal);

        let records = read(dir.path(), KEY, 0).unwrap().unwrap();
        assert_eq!(records[0].writes, big);
    }

    #[test]
    fn anything_but_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(path_in(dir.path())).unwrap();
        let error = read(dir.path(), KEY, 0).err().unwrap();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
