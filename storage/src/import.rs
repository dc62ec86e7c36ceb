//! Loading sales from files into the store: a directory in the seed's
//! layout (`DIR/YYYY/M/D/NNNNN.json`) and the seed's database file.
//!
//! Every imported sale carries an id derived from where it came from (its
//! path under the directory, or its line in the legacy file), so an
//! interrupted import can simply be run again: what is already stored is
//! counted as duplicate, never twice.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use crate::documents::SaleDocument;
use crate::error::{Rejection, StoreError};
use crate::json::parse_legacy_sale;
use crate::sale::{NewSale, SaleId};
use crate::store::{Outcome, WriteRequest};
use crate::writer::{wait_blocking, WriteResult, WriterHandle};

/// Sales per write request during an import.
const IMPORT_CHUNK: usize = 4_096;

/// Requests an import keeps in flight, so that reading files overlaps with
/// the writer's flushes.
const IN_FLIGHT: usize = 4;

/// Most rejections an import report keeps in full.
const KEPT_REJECTIONS: usize = 1_000;

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Files read (sale files for a directory, 1 for a legacy file).
    pub files: u64,
    /// Sales newly stored.
    pub stored: u64,
    /// Sales already stored by an earlier run.
    pub duplicates: u64,
    /// Sales whose id is stored with different content.
    pub conflicts: u64,
    /// Sales refused, in total.
    pub rejected: u64,
    /// The first refusals, with the file and line they came from.
    pub rejections: Vec<(String, Rejection)>,
    /// Files passed over because they are not `.json` files.
    pub skipped_files: Vec<PathBuf>,
    /// Legacy prices recovered from their float form (7.300000190734863
    /// read as 7.3).
    pub recovered_prices: u64,
    /// How long the import took.
    pub elapsed: Duration,
}

impl ImportReport {
    fn reject(&mut self, place: String, rejection: Rejection) {
        self.rejected += 1;
        if self.rejections.len() < KEPT_REJECTIONS {
            self.rejections.push((place, rejection));
        }
    }

    fn count(&mut self, outcomes: &[Outcome]) {
        for outcome in outcomes {
            match outcome {
                Outcome::Stored => self.stored += 1,
                Outcome::Duplicate => self.duplicates += 1,
                Outcome::Conflict => self.conflicts += 1,
            }
        }
    }

    /// Sales per second, over the whole import.
    pub fn rate(&self) -> f64 {
        (self.stored + self.duplicates) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A failed import: the files could not be read or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sends chunks of sales to the writer, keeping a few in flight.
struct Pipeline<'a> {
    writer: &'a WriterHandle,
    chunk: Vec<NewSale>,
    in_flight: std::collections::VecDeque<tokio::sync::oneshot::Receiver<WriteResult>>,
}

impl<'a> Pipeline<'a> {
    fn new(writer: &'a WriterHandle) -> Pipeline<'a> {
        Pipeline {
            writer,
            chunk: Vec::with_capacity(IMPORT_CHUNK),
            in_flight: Default::default(),
        }
    }

    fn push(
        &mut self,
        sale: NewSale,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        self.chunk.push(sale);
        if self.chunk.len() >= IMPORT_CHUNK {
            self.send(report)?;
        }
        Ok(())
    }

    fn send(&mut self, report: &mut ImportReport) -> Result<(), StoreError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let sales = std::mem::replace(&mut self.chunk, Vec::with_capacity(IMPORT_CHUNK));
        self.in_flight
            .push_back(self.writer.submit_blocking(WriteRequest::sales(sales))?);
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_one(report)?;
        }
        Ok(())
    }

    fn wait_one(&mut self, report: &mut ImportReport) -> Result<(), StoreError> {
        if let Some(answer) = self.in_flight.pop_front() {
            report.count(&wait_blocking(answer)?);
        }
        Ok(())
    }

    fn finish(mut self, report: &mut ImportReport) -> Result<(), StoreError> {
        self.send(report)?;
        while !self.in_flight.is_empty() {
            self.wait_one(report)?;
        }
        Ok(())
    }
}

