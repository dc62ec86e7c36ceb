//! `migrations-tool`: the operator's commands on a stopped server's
//! database. Each subcommand is a struct with a `run` in `commands/`;
//! this file only parses arguments and maps the outcome to an exit code.

/// Prints a line of the report on stdout. When stdout is closed (the
/// report piped into `head`, say) the program stops quietly, as a process
/// killed by SIGPIPE would, instead of panicking as `println!` does.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(141);
        }
    }};
}

mod commands;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sales_storage::{Store, StoreOptions};

/// Imports, verifies, rebuilds and migrates the sales database. Stop the
/// server first: the database can be open in one process at a time.
#[derive(Parser)]
#[command(name = "migrations-tool", version, about)]
struct Cli {
    /// Directory of the sled database.
    #[arg(long, env = "SALES_DB", default_value = "db", global = true)]
    db: PathBuf,

    /// sled's page cache in MiB.
    #[arg(long, env = "SALES_CACHE_MB", default_value_t = 64, global = true)]
    cache_mb: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Imports a directory in the seed's layout (DIR/YYYY/M/D/NNNNN.json).
    /// Safe to re-run: each sale's id is its path under DIR.
    Import(commands::import::Import),
    /// Imports the seed's database file (db/sales_data.json, one sale per
    /// line, float prices recovered to the intended decimals).
    ImportLegacy(commands::import::ImportLegacy),
    /// Recomputes every total from the raw sales and compares it with the
    /// stored totals. Exits 1 and lists the differences if any.
    Verify(commands::verify::Verify),
    /// Replaces the stored totals with a recomputation from the raw sales.
    Rebuild(commands::verify::Rebuild),
    /// Upgrades the database layout to this program's version.
    Migrate(commands::migrate::Migrate),
    /// Prints the layout version, sale count and size of the database.
    Info(commands::migrate::Info),
    /// Recovers a database sled refuses to open because a snapshot file is
    /// damaged (after an abrupt stop). Copies the database aside first.
    Repair(commands::repair::Repair),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();

    let context = commands::Context {
        db: cli.db,
        options: StoreOptions {
            cache_bytes: cli.cache_mb * 1024 * 1024,
            // Only imports may create a database; the other commands on a
            // mistyped --db must not report on a new, empty one.
            create: matches!(cli.command, Command::Import(_) | Command::ImportLegacy(_)),
            ..StoreOptions::default()
        },
    };
    let outcome = match cli.command {
        Command::Import(command) => command.run(&context),
        Command::ImportLegacy(command) => command.run(&context),
        Command::Verify(command) => command.run(&context),
        Command::Rebuild(command) => command.run(&context),
        Command::Migrate(command) => command.run(&context),
        Command::Info(command) => command.run(&context),
        Command::Repair(command) => command.run(&context),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            // A closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "error: {error:#}");
            ExitCode::from(2)
        }
    }
}

impl commands::Context {
    /// Opens the store, or explains why it cannot be opened.
    fn open(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.db, &self.options)?)
    }
}
