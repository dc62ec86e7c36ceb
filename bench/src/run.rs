//! The end-to-end benchmark: a real server process on loopback, the real
//! client binary for bulk loads, a gRPC client for unary ingest, and a
//! keep-alive HTTP client for statistics latency.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use sales_proto::v1::sales_ingest_client::SalesIngestClient;
use sales_proto::v1::{RecordSaleRequest, Sale};
use sales_storage::import::import_directory;
use sales_storage::{Store, StoreOptions, Writer};

use crate::generate;
use sales_server::testing::{sibling_binary, KeepAlive, ServerProcess};

/// What the benchmark is asked to do.
#[derive(clap::Args)]
pub(crate) struct Plan {
    /// Sales in the bulk load.
    #[arg(long, default_value_t = 1_000_000)]
    sales: u64,
    /// Unary sales sent one at a time.
    #[arg(long, default_value_t = 5_000)]
    unary_single: u64,
    /// Unary sales sent with --in-flight concurrent callers.
    #[arg(long, default_value_t = 64_000)]
    unary_concurrent: u64,
    /// Concurrent unary callers.
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    in_flight: usize,
    /// Statistics requests timed at each size.
    #[arg(long, default_value_t = 2_000)]
    latency_requests: usize,
    /// The sample directory whose import is timed.
    #[arg(long, default_value = "data")]
    sample_data: PathBuf,
    /// Where to write the figures as JSON.
    #[arg(long = "json", default_value = "bench-results/latest.json")]
    json_out: PathBuf,
}

/// One measured figure, with its target.
struct Figure {
    key: &'static str,
    label: String,
    value: f64,
    unit: &'static str,
    target: &'static str,
}

#[derive(Default)]
struct Results {
    figures: Vec<Figure>,
}

impl Results {
    fn add(
        &mut self,
        key: &'static str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: &'static str,
    ) {
        let label = label.into();
        eprintln!("  {label}: {value:.3} {unit}");
        self.figures.push(Figure {
            key,
            label,
            value,
            unit,
            target,
        });
    }

    fn get(&self, key: &str) -> f64 {
        self.figures
            .iter()
            .find(|f| f.key == key)
            .map_or(f64::NAN, |f| f.value)
    }
}