/// Imports every `*.json` file below `dir`. Each file may hold one sale
/// (the seed's layout), an array or NDJSON; each sale's id is its path
/// under `dir`, followed by `#N` for the N-th sale when a file holds more
/// than one.
pub fn import_directory(
    writer: &WriterHandle,
    dir: &Path,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut report = ImportReport::default();
    let mut files = Vec::new();
    collect_files(dir, &mut files, &mut report.skipped_files)?;
    files.sort();

    let mut pipeline = Pipeline::new(writer);
    for path in &files {
        report.files += 1;
        let relative = file_id(dir, path);
        for (sale, place) in read_file(path, &relative)? {
            match sale {
                Ok(sale) => pipeline.push(sale, &mut report)?,
                Err(rejection) => report.reject(place, rejection),
            }
        }
    }
    pipeline.finish(&mut report)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

type PlacedSale = (Result<NewSale, Rejection>, String);

/// Reads the sales of one file, giving each an id from `relative`.
fn read_file(path: &Path, relative: &str) -> Result<Vec<PlacedSale>, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let mut sales = Vec::with_capacity(1);
    for read in SaleDocument::new(BufReader::new(file)) {
        let read = read.map_err(read_error)?;
        sales.push((read.sale, read.line, read.index));
    }

    if sales.is_empty() {
        let rejection = Rejection::new("json", "", "the file is empty; expected a sale");
        return Ok(vec![(Err(rejection), format!("{}:1", path.display()))]);
    }
    let several = sales.len() > 1;
    let placed = sales
        .into_iter()
        .map(|(sale, line, index)| {
            let place = format!("{}:{line}", path.display());
            let id = if several {
                format!("{relative}#{index}")
            } else {
                relative.to_string()
            };
            (sale.and_then(|sale| with_id(sale, &id)), place)
        })
        .collect();
    Ok(placed)
}

/// Gives a sale the import's id, unless the file already named one.
fn with_id(mut sale: NewSale, id: &str) -> Result<NewSale, Rejection> {
    if sale.id.is_none() {
        sale.id = SaleId::parse_optional("id", id)?;
    }
    Ok(sale)
}

/// The id of a sale file. For the seed's layout it is the last four
/// parts of the path, `YYYY/M/D/NNNNN.json`, whatever directory the import
/// started from, so that importing `data/` and sending `data/2023/1` with
/// the client give the same sale the same id. Other files use their path
/// under the import root, with `/` separators.
pub fn file_id(root: &Path, path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let [.., year, month, day, _file] = parts.as_slice() {
        let numeric =
            |part: &String| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if numeric(year) && numeric(month) && numeric(day) && year.len() == 4 {
            return parts[parts.len() - 4..].join("/");
        }
    }
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

fn collect_files(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), ImportError> {
    let read_error = |source| ImportError::Read {
        path: dir.display().to_string(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(read_error)?;
        if kind.is_dir() {
            collect_files(&path, files, skipped)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}

/// Imports the seed's database file (`db/sales_data.json`): one sale per
/// line, prices written through a 32-bit float. Each sale's id is
/// `legacy:LINE:HASH` (the hash of the line's text), so a re-run, or a run
/// on a file that has grown since, counts nothing twice.
pub fn import_legacy(
    writer: &WriterHandle,
    file: &Path,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut report = ImportReport {
        files: 1,
        ..ImportReport::default()
    };
    let read_error = |source| ImportError::Read {
        path: file.display().to_string(),
        source,
    };
    let reader = BufReader::new(fs::File::open(file).map_err(read_error)?);

    let mut pipeline = Pipeline::new(writer);
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(read_error)?;
        let number = index + 1;
        let place = format!("{}:{number}", file.display());
        let text = match std::str::from_utf8(&line) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => text,
            Err(_) => {
                report
                    .reject(place, Rejection::new("json", "", "is not valid UTF-8 text"));
                continue;
            }
        };
        match parse_legacy_sale(text) {
            Ok((sale, recovered)) => {
                report.recovered_prices += u64::from(recovered);
                let id =
                    format!("legacy:{number}:{:016x}", xxh3_64(text.trim().as_bytes()));
                let id = SaleId::parse_optional("id", &id).ok().flatten();
                pipeline.push(NewSale { sale, id }, &mut report)?;
            }
            Err(rejection) => report.reject(place, rejection),
        }
    }
    pipeline.finish(&mut report)?;
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_layout_ids_do_not_depend_on_the_import_root() {
        let file = Path::new("/srv/data/2023/1/10/00261.json");
        assert_eq!(
            file_id(Path::new("/srv/data"), file),
            "2023/1/10/00261.json"
        );
        assert_eq!(
            file_id(Path::new("/srv/data/2023/1/10"), file),
            "2023/1/10/00261.json"
        );
        let other = Path::new("/srv/exports/march/sales.json");
        assert_eq!(
            file_id(Path::new("/srv/exports"), other),
            "march/sales.json"
        );
    }
}
