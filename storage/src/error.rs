//! The two kinds of failure the store knows: a sale refused for what it
//! says ([`Rejection`], the sender's to fix) and a store that cannot do its
//! job ([`StoreError`], the operator's to fix).

use std::fmt;

/// Why a sale was refused: the field at fault, its value (shortened) and the
/// rule it breaks. Nothing is stored for a refused sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The field at fault: `item`, `quantity`, `price`, `date`, `id`, or
    /// `json` when the text is not a JSON object at all.
    pub field: &'static str,
    /// The offending value as the sender wrote it, shortened for display.
    pub value: String,
    /// The rule, phrased so that the sender knows what to send instead.
    pub rule: String,
}

impl Rejection {
    /// A refusal of `field`, whose `value` breaks `rule`.
    pub fn new(field: &'static str, value: &str, rule: impl Into<String>) -> Self {
        Rejection {
            field,
            value: if value.is_empty() {
                String::new()
            } else {
                shorten(value)
            },
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}: {}", self.field, self.rule)
        } else {
            write!(f, "{} {}: {}", self.field, self.value, self.rule)
        }
    }
}

impl std::error::Error for Rejection {}

/// Longest value echoed back in a rejection, in characters.
const SHOWN_VALUE_CHARS: usize = 40;

/// Quotes a value for a message, cut to a readable length and with control
/// characters escaped so that a hostile value cannot garble a terminal.
fn shorten(value: &str) -> String {
    let count = value.chars().count();
    let shown: String = value.chars().take(SHOWN_VALUE_CHARS).collect();
    let mut quoted = format!("{shown:?}");
    if count > SHOWN_VALUE_CHARS {
        quoted.push_str(&format!("… ({count} characters)"));
    }
    quoted
}

/// The store could not do what was asked. These are never the sender's
/// fault; the message says what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no database where one must already exist.
    #[error(
        "there is no database at {path}; check --db (or SALES_DB), or create one by \
         starting the server or running `migrations-tool import`"
    )]
    Missing { path: String },

    /// Another process holds the database's lock.
    #[error(
        "the database at {path} is in use by another process (a running sales-server \
         or migrations-tool?); stop it first, or point --db at another directory"
    )]
    Locked { path: String },

    /// The database was written by a newer version of this software.
    #[error(
        "the database at {path} has layout version {found}, newer than this program \
         understands ({supported}); upgrade the sales service"
    )]
    LayoutTooNew {
        path: String,
        found: u32,
        supported: u32,
    },

    /// The database has an older layout that must be migrated first.
    #[error(
        "the database at {path} has layout version {found}, older than this program's \
         ({supported}); run `migrations-tool --db {path} migrate` first"
    )]
    LayoutTooOld {
        path: String,
        found: u32,
        supported: u32,
    },

    /// sled could not read the database files.
    #[error(
        "the database at {path} is damaged and cannot be opened ({cause}); run \
         `migrations-tool --db {path} repair`, or restore it from a backup"
    )]
    Damaged { path: String, cause: String },

    /// The commit journal cannot be read or written.
    #[error(
        "cannot use the commit journal {path}: {cause}. It may hold acknowledged \
         sales that are not in the database files yet: make it a readable, writable \
         regular file again (restore it if it was moved) rather than deleting it"
    )]
    Journal { path: String, cause: String },

    /// A record does not decode: the files were changed outside this program.
    #[error("a stored record under key {key} is corrupt: {cause}; run `migrations-tool verify`")]
    CorruptRecord { key: String, cause: String },

    /// A write failed and the store refuses writes until restarted.
    #[error("writing to the database failed: {0}")]
    WriteFailed(String),

    /// The writer has stopped (the server is shutting down).
    #[error("the store is shutting down and takes no more writes")]
    ShuttingDown,

    /// Reading or writing the disk failed.
    #[error(
        "database I/O failed: {0}; check the disk that holds the database (free \
         space, permissions)"
    )]
    Io(sled::Error),
}

// Not `#[from]`, which would also make the sled error the source, and
// error chains would print its text twice.
impl From<sled::Error> for StoreError {
    fn from(error: sled::Error) -> StoreError {
        StoreError::Io(error)
    }
}
