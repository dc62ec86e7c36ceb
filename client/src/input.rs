//! Reading sales from stdin, files and directories into batches, on a
//! thread of its own so that parsing overlaps with sending.
//!
//! Each valid sale becomes a wire sale remembered with the place it came
//! from (`file:line`), so that a refusal by the server can be reported
//! where the user can fix it. Invalid sales never leave the machine.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDate;
use sales_proto::v1::{Sale as WireSale, SaleBatch};
use sales_storage::documents::{Place, SaleDocument};
use sales_storage::import::{file_id, sale_id, seed_layout_id};
use sales_storage::listing::{list_sale_files, open_regular, Listing};
use sales_storage::readahead::visit_files;
use sales_storage::{NewSale, Rejection, SaleId};
use xxhash_rust::xxh3::Xxh3;

/// Where sales come from.
#[derive(Debug)]
pub(crate) enum Source {
    Stdin,
    File(PathBuf),
    /// A directory in the seed's layout; each sale's id is its file's path
    /// under the directory, as the server's own import does. Listed once,
    /// for the progress bar's total and for reading.
    Directory(PathBuf, Result<Listing, String>),
}

impl Source {
    pub(crate) fn from_argument(argument: &Path) -> Source {
        if argument.as_os_str() == "-" {
            Source::Stdin
        } else if argument.is_dir() {
            let listing = list_sale_files(argument).map_err(|error| error_chain(&error));
            Source::Directory(argument.to_path_buf(), listing)
        } else {
            Source::File(argument.to_path_buf())
        }
    }
}

/// How standard input is named in places.
const STDIN: &str = "<stdin>";

/// Whether a sale came from standard input.
pub(crate) fn from_stdin(place: &Place) -> bool {
    &*place.file == STDIN
}

/// A batch ready to send, with the place of each of its sales.
pub(crate) struct PlacedBatch {
    pub(crate) wire: SaleBatch,
    pub(crate) places: Vec<Place>,
}

/// What the reading thread hands to the sender.
pub(crate) enum Event {
    Batch(PlacedBatch),
    Refused {
        place: String,
        rejection: Rejection,
    },
    /// Files in a directory passed over because of their extension.
    Skipped {
        dir: String,
        files: usize,
    },
    /// A file could not be read at all.
    Unreadable {
        place: String,
        error: String,
    },
}

/// Reads every source in order, sending batches of `batch_size` sales.
pub(crate) struct Reader {
    batch_size: usize,
    bytes_read: Arc<AtomicU64>,
    events: tokio::sync::mpsc::Sender<Event>,
    /// Put before every id the client derives from a file's path.
    id_prefix: String,
    /// Sales read but not yet sent, with the day they are grouped under in
    /// the store (with their item).
    pending: Vec<(NaiveDate, WireSale, Place)>,
    /// Roughly how many bytes the pending sales take on the wire.
    pending_bytes: usize,
    batches: u64,
}

/// Sales sorted together before they are cut into batches: a stream's
/// window, which the client holds in memory anyway.
const SORTED_SALES: usize = 16_384;

/// ... unless they take this many bytes on the wire first.
const SORTED_BYTES: usize = 4 * MAX_BATCH_BYTES;

impl Reader {
    pub(crate) fn new(
        batch_size: usize,
        bytes_read: Arc<AtomicU64>,
        events: tokio::sync::mpsc::Sender<Event>,
        id_prefix: String,
    ) -> Reader {
        Reader {
            batch_size,
            bytes_read,
            events,
            id_prefix,
            pending: Vec::new(),
            pending_bytes: 0,
            batches: 0,
        }
    }

    /// Reads all sources; returns when done or when the sender has gone.
    pub(crate) fn run(mut self, sources: Vec<Source>) {
        for source in sources {
            let going_on = match source {
                Source::Stdin => self.read_stream(io::stdin().lock(), STDIN, None),
                Source::File(path) => {
                    let id =
                        seed_layout_id(&path).map(|id| format!("{}{id}", self.id_prefix));
                    self.read_file(&path, id.as_deref())
                }
                Source::Directory(dir, listing) => self.read_directory(&dir, listing),
            };
            if !going_on {
                return;
            }
        }
        self.flush();
    }

