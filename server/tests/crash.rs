//! Crash safety: the real server binary is killed with SIGKILL at random
//! moments while several clients write, and after every kill the database
//! must open with every acknowledged sale present, no sale that was never
//! sent, every batch whole or absent, and totals equal to a rescan.
//!
//! CI runs a few cycles; `CRASH_CYCLES=100 cargo test --release -p
//! sales-server --test crash -- --nocapture` runs as many as asked.
//! `CRASH_SEED` replays a run (the seed is printed).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sales_proto::v1::sales_ingest_client::SalesIngestClient;
use sales_proto::v1::{RecordSaleRequest, Sale, SaleBatch};
use sales_server::testing::ServerProcess;
use sales_storage::{Store, StoreOptions};

/// What the writers sent and what the server acknowledged, by sale id.
#[derive(Default)]
struct Ledger {
    sent: HashMap<String, Sale>,
    acknowledged: HashSet<String>,
    /// Sale ids of each stream batch, which must be all present or none.
    batches: Vec<Vec<String>>,
}

/// A small, seedable generator (xorshift64*), so a failing run can be
/// replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn sale(id: String, n: u64) -> Sale {
    let items = ["papaya", "kiwi", "mango", "caf\u{e9}"];
    Sale {
        item: items[(n % 4) as usize].into(),
        quantity: 1 + (n % 9) as i64,
        price: format!("{}.{:02}", n % 50, n % 100),
        date: format!(
            "2023-{:02}-{:02}T{:02}:15:00-05:00",
            1 + n % 12,
            1 + n % 28,
            n % 24
        ),
        id,
    }
}

/// One writer sending unary sales until the server dies.
async fn unary_writer(url: String, cycle: u64, worker: u64, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut client) = SalesIngestClient::connect(url).await else {
        return;
    };
    for n in 0.. {
        let id = format!("c{cycle}-u{worker}-{n}");
        let sale = sale(id.clone(), n + worker * 1_000);
        ledger.lock().unwrap().sent.insert(id.clone(), sale.clone());
        let request = RecordSaleRequest { sale: Some(sale) };
        if client.record_sale(request).await.is_err() {
            return;
        }
        ledger.lock().unwrap().acknowledged.insert(id);
    }
}

/// One writer streaming batches (with batch ids) until the server dies.
async fn stream_writer(url: String, cycle: u64, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut client) = SalesIngestClient::connect(url).await else {
        return;
    };
    for stream in 0.. {
        let mut batches = Vec::new();
        for b in 0..4 {
            let sales: Vec<Sale> = (0..250)
                .map(|n| sale(format!("c{cycle}-s{stream}-{b}-{n}"), n + b * 7))
                .collect();
            let mut ledger = ledger.lock().unwrap();
            ledger
                .batches
                .push(sales.iter().map(|s| s.id.clone()).collect());
            for sale in &sales {
                ledger.sent.insert(sale.id.clone(), sale.clone());
            }
            batches.push(SaleBatch {
                batch_id: format!("c{cycle}-s{stream}-{b}"),
                sales,
            });
        }
        let ids: Vec<String> = batches
            .iter()
            .flat_map(|b| b.sales.iter().map(|s| s.id.clone()))
            .collect();
        match client.stream_sales(tokio_stream::iter(batches)).await {
            Ok(reply) if reply.get_ref().stored == ids.len() as u64 => {
                ledger.lock().unwrap().acknowledged.extend(ids);
            }
            _ => return,
        }
    }
}

/// Opens the killed server's database and checks it against the ledger.
fn check(db: &Path, ledger: &Ledger) -> (usize, usize) {
    let store = Store::open(db, &StoreOptions::default())
        .expect("the database opens after SIGKILL");
    let mut stored: HashMap<String, usize> = HashMap::new();
    store
        .for_each_sale(|new| {
            let id = new
                .id
                .expect("every test sale has an id")
                .as_str()
                .to_string();
            let sent = ledger
                .sent
                .get(&id)
                .unwrap_or_else(|| panic!("phantom sale {id}"));
            assert_eq!(new.sale.item.as_str(), sent.item, "{id}");
            assert_eq!(i64::from(new.sale.quantity.get()), sent.quantity, "{id}");
            assert_eq!(
                new.sale.price,
                sales_storage::Price::parse(&sent.price).unwrap(),
                "{id}"
            );
            assert_eq!(
                new.sale.date,
                sales_storage::SaleDate::parse(&sent.date).unwrap(),
                "{id}"
            );
            *stored.entry(id).or_default() += 1;
        })
        .unwrap();

    for id in &ledger.acknowledged {
        assert_eq!(
            stored.get(id),
            Some(&1),
            "acknowledged sale {id} lost or doubled"
        );
    }
    assert!(
        stored.values().all(|count| *count == 1),
        "a sale is stored twice"
    );
    for batch in &ledger.batches {
        let present = batch.iter().filter(|id| stored.contains_key(*id)).count();
        assert!(
            present == 0 || present == batch.len(),
            "a batch is half stored ({present}/{})",
            batch.len()
        );
    }
    let (folded, _) = store.fold_sales().unwrap();
    assert_eq!(
        store.stored_totals().unwrap(),
        folded,
        "totals differ from a rescan"
    );
    (stored.len(), ledger.acknowledged.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_sales_survive_sigkill_and_totals_stay_exact() {
    let cycles: u64 = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id()) | 1
        });
    eprintln!("crash test: {cycles} cycles, CRASH_SEED={seed}");
    let mut random = Random(seed);
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("db");
    let log = dir.path().join("server.log");
    let binary = Path::new(env!("CARGO_BIN_EXE_sales-server"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));

    for cycle in 0..cycles {
        let server = ServerProcess::start(binary, &db, &log).expect("server starts");
        let mut writers = Vec::new();
        for worker in 0..3 {
            writers.push(tokio::spawn(unary_writer(
                server.grpc_url.clone(),
                cycle,
                worker,
                Arc::clone(&ledger),
            )));
        }
        writers.push(tokio::spawn(stream_writer(
            server.grpc_url.clone(),
            cycle,
            Arc::clone(&ledger),
        )));

        tokio::time::sleep(Duration::from_millis(50 + random.below(400))).await;
        server.kill().expect("killed");
        for writer in writers {
            writer.await.unwrap();
        }

        let (stored, acknowledged) = check(&db, &ledger.lock().unwrap());
        eprintln!("cycle {cycle}: {stored} sales stored, {acknowledged} acknowledged, all checks passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_bulk_load_exits_0_and_keeps_every_acknowledged_sale() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("db");
    let binary = Path::new(env!("CARGO_BIN_EXE_sales-server"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let server =
        ServerProcess::start(binary, &db, &dir.path().join("server.log")).unwrap();
    let mut writers = vec![tokio::spawn(stream_writer(
        server.grpc_url.clone(),
        0,
        Arc::clone(&ledger),
    ))];
    for worker in 0..2 {
        writers.push(tokio::spawn(unary_writer(
            server.grpc_url.clone(),
            0,
            worker,
            Arc::clone(&ledger),
        )));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let took = tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
        .expect("exit 0 on SIGTERM");
    for writer in writers {
        writer.await.unwrap();
    }

    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    let (stored, acknowledged) = check(&db, &ledger.lock().unwrap());
    assert!(
        acknowledged > 0 && stored >= acknowledged,
        "{stored} stored, {acknowledged} acknowledged"
    );
}