pub(crate) fn run(plan: Plan) -> anyhow::Result<()> {
    let work = tempfile::Builder::new().prefix("sales-bench").tempdir()?;
    let db = work.path().join("db");
    let log = work.path().join("server.log");
    let mut results = Results::default();
    eprintln!("working in {}", work.path().display());

    // Before generating the input files, whose write-back would otherwise
    // compete with the import's flushes.
    measure_sample_import(&plan.sample_data, work.path(), &mut results)?;

    eprintln!("generating {} + 10,000 sales…", plan.sales);
    let small = work.path().join("small.ndjson");
    let large = work.path().join("large.ndjson");
    // Same year and items as the large set, so that both points of the
    // latency comparison have the same 120 item-months to report.
    for (path, count, seed) in [(&small, 10_000, 7), (&large, plan.sales, 42)] {
        let mut file = std::fs::File::create(path)?;
        generate::write_ndjson(&mut file, count, 2023, seed)?;
        // Written back now, so that the disk is quiet while we measure.
        file.sync_all()?;
    }

    let server = ServerProcess::start(&sibling_binary("sales-server")?, &db, &log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    eprintln!("loading 10,000 sales, then timing statistics…");
    client_load(&small, &server.grpc_url)?;
    let (p50, p99) = statistics_latency(&server, plan.latency_requests)?;
    results.add(
        "stats_p50_10k_ms",
        "statistics p50 at 10k sales",
        p50,
        "ms",
        "",
    );
    results.add(
        "stats_p99_10k_ms",
        "statistics p99 at 10k sales",
        p99,
        "ms",
        "",
    );

    eprintln!("unary ingest…");
    let single = runtime.block_on(unary(&server.grpc_url, 1, plan.unary_single))?;
    results.add(
        "unary_1_per_s",
        "unary ingest, 1 in flight",
        single,
        "sales/s",
        ">= 3,000",
    );
    let concurrent = runtime.block_on(unary(
        &server.grpc_url,
        plan.in_flight,
        plan.unary_concurrent,
    ))?;
    results.add(
        "unary_64_per_s",
        format!("unary ingest, {} in flight", plan.in_flight),
        concurrent,
        "sales/s",
        ">= 30,000",
    );

    eprintln!("bulk load of {} sales through sales-client…", plan.sales);
    let seconds = client_load(&large, &server.grpc_url)?;
    results.add(
        "bulk_per_s",
        format!("bulk load of {} sales via the client", plan.sales),
        plan.sales as f64 / seconds,
        "sales/s",
        ">= 200,000",
    );

    let total = 10_000 + plan.unary_single + plan.unary_concurrent + plan.sales;
    let (p50_n, p99_n) = statistics_latency(&server, plan.latency_requests)?;
    results.add(
        "stats_p50_n_ms",
        format!("statistics p50 at {total} sales"),
        p50_n,
        "ms",
        "<= 0.3",
    );
    results.add(
        "stats_p99_n_ms",
        format!("statistics p99 at {total} sales"),
        p99_n,
        "ms",
        "",
    );
    results.add(
        "stats_p50_ratio",
        "p50 at N / p50 at 10k",
        p50_n / p50,
        "x",
        "<= 1.5",
    );

    let peak = server.peak_memory().unwrap_or(0) as f64 / 1e6;
    results.add(
        "peak_rss_mb",
        "server peak memory (RSS)",
        peak,
        "MB",
        "<= 150",
    );
    let stop = server.stop()?;
    results.add(
        "shutdown_s",
        "shutdown on SIGTERM",
        stop.as_secs_f64(),
        "s",
        "",
    );

    let bytes = directory_size(&db)? as f64;
    results.add(
        "disk_bytes_per_sale",
        "database size on disk per sale",
        bytes / total as f64,
        "bytes",
        "<= 100",
    );

    measure_store(&db, total, p50_n, &mut results)?;
    measure_wide_load(plan.sales / 4, work.path(), &mut results)?;
    write_report(&plan, &results, total)
}

/// Loads sales spread over 1,000 items and every day of a year into a
/// fresh server: almost no two sales share an item and day, so every
/// commit writes thousands of distinct keys. Reports the server's peak
/// memory, which must stay bounded here too.
fn measure_wide_load(
    count: u64,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    const ITEMS: u64 = 1_000;
    eprintln!("wide load: {count} sales over {ITEMS} items and 365 days…");
    let input = work.join("wide.ndjson");
    let mut file = std::fs::File::create(&input)?;
    generate::write_wide_ndjson(&mut file, count, ITEMS, 2023, 99)?;
    file.sync_all()?;

    let db = work.join("wide-db");
    let log = work.join("wide-server.log");
    let server = ServerProcess::start(&sibling_binary("sales-server")?, &db, &log)?;
    let seconds = client_load(&input, &server.grpc_url)?;
    results.add(
        "wide_bulk_per_s",
        format!("wide load ({count} sales, {ITEMS} items x 365 days) via the client"),
        count as f64 / seconds,
        "sales/s",
        "",
    );
    let peak = server.peak_memory().unwrap_or(0) as f64 / 1e6;
    results.add(
        "wide_peak_rss_mb",
        "server peak memory (RSS), wide load",
        peak,
        "MB",
        "<= 150",
    );
    server.stop()?;
    Ok(())
}

/// Imports the sample `data/` directory into a fresh store, in process.
fn measure_sample_import(
    data: &Path,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    if !data.is_dir() {
        eprintln!("  (no {} to import; skipped)", data.display());
        return Ok(());
    }
    let store = Store::open(&work.join("sample-db"), &StoreOptions::default())?;
    let writer = Writer::start(store)?;
    let report = import_directory(&writer.handle(), data, "")?;
    writer.close()?;
    results.add(
        "sample_import_s",
        format!("import of {} ({} sales)", data.display(), report.stored),
        report.elapsed.as_secs_f64(),
        "s",
        "<= 1",
    );
    Ok(())
}

/// Opens the stopped server's database in process, and rescans it the
/// naive way the seed did, for comparison with the statistics latency.
fn measure_store(
    db: &Path,
    total: u64,
    p50_ms: f64,
    results: &mut Results,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = Store::open(db, &StoreOptions::default())?;
    results.add(
        "open_s",
        format!("opening the database of {total} sales"),
        started.elapsed().as_secs_f64(),
        "s",
        "<= 1",
    );

    let started = Instant::now();
    let (folded, count) = store.fold_sales()?;
    let body = folded.to_json();
    let naive = started.elapsed().as_secs_f64() * 1e3;
    if count != total {
        bail!("the database holds {count} sales, expected {total}");
    }
    let live = store
        .statistics()
        .read()
        .map(|s| s.to_json())
        .unwrap_or_default();
    if live != body {
        bail!("the stored totals differ from a rescan of the raw sales");
    }
    results.add(
        "naive_rescan_ms",
        "naive baseline: rescan every sale",
        naive,
        "ms",
        "",
    );
    results.add(
        "naive_ratio",
        "naive rescan / statistics p50",
        naive / p50_ms,
        "x",
        "",
    );
    Ok(())
}

/// Pushes a file through the real client binary; returns seconds taken.
fn client_load(file: &Path, grpc_url: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = Command::new(sibling_binary("sales-client")?)
        .args(["--server", grpc_url, "--no-progress"])
        .arg(file)
        .output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "sales-client failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(seconds)
}

/// p50 and p99 of `GET /sales_statistics` over one keep-alive connection.
fn statistics_latency(
    server: &ServerProcess,
    requests: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut http = KeepAlive::connect(server.http_addr)?;
    for _ in 0..100 {
        http.get("/sales_statistics")?;
    }
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let body = http.get("/sales_statistics")?;
        samples.push(started.elapsed());
        if body.first() != Some(&b'{') {
            bail!("statistics answered something that is not JSON");
        }
    }
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    Ok((at(0.50), at(0.99)))
}

