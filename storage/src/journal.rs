//! The commit journal: the cheap way to make a commit durable before sled
//! has written it.
//!
//! sled's own `flush` costs about 190 µs per commit on the reference
//! machine, most of the time a lone client waits for. A commit is instead
//! appended to this file as one checksummed record and pushed to the disk
//! (about 80 µs); only then is the client answered, and sled applies the
//! same batch afterwards, flushing in the background. When the journal
//! grows past [`CHECKPOINT_BYTES`] the store flushes sled and starts the
//! journal over.
//!
//! On opening, records sled does not have yet (their sequence number is at
//! or past sled's next one) are applied again. Records are written in
//! sequence and each must follow the one before it, so a record left over
//! from before the last restart, or one torn by a crash, ends the replay.
//!
//! Record: `len: u32 LE`, `checksum: u64 LE` (xxh3 of the payload), then
//! the payload: format byte, sequence number, count, and that many
//! key/value pairs, each length-prefixed.

use std::fs::{File, OpenOptions};
use std::io::{Error, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use crate::codec::{put_varint, Malformed, Reader};

/// The journal's file name inside the database directory.
pub(crate) const FILE_NAME: &str = "commits.journal";

/// Past this size the store flushes sled and the journal starts over.
pub(crate) const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;

const RECORD_FORMAT: u8 = 1;
const HEADER_BYTES: usize = 12;

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
    durability: Durability,
}

impl Journal {
    /// Opens the journal in `dir`, creating it if needed, and returns the
    /// records it holds, in order.
    pub(crate) fn open(
        dir: &Path,
        durability: Durability,
    ) -> std::io::Result<(Journal, Vec<Record>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(FILE_NAME))?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents)?;
        let records = read_records(&contents);
        let journal = Journal {
            file,
            end: 0,
            durability,
        };
        Ok((journal, records))
    }

    /// Appends one commit and returns once it is durable.
    pub(crate) fn append(&mut self, seq: u64, writes: &[Write]) -> std::io::Result<()> {
        let record = encode_record(seq, writes);
        self.file.write_all_at(&record, self.end)?;
        self.make_durable(self.end, record.len() as u64)?;
        self.end += record.len() as u64;
        Ok(())
    }

    /// Bytes written since the journal last started over.
    pub(crate) fn len(&self) -> u64 {
        self.end
    }

    /// Starts writing from the beginning again, over the old records. Call
    /// only once sled holds every commit durably.
    pub(crate) fn start_over(&mut self) {
        self.end = 0;
    }

    /// Empties the file, for a clean shutdown: nothing is left to replay
    /// and the database takes no space for it.
    pub(crate) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.end = 0;
        Ok(())
    }

    fn make_durable(&self, offset: u64, length: u64) -> std::io::Result<()> {
        match self.durability {
            Durability::PowerLoss => self.file.sync_data(),
            Durability::Device => write_out(&self.file, offset, length),
        }
    }
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

fn encode_record(seq: u64, writes: &[Write]) -> Vec<u8> {
    let size: usize = writes.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut record = Vec::with_capacity(HEADER_BYTES + 16 + size);
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
    let checksum = xxh3_64(&record[HEADER_BYTES..]);
    record[..4].copy_from_slice(&payload_len.to_le_bytes());
    record[4..HEADER_BYTES].copy_from_slice(&checksum.to_le_bytes());
    record
}

/// Reads records until the first that is torn, damaged, or out of
/// sequence (left from before the journal last started over).
fn read_records(mut contents: &[u8]) -> Vec<Record> {
    let mut records: Vec<Record> = Vec::new();
    while let Some((payload, rest)) = next_payload(contents) {
        let Ok(record) = decode_payload(payload) else {
            break;
        };
        if let Some(last) = records.last() {
            if Some(record.seq) != last.seq.checked_add(1) {
                break;
            }
        }
        records.push(record);
        contents = rest;
    }
    records
}

fn next_payload(contents: &[u8]) -> Option<(&[u8], &[u8])> {
    let (header, rest) = contents.split_at_checked(HEADER_BYTES)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let checksum = u64::from_le_bytes(header[4..].try_into().ok()?);
    let (payload, rest) = rest.split_at_checked(length)?;
    (xxh3_64(payload) == checksum).then_some((payload, rest))
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

    fn writes(tag: u8) -> Vec<Write> {
        vec![
            (vec![b'S', tag], vec![tag; 3]),
            (b"Mnext_seq".to_vec(), vec![tag]),
        ]
    }

    fn reopen(dir: &Path) -> Vec<(u64, Vec<Write>)> {
        let (_, records) = Journal::open(dir, Durability::Device).unwrap();
        records.into_iter().map(|r| (r.seq, r.writes)).collect()
    }

    #[test]
    fn records_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, records) =
            Journal::open(dir.path(), Durability::Device).unwrap();
        assert!(records.is_empty());
        journal.append(7, &writes(1)).unwrap();
        journal.append(8, &writes(2)).unwrap();
        drop(journal);

        assert_eq!(reopen(dir.path()), vec![(7, writes(1)), (8, writes(2))]);
    }

    #[test]
    fn a_torn_record_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), Durability::PowerLoss).unwrap();
        journal.append(1, &writes(1)).unwrap();
        journal.append(2, &writes(2)).unwrap();
        let full = journal.len();
        drop(journal);

        let path = dir.path().join(FILE_NAME);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 1).unwrap();
        assert_eq!(reopen(dir.path()), vec![(1, writes(1))]);

        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 3] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(reopen(dir.path()).is_empty());
    }

    #[test]
    fn records_left_from_before_starting_over_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), Durability::Device).unwrap();
        for seq in 1..=4 {
            journal.append(seq, &writes(seq as u8)).unwrap();
        }
        journal.start_over();
        journal.append(5, &writes(5)).unwrap();
        drop(journal);

        // Record 5 overwrote record 1; the old 2, 3 and 4 follow it on
        // disk but are out of sequence.
        assert_eq!(reopen(dir.path()), vec![(5, writes(5))]);
    }

    #[test]
    fn clearing_empties_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), Durability::Device).unwrap();
        journal.append(1, &writes(1)).unwrap();
        journal.clear().unwrap();
        assert_eq!(
            std::fs::metadata(dir.path().join(FILE_NAME)).unwrap().len(),
            0
        );
        assert!(reopen(dir.path()).is_empty());
    }
}
