//! Layout migrations: each step upgrades the store from one layout version
//! to the next and writes the new version last, in the same commit as its
//! changes or after them, so that an interrupted step is simply run again.

use crate::error::StoreError;
use crate::store::{Store, LAYOUT_VERSION};

/// One applied step.
#[derive(Debug)]
pub struct Step {
    pub from: u32,
    pub to: u32,
    pub summary: String,
}

/// What `run` did.
#[derive(Debug)]
pub struct MigrationReport {
    /// The layout version found.
    pub from: u32,
    /// The layout version now.
    pub to: u32,
    pub steps: Vec<Step>,
}

/// Brings the store to [`LAYOUT_VERSION`]. Idempotent: on a current store
/// it does nothing.
pub fn run(store: &Store) -> Result<MigrationReport, StoreError> {
    let from = store.layout_version()?;
    if from > LAYOUT_VERSION {
        return Err(StoreError::LayoutTooNew {
            path: store.path().display().to_string(),
            found: from,
            supported: LAYOUT_VERSION,
        });
    }

    let mut steps = Vec::new();
    let mut version = from;
    while version < LAYOUT_VERSION {
        let summary = match version {
            0 => stamp_unversioned(store)?,
            other => unreachable_layout(store, other)?,
        };
        steps.push(Step {
            from: version,
            to: version + 1,
            summary,
        });
        version += 1;
        store.set_layout_version(version)?;
    }
    Ok(MigrationReport {
        from,
        to: version,
        steps,
    })
}

/// Layout 0 is a database with data but no version record, as written by
/// builds before versioning. Its records already have format 1; the step
/// proves that by decoding every sale and total, then stamps version 1.
fn stamp_unversioned(store: &Store) -> Result<String, StoreError> {
    let (_, sales) = store.fold_sales()?;
    let totals = store.stored_totals()?.entries().count();
    Ok(format!(
        "checked {sales} sales and {totals} totals decode as layout 1; stamped the version"
    ))
}

fn unreachable_layout(store: &Store, version: u32) -> Result<String, StoreError> {
    Err(StoreError::Damaged {
        path: store.path().display().to_string(),
        cause: format!(
            "layout version {version} was never released; no migration exists"
        ),
    })
}
