//! Loading sales from files into the store: a directory in the seed's
//! layout (`DIR/YYYY/M/D/NNNNN.json`) and the seed's database file.
//!
//! Every imported sale carries an id derived from where it came from (its
//! path under the directory, or its line in the legacy file), so an
//! interrupted import can simply be run again: what is already stored is
//! counted as duplicate, never twice.

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::xxh3_64;

use crate::documents::{Place, SaleDocument};
use crate::error::{Rejection, StoreError};
use crate::json::parse_legacy_sale;
use crate::listing::{list_sale_files, open_regular};
use crate::readahead::visit_files;
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
    /// The first refusals and conflicting ids, with the file and line they
    /// came from.
    pub rejections: Vec<(String, Rejection)>,
    /// Sales refused because their item would exceed the store's item
    /// limit (counted in `rejected` too).
    pub over_item_limit: u64,
    /// Entries passed over: not regular `.json` or `.ndjson` files, or
    /// links to files or directories already read.
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

    /// Counts a request's outcomes; `places` says where each sale came
    /// from, so that a conflict is reported by file and line.
    fn count(&mut self, outcomes: &[Outcome], places: &[Place]) {
        for (outcome, place) in outcomes.iter().zip(places) {
            match outcome {
                Outcome::Stored => self.stored += 1,
                Outcome::Duplicate => self.duplicates += 1,
                Outcome::Conflict => {
                    self.conflicts += 1;
                    if self.rejections.len() < KEPT_REJECTIONS {
                        let rejection = Rejection::new(
                            "id",
                            "",
                            "is already stored with different content; nothing \
                             changed (edit sales in place of re-numbering them, or \
                             import with another --id-prefix)",
                        );
                        self.rejections.push((place.to_string(), rejection));
                    }
                }
                Outcome::TooManyItems => {
                    self.rejected += 1;
                    self.over_item_limit += 1;
                }
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
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store failed part way through.
    #[error(
        "the import stopped after storing {stored} sales ({duplicates} more were \
         already stored): {cause}. Run it again once that is fixed: what is \
         stored counts as already stored, never twice"
    )]
    Stopped {
        stored: u64,
        duplicates: u64,
        cause: StoreError,
    },
}

/// A store failure, with what the import settled before it.
fn stopped(report: &ImportReport, cause: StoreError) -> ImportError {
    ImportError::Stopped {
        stored: report.stored,
        duplicates: report.duplicates,
        cause,
    }
}

type Answer = tokio::sync::oneshot::Receiver<WriteResult>;

/// Sends chunks of sales to the writer, keeping a few in flight.
struct Pipeline<'a> {
    writer: &'a WriterHandle,
    chunk: Vec<NewSale>,
    places: Vec<Place>,
    in_flight: std::collections::VecDeque<(Answer, Vec<Place>)>,
}

impl<'a> Pipeline<'a> {
    fn new(writer: &'a WriterHandle) -> Pipeline<'a> {
        Pipeline {
            writer,
            chunk: Vec::with_capacity(IMPORT_CHUNK),
            places: Vec::with_capacity(IMPORT_CHUNK),
            in_flight: Default::default(),
        }
    }

    fn push(
        &mut self,
        sale: NewSale,
        place: Place,
        report: &mut ImportReport,
    ) -> Result<(), StoreError> {
        self.chunk.push(sale);
        self.places.push(place);
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
        let places =
            std::mem::replace(&mut self.places, Vec::with_capacity(IMPORT_CHUNK));
        let answer = self.writer.submit_blocking(WriteRequest::sales(sales))?;
        self.in_flight.push_back((answer, places));
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_one(report)?;
        }
        Ok(())
    }

