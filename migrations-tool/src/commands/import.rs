//! `import` and `import-legacy`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use sales_storage::import::{import_directory, import_legacy, ImportReport};
use sales_storage::Writer;

use super::Context;

#[derive(Args)]
pub(crate) struct Import {
    /// The directory to import.
    dir: PathBuf,

    /// Put this before every id derived from a file's path (for example
    /// `shop-b/`), so that two directories with the same file names do
    /// not collide.
    #[arg(long, default_value = "")]
    id_prefix: String,
}

#[derive(Args)]
pub(crate) struct ImportLegacy {
    /// The seed's database file, usually db/sales_data.json.
    file: PathBuf,
}

impl Import {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let dir = self.dir.display();
        anyhow::ensure!(
            self.dir.exists(),
            "{dir} does not exist; give the directory of sale files to import"
        );
        anyhow::ensure!(
            self.dir.is_dir(),
            "{dir} is not a directory; `import` takes a directory of sale files \
             (`import-legacy` takes the seed's database file)"
        );
        let writer = Writer::start(context.open()?)?;
        let report = import_directory(&writer.handle(), &self.dir, &self.id_prefix)
            .with_context(|| format!("importing {dir}"))?;
        writer.close()?;
        let code = print_report(&report);
        if report.files == 0 {
            // As the client does: an import of nothing is more likely a
            // wrong path than a wish.
            say!("refused {dir}: no .json or .ndjson file in this directory");
            return Ok(code.max(1));
        }
        Ok(code)
    }
}

impl ImportLegacy {
    pub(crate) fn run(self, context: &Context) -> anyhow::Result<u8> {
        let writer = Writer::start(context.open()?)?;
        let report = import_legacy(&writer.handle(), &self.file)
            .with_context(|| format!("importing {}", self.file.display()))?;
        writer.close()?;
        say!(
            "{} prices recovered from their float form (e.g. 7.300000190734863 read as 7.3)",
            report.recovered_prices
        );
        Ok(print_report(&report))
    }
}

/// Prints what an import did; exit code 1 if anything was refused.
fn print_report(report: &ImportReport) -> u8 {
    for (place, rejection) in &report.rejections {
        say!("refused {place}: {rejection}");
    }
    // Conflicting ids are listed with the refusals.
    let listable = (report.rejected + report.conflicts) as usize;
    if listable > report.rejections.len() {
        say!("… and {} more refused", listable - report.rejections.len());
    }
    if !report.skipped_files.is_empty() {
        say!(
            "skipped {} entries that are not regular .json or .ndjson files, or are links to files or directories read already:",
            report.skipped_files.len()
        );
        for file in report.skipped_files.iter().take(20) {
            say!("  {}", file.display());
        }
    }
    say!(
        "{} files: {} sales stored, {} already stored, {} conflicting ids, {} refused, in {:.2} s ({:.0} sales/s)",
        report.files,
        report.stored,
        report.duplicates,
        report.conflicts,
        report.rejected,
        report.elapsed.as_secs_f64(),
        report.rate()
    );
    u8::from(report.rejected > 0 || report.conflicts > 0)
}
