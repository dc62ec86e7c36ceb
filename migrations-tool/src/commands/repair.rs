//! `repair`: recovers a database that sled refuses to open because a
//! snapshot file is damaged, the known failure after an abrupt stop, or
//! whose commit journal is damaged or lost.
//!
//! A journal damaged in the middle, or lost while sled held part of a
//! commit, costs the commits that cannot be completed: `repair` applies
//! what can be, rolls the rest back to the last whole commit, rebuilds the
//! totals and says what was given up.
//!
//! sled keeps its data in a log (`db`) and periodically writes a snapshot
//! (`snap.*`) to open faster. The snapshot can be rebuilt from the log, so
//! setting it aside is safe when only the snapshot is damaged. If the log
//! itself is damaged, sled recovers the records before the damage only;
//! that is why `repair` first copies the whole directory aside.

use std::fs;
use std::path::{Path, PathBuf};

use clap::Args;
use sales_storage::{Store, StoreError, StoreOptions};

use super::Context;

#[derive(Args)]
pub(crate) struct Repair {}

impl Repair {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let db = &context.db;
        anyhow::ensure!(
            db.join("conf").exists(),
            "there is no database at {}",
            db.display()
        );
        match Store::open(db, &context.options) {
            Ok(store) => {
                say!("the database opens; nothing to repair");
                return super::verify::report(&store, db);
            }
            Err(StoreError::Damaged { cause, .. }) => say!("damaged: {cause}"),
            Err(other) => return Err(other.into()),
        }

        let backup = backup_path(db);
        if let Err(error) = copy_dir(db, &backup) {
            // A half copy helps nobody and takes the space a full disk lacks.
            let _ = fs::remove_dir_all(&backup);
            anyhow::bail!(
                "could not copy the database aside to {} before repairing it: {error}; \
                 nothing was changed. Free some space (the copy needs as much as the \
                 database) and run repair again",
                backup.display()
            );
        }
        say!("copied the damaged database to {}", backup.display());
        let mut set_aside = 0;
        for entry in fs::read_dir(db)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name.starts_with("snap.") {
                fs::remove_file(&path)?;
                set_aside += 1;
            }
        }
        say!("removed {set_aside} snapshot file(s); sled rebuilds them from the log");

        let recovering = StoreOptions {
            recover: true,
            ..context.options.clone()
        };
        let store = match Store::open(db, &recovering) {
            Ok(store) => store,
            Err(StoreError::Damaged { cause, .. }) => {
                say!(
                    "still damaged after rebuilding the snapshot ({cause}): the log itself is \
                     damaged and cannot be repaired here; restore the database from a backup \
                     (the damaged copy is kept at {})",
                    backup.display()
                );
                return Ok(2);
            }
            Err(other) => return Err(other.into()),
        };
        for note in store.recovery_notes() {
            say!("gave up: {note}");
        }
        if !store.recovery_notes().is_empty() {
            say!(
                "the sales of those commits were acknowledged to their senders but are \
                 gone: re-send them (sales with ids or from directories are recognised, \
                 already stored ones are not counted twice)"
            );
        }
        let sales = store
            .statistics()
            .read()
            .map(|s| s.grand_total().sales)
            .unwrap_or(0);
        say!(
            "the database opens again with {sales} sales; if you expected more, the log \
             itself was damaged: restore a backup (the damaged copy is kept at {})",
            backup.display()
        );
        let verified = super::verify::report(&store, db)?;
        if sales == 0 {
            say!("warning: nothing was recovered; do not start the server on it before checking");
            return Ok(1);
        }
        Ok(verified)
    }
}

fn backup_path(db: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let name = db.file_name().unwrap_or_default().to_string_lossy();
    db.with_file_name(format!("{name}.before-repair-{stamp}"))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
