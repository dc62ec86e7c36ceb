//! `verify` and `rebuild`: the totals against a fold of the raw sales.

use std::collections::BTreeSet;

use clap::Args;
use std::path::Path;

use sales_storage::{Statistics, Store, Totals};

use super::Context;

#[derive(Args)]
pub(crate) struct Verify {}

#[derive(Args)]
pub(crate) struct Rebuild {}

impl Verify {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let store = context.open()?;
        report(&store, &context.db)
    }
}

/// Rescans the raw sales, prints every difference with the stored totals
/// and returns the exit code: 0 when they agree, 1 when they do not.
pub(crate) fn report(store: &Store, db: &Path) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let (folded, sales) = store.fold_sales()?;
    let stored = store.stored_totals()?;
    let differences = differences(&folded, &stored);

    for line in &differences {
        say!("{line}");
    }
    say!(
        "{sales} sales rescanned in {:.2} s; {} item-months; {} differences",
        started.elapsed().as_secs_f64(),
        folded.entries().count(),
        differences.len()
    );
    if differences.is_empty() {
        say!("ok: the stored totals equal a fold of the raw sales");
        Ok(0)
    } else {
        say!(
            "run `migrations-tool --db {} rebuild` to recompute the totals",
            db.display()
        );
        Ok(1)
    }
}

impl Rebuild {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let mut store = context.open()?;
        let started = std::time::Instant::now();
        let sales = store.rebuild_totals()?;
        say!(
            "rebuilt the totals from {sales} sales in {:.2} s",
            started.elapsed().as_secs_f64()
        );
        Ok(0)
    }
}

/// Every item and month where the fold and the stored totals disagree.
pub(crate) fn differences(folded: &Statistics, stored: &Statistics) -> Vec<String> {
    let keys: BTreeSet<_> = folded
        .entries()
        .chain(stored.entries())
        .map(|(item, month, _)| (item.clone(), month))
        .collect();
    keys.into_iter()
        .filter_map(|(item, month)| {
            let expected = folded.get(&item, month).copied().unwrap_or_default();
            let actual = stored.get(&item, month).copied().unwrap_or_default();
            (expected != actual).then(|| {
                format!(
                    "{item} {month}: raw sales say {}, stored totals say {}",
                    describe(&expected),
                    describe(&actual)
                )
            })
        })
        .collect()
}

fn describe(totals: &Totals) -> String {
    format!(
        "{} sales / {} units / revenue {}",
        totals.sales, totals.quantity, totals.revenue
    )
}
