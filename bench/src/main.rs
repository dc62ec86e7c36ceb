//! `sales-bench`: generates sample sales and benchmarks the service end to
//! end against a real server process.

mod generate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sales-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes sample sales in the seed's layout (DIR/YYYY/M/D/NNNNN.json).
    GenerateData {
        /// Directory to write into (created if missing).
        dir: PathBuf,
        /// Number of sales.
        #[arg(long, default_value_t = 10_000)]
        sales: u64,
        /// Year the sales fall in.
        #[arg(long, default_value_t = 2023)]
        year: i32,
        /// Random seed; the same seed gives the same sales.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Writes sample sales as NDJSON to a file, or to stdout with `-`.
    Generate {
        file: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        sales: u64,
        #[arg(long, default_value_t = 2023)]
        year: i32,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::GenerateData {
            dir,
            sales,
            year,
            seed,
        } => {
            generate::write_directory(&dir, sales, year, seed)?;
        }
        Command::Generate {
            file,
            sales,
            year,
            seed,
        } => {
            if file.as_os_str() == "-" {
                generate::write_ndjson(&mut std::io::stdout().lock(), sales, year, seed)?;
            } else {
                generate::write_ndjson(
                    &mut std::fs::File::create(&file)?,
                    sales,
                    year,
                    seed,
                )?;
            }
        }
    }
    Ok(())
}
