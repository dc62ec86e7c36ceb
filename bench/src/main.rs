//! `sales-bench`: generates sample sales and benchmarks the service end to
//! end against a real server process.

mod generate;
mod run;

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
    /// Sends unary RecordSale calls to a running server and prints the
    /// rate (for profiling one figure without the whole benchmark).
    Unary {
        /// The server's gRPC address.
        #[arg(long, default_value = "http://localhost:50051")]
        server: String,
        /// Concurrent callers.
        #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        in_flight: usize,
        /// Sales to send in all.
        #[arg(long, default_value_t = 64_000)]
        sales: u64,
    },
    /// Runs the end-to-end benchmark against a real server process and
    /// prints a table (also written as JSON). Build with --release first.
    Run(run::Plan),
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
        Command::Unary {
            server,
            in_flight,
            sales,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let rate = runtime.block_on(run::unary(&server, in_flight, sales))?;
            eprintln!("{in_flight} in flight: {sales} sales, {rate:.0} sales/s");
        }
        Command::Run(plan) => run::run(plan)?,
    }
    Ok(())
}
