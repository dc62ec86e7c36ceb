//! One module per group of subcommands. Each command returns the process
//! exit code: 0 success, 1 "done, but look" (differences, refused sales),
//! 2 (via an error) when it could not do its job.

pub(crate) mod import;
pub(crate) mod migrate;
pub(crate) mod repair;
pub(crate) mod verify;

use std::path::PathBuf;

use sales_storage::StoreOptions;

/// What every command needs: where the database is and how to open it.
pub(crate) struct Context {
    pub(crate) db: PathBuf,
    pub(crate) options: StoreOptions,
}