    /// A file found in a directory: only a regular file is read.
    fn read_listed_file(&mut self, path: &Path, id: &str) -> bool {
        match open_regular(path) {
            Ok(file) => self.read_stream(file, &path.display().to_string(), Some(id)),
            Err(error) => self.emit(Event::Unreadable {
                place: path.display().to_string(),
                error: error.to_string(),
            }),
        }
    }

    /// A file named on the command line, which may be a pipe
    /// (`<(zcat sales.gz)`).
    fn read_file(&mut self, path: &Path, id: Option<&str>) -> bool {
        match File::open(path) {
            Ok(file) => self.read_stream(file, &path.display().to_string(), id),
            Err(error) => self.emit(Event::Unreadable {
                place: path.display().to_string(),
                error: error.to_string(),
            }),
        }
    }

    fn read_directory(&mut self, dir: &Path, listing: Result<Listing, String>) -> bool {
        let listing = match listing {
            Ok(listing) => listing,
            Err(error) => {
                return self.emit(Event::Unreadable {
                    place: dir.display().to_string(),
                    error,
                })
            }
        };
        for (path, error) in &listing.unreadable {
            let unreadable = Event::Unreadable {
                place: path.display().to_string(),
                error: error.to_string(),
            };
            if !self.emit(unreadable) {
                return false;
            }
        }
        if !listing.skipped.is_empty() {
            let dir = dir.display().to_string();
            if !self.emit(Event::Skipped {
                dir,
                files: listing.skipped.len(),
            }) {
                return false;
            }
        }
        let files = listing.files;
        if files.is_empty() {
            return self.emit(Event::Refused {
                place: dir.display().to_string(),
                rejection: Rejection::new(
                    "file",
                    "",
                    "no .json or .ndjson file in this directory",
                ),
            });
        }
        let stopped = visit_files(&files, |file| {
            let id = format!("{}{}", self.id_prefix, file_id(dir, file));
            match self.read_listed_file(file, &id) {
                true => ControlFlow::Continue(()),
                false => ControlFlow::Break(()),
            }
        });
        stopped.is_none()
    }

    /// Parses one stream of JSON. `id`, when given, names the stream's
    /// sales: `id` for the first, `id#1`, `id#2`, … for the next.
    fn read_stream(&mut self, input: impl Read, name: &str, id: Option<&str>) -> bool {
        let counted = CountingReader {
            inner: input,
            count: Arc::clone(&self.bytes_read),
        };
        let source: Arc<str> = Arc::from(name);
        let document = SaleDocument::new(BufReader::with_capacity(256 * 1024, counted));
        let mut empty = true;
        for read in document {
            let read = match read {
                Ok(read) => read,
                Err(error) => {
                    return self.emit(Event::Unreadable {
                        place: name.to_string(),
                        error: error.to_string(),
                    })
                }
            };
            empty = false;
            let place = Place {
                file: Arc::clone(&source),
                line: read.line,
            };
            let going_on = match read.sale {
                Err(rejection) => self.emit(Event::Refused {
                    place: place.to_string(),
                    rejection,
                }),
                Ok(sale) => {
                    let sale_id = id.map(|id| sale_id(id, read.index));
                    self.push(sale, place, sale_id)
                }
            };
            if !going_on {
                return false;
            }
        }
        if empty {
            let rejection =
                Rejection::new("json", "", "no sale found: the input is empty");
            return self.emit(Event::Refused {
                place: format!("{name}:1"),
                rejection,
            });
        }
        true
    }

    fn push(&mut self, mut sale: NewSale, place: Place, id: Option<String>) -> bool {
        if sale.id.is_none() {
            if let Some(id) = id {
                match SaleId::parse_optional("id", &id) {
                    Ok(parsed) => sale.id = parsed,
                    Err(rejection) => {
                        return self.emit(Event::Refused {
                            place: place.to_string(),
                            rejection,
                        })
                    }
                }
            }
        }
        let wire = to_wire(&sale);
        self.pending_bytes += encoded_size(&wire);
        self.pending.push((sale.sale.date.day(), wire, place));
        if self.pending.len() >= SORTED_SALES || self.pending_bytes >= SORTED_BYTES {
            return self.flush();
        }
        true
    }