/// Unary `RecordSale` calls with `in_flight` concurrent callers; sales/s.
pub(crate) async fn unary(
    grpc_url: &str,
    in_flight: usize,
    total: u64,
) -> anyhow::Result<f64> {
    // The first `total % in_flight` callers send one sale more, so that
    // exactly `total` are sent.
    let share = |caller: usize| {
        total / in_flight as u64 + u64::from((caller as u64) < total % in_flight as u64)
    };
    let mut callers = Vec::new();
    let channels = in_flight.clamp(1, 4);
    let mut clients = Vec::new();
    for _ in 0..channels {
        clients.push(SalesIngestClient::connect(grpc_url.to_string()).await?);
    }
    let started = Instant::now();
    for caller in 0..in_flight {
        let mut client = clients[caller % channels].clone();
        let sales = share(caller);
        callers.push(tokio::spawn(async move {
            for index in 0..sales {
                let (item, price) = generate::CATALOGUE[(index % 10) as usize];
                let sale = Sale {
                    item: item.into(),
                    quantity: 1 + (index % 7) as i64,
                    price: price.into(),
                    date: format!(
                        "2023-{:02}-{:02}T10:00:00+00:00",
                        1 + index % 12,
                        1 + index % 28
                    ),
                    id: String::new(),
                };
                client
                    .record_sale(RecordSaleRequest { sale: Some(sale) })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for caller in callers {
        caller.await??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn directory_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?
    {
        let entry = entry?;
        let metadata = entry.metadata()?;
        total += if metadata.is_dir() {
            directory_size(&entry.path())?
        } else {
            metadata.len()
        };
    }
    Ok(total)
}

fn write_report(plan: &Plan, results: &Results, total: u64) -> anyhow::Result<()> {
    let mut table = String::from("\n| figure | measured | target |\n|---|---|---|\n");
    for figure in &results.figures {
        table.push_str(&format!(
            "| {} | {} {} | {} |\n",
            figure.label,
            pretty(figure.value),
            figure.unit,
            if figure.target.is_empty() {
                ""
            } else {
                figure.target
            }
        ));
    }
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, table.as_bytes())?;

    let mut json = serde_json::Map::new();
    json.insert("date".into(), chrono::Utc::now().to_rfc3339().into());
    json.insert("sales".into(), total.into());
    for figure in &results.figures {
        json.insert(figure.key.into(), serde_json::Value::from(figure.value));
    }
    json.insert(
        "bulk_vs_target".into(),
        (results.get("bulk_per_s") / 200_000.0).into(),
    );
    if let Some(parent) = plan.json_out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&plan.json_out, serde_json::to_string_pretty(&json)?)?;
    eprintln!("figures written to {}", plan.json_out.display());
    Ok(())
}

fn pretty(value: f64) -> String {
    if value >= 1000.0 {
        let whole = value.round() as u64;
        let digits = whole.to_string();
        let mut out = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}
