//! `migrate` and `info`: the database's layout version.

use clap::Args;
use sales_storage::{Store, StoreOptions, LAYOUT_VERSION};

use super::Context;

#[derive(Args)]
pub(crate) struct Migrate {}

/// Opens the store whatever its layout version: these two commands are
/// the ones that must work on an old layout.
fn open_any_layout(context: &Context) -> anyhow::Result<Store> {
    let options = StoreOptions {
        allow_old_layout: true,
        ..context.options.clone()
    };
    Ok(Store::open(&context.db, &options)?)
}

#[derive(Args)]
pub(crate) struct Info {}

impl Migrate {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let store = open_any_layout(context)?;
        let report = sales_storage::migrate::run(&store)?;
        if report.steps.is_empty() {
            say!("layout {}: already current; nothing to do", report.to);
        }
        for step in &report.steps {
            say!(
                "migrated layout {} → {}: {}",
                step.from,
                step.to,
                step.summary
            );
        }
        Ok(0)
    }
}

impl Info {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let store = open_any_layout(context)?;
        let totals = store
            .statistics()
            .read()
            .map(|s| s.grand_total())
            .unwrap_or_default();
        say!("database:       {}", context.db.display());
        say!(
            "layout version: {} (this program: {LAYOUT_VERSION})",
            store.layout_version()?
        );
        say!("sales:          {}", totals.sales);
        say!("units:          {}", totals.quantity);
        say!("revenue:        {}", totals.revenue);
        say!("size on disk:   {} bytes", store.size_on_disk()?);
        Ok(0)
    }
}