    /// Sends the pending sales, sorted by day and item, as batches with
    /// ids derived from their content and position, so that sending the
    /// same input again is recognised as a duplicate by the server.
    fn flush(&mut self) -> bool {
        // The store keeps sales together by day and item: sorted by both,
        // a batch's sales fall into few groups even when the input is in
        // no order. The sort is stable, so the same input always gives the
        // same batches and batch ids. Indices are sorted, not the sales,
        // which are much larger to move.
        let mut order: Vec<usize> = (0..self.pending.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.pending[a], &self.pending[b]);
            (a.0, &a.1.item).cmp(&(b.0, &b.1.item))
        });
        let mut pending: Vec<Option<(NaiveDate, WireSale, Place)>> =
            std::mem::take(&mut self.pending)
                .into_iter()
                .map(Some)
                .collect();
        let mut sorted = order
            .into_iter()
            .filter_map(|index| pending[index].take())
            .peekable();
        self.pending_bytes = 0;
        while sorted.peek().is_some() {
            let (mut sales, mut places, mut bytes) = (Vec::new(), Vec::new(), 0);
            while sales.len() < self.batch_size && bytes < MAX_BATCH_BYTES {
                let Some((_, sale, place)) = sorted.next() else {
                    break;
                };
                bytes += encoded_size(&sale);
                sales.push(sale);
                places.push(place);
            }
            let batch_id = batch_id(self.batches, &sales);
            self.batches += 1;
            let batch = PlacedBatch {
                wire: SaleBatch { batch_id, sales },
                places,
            };
            if !self.emit(Event::Batch(batch)) {
                return false;
            }
        }
        true
    }

    fn emit(&self, event: Event) -> bool {
        self.events.blocking_send(event).is_ok()
    }
}

/// A batch is sent once it reaches this size on the wire, whatever
/// `--batch-size` says, so that long item names and ids cannot push a
/// message over the server's 4 MiB limit.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// An upper bound of a sale's protobuf size: its texts plus tags, lengths
/// and the quantity.
fn encoded_size(sale: &WireSale) -> usize {
    sale.item.len() + sale.price.len() + sale.date.len() + sale.id.len() + 32
}

fn to_wire(sale: &NewSale) -> WireSale {
    WireSale {
        item: sale.sale.item.to_string(),
        quantity: i64::from(sale.sale.quantity.get()),
        price: sale.sale.price.to_string(),
        date: sale.sale.date.to_string(),
        id: sale
            .id
            .as_ref()
            .map(|id| id.as_str().to_string())
            .unwrap_or_default(),
    }
}

/// `client:<ordinal>:<hash of the sales>`.
fn batch_id(ordinal: u64, sales: &[WireSale]) -> String {
    let mut hash = Xxh3::new();
    for sale in sales {
        for field in [&sale.item, &sale.price, &sale.date, &sale.id] {
            hash.update(field.as_bytes());
            hash.update(&[0]);
        }
        hash.update(&sale.quantity.to_le_bytes());
    }
    format!("client:{ordinal}:{:032x}", hash.digest128())
}

/// Total size of the files behind the sources, for the progress bar;
/// `None` when stdin is among them.
pub(crate) fn total_bytes(sources: &[Source]) -> Option<u64> {
    let mut total = 0;
    for source in sources {
        match source {
            Source::Stdin => return None,
            Source::File(path) => {
                total += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            }
            Source::Directory(_, listing) => {
                total += listing
                    .as_ref()
                    .ok()?
                    .files
                    .iter()
                    .filter_map(|file| std::fs::metadata(file).ok())
                    .map(|m| m.len())
                    .sum::<u64>();
            }
        }
    }
    Some(total)
}

/// Counts bytes as they are read, for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

/// An error with its causes, as one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