    fn wait_one(&mut self, report: &mut ImportReport) -> Result<(), StoreError> {
        if let Some((answer, places)) = self.in_flight.pop_front() {
            report.count(&wait_blocking(answer)?, &places);
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

/// Imports every `*.json` and `*.ndjson` file below `dir`. Each file may
/// hold one sale (the seed's layout), an array or NDJSON. Each sale gets
/// an id from [`file_id`] and its position (see [`sale_id`]), after
/// `id_prefix`, unless its JSON names an id of its own.
pub fn import_directory(
    writer: &WriterHandle,
    dir: &Path,
    id_prefix: &str,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut report = ImportReport::default();
    let listing = list_sale_files(dir)?;
    report.skipped_files = listing.skipped;
    for (path, error) in listing.unreadable {
        let rejection =
            Rejection::new("directory", "", format!("cannot be read: {error}"));
        report.reject(path.display().to_string(), rejection);
    }

    let mut pipeline = Pipeline::new(writer);
    let failed = visit_files(&listing.files, |path| {
        report.files += 1;
        let id = format!("{id_prefix}{}", file_id(dir, path));
        match import_file(path, &id, &mut pipeline, &mut report) {
            Ok(()) => ControlFlow::Continue(()),
            Err(error) => ControlFlow::Break(error),
        }
    });
    if let Some(error) = failed {
        return Err(stopped(&report, error));
    }
    pipeline
        .finish(&mut report)
        .map_err(|error| stopped(&report, error))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Streams the sales of one file into the pipeline. A file that cannot be
/// opened or read is one refusal, not the end of the import.
fn import_file(
    path: &Path,
    file_id: &str,
    pipeline: &mut Pipeline<'_>,
    report: &mut ImportReport,
) -> Result<(), StoreError> {
    let place = |line: u64| format!("{}:{line}", path.display());
    let unreadable =
        |error: io::Error| Rejection::new("file", "", format!("cannot be read: {error}"));
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(error) => {
            report.reject(place(1), unreadable(error));
            return Ok(());
        }
    };

    let shown: Arc<str> = path.display().to_string().into();
    let mut empty = true;
    for read in SaleDocument::new(BufReader::new(file)) {
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                report.reject(place(1), unreadable(error));
                return Ok(());
            }
        };
        empty = false;
        let id = sale_id(file_id, read.index);
        match read.sale.and_then(|sale| with_id(sale, &id)) {
            Ok(sale) => {
                let file = Arc::clone(&shown);
                pipeline.push(
                    sale,
                    Place {
                        file,
                        line: read.line,
                    },
                    report,
                )?
            }
            Err(rejection) => report.reject(place(read.line), rejection),
        }
    }
    if empty {
        report.reject(
            place(1),
            Rejection::new("json", "", "the file is empty; expected a sale"),
        );
    }
    Ok(())
}

/// The id of the sale at `index` in a file: the file's id for the first
/// sale, then `ID#1`, `ID#2`, … so that appending to a file never changes
/// the ids of the sales already in it.
pub fn sale_id(file_id: &str, index: u64) -> String {
    if index == 0 {
        file_id.to_string()
    } else {
        format!("{file_id}#{index}")
    }
}

/// Gives a sale the import's id, unless the file already named one.
fn with_id(mut sale: NewSale, id: &str) -> Result<NewSale, Rejection> {
    if sale.id.is_none() {
        sale.id = SaleId::parse_optional("id", id)?;
    }
    Ok(sale)
}

/// The id of a sale file. For the seed's layout it is the last four parts
/// of the path, `YYYY/M/D/NNNNN.json`, however the file was named (a
/// relative path, `.`, the whole directory or the file alone), so that
/// importing `data/` and sending `data/2023/1` with the client give a sale
/// the same id. Other files use their path under the import root, with
/// `/` separators.
pub fn file_id(root: &Path, path: &Path) -> String {
    if let Some(id) = seed_layout_id(path) {
        return id;
    }
    // The path as walked from the root, not as resolved: a directory
    // reached through a symbolic link keeps its own name in the id.
    if let Ok(relative) = path.strip_prefix(root) {
        if !relative.as_os_str().is_empty() {
            return components(relative).join("/");
        }
    }
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    match absolute.strip_prefix(&root) {
        Ok(relative) if !relative.as_os_str().is_empty() => {
            components(relative).join("/")
        }
        _ => components(&absolute).last().cloned().unwrap_or_default(),
    }
}

/// `YYYY/M/D/NNNNN.json` when the file sits in the seed's layout.
pub fn seed_layout_id(path: &Path) -> Option<String> {
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let parts = components(&absolute);
    let [.., year, month, day, _file] = parts.as_slice() else {
        return None;
    };
    let numeric =
        |part: &String| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let layout = numeric(year) && numeric(month) && numeric(day) && year.len() == 4;
    layout.then(|| parts[parts.len() - 4..].join("/"))
}

fn components(path: &Path) -> Vec<String> {
    path.components()
        .filter(|part| matches!(part, std::path::Component::Normal(_)))
        .map(|part| component_text(part.as_os_str()))
        .collect()
}

/// A path component as id text. A name that is not UTF-8 keeps its
/// invalid bytes as `%XX` (and `%` as `%25`), so that two such names never
/// share an id, as they would if the bytes became U+FFFD.
fn component_text(part: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;

    if let Some(text) = part.to_str() {
        return text.to_string();
    }
    let mut text = String::new();
    for chunk in part.as_bytes().utf8_chunks() {
        text.push_str(&chunk.valid().replace('%', "%25"));
        for byte in chunk.invalid() {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    text
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

    let shown: Arc<str> = file.display().to_string().into();
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
                let place = Place {
                    file: Arc::clone(&shown),
                    line: number as u64,
                };
                pipeline
                    .push(NewSale { sale, id }, place, &mut report)
                    .map_err(|error| stopped(&report, error))?;
            }
            Err(rejection) => report.reject(place, rejection),
        }
    }
    pipeline
        .finish(&mut report)
        .map_err(|error| stopped(&report, error))?;
    report.elapsed = started.elapsed();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_keep_distinct_ids() {
        use std::os::unix::ffi::OsStrExt;

        let root = Path::new("/srv/exports");
        let name = |bytes: &[u8]| root.join(std::ffi::OsStr::from_bytes(bytes));

        assert_eq!(file_id(root, &name(b"a\xff.json")), "a%FF.json");
        assert_eq!(file_id(root, &name(b"a\xfe.json")), "a%FE.json");
        assert_eq!(file_id(root, &name(b"50%\xff.json")), "50%25%FF.json");
        assert_eq!(file_id(root, &name(b"50%.json")), "50%.json");
    }

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
        let linked = Path::new("/srv/exports/shop2/sales.json");
        assert_eq!(
            file_id(Path::new("/srv/exports"), linked),
            "shop2/sales.json"
        );
        let other = Path::new("/srv/exports/march/sales.json");
        assert_eq!(
            file_id(Path::new("/srv/exports"), other),
            "march/sales.json"
        );
    }
}
