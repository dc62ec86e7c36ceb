//! The client binary against a real server, as a user runs it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sales_proto::v1::sales_ingest_server::{SalesIngest, SalesIngestServer};
use sales_proto::v1::{RecordSaleReply, RecordSaleRequest, SaleBatch, StreamSalesReply};
use sales_server::testing::{ServerProcess, TestServer};
use serde_json::Value;
use tempfile::TempDir;

const PAPAYA: &str = r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 4, "item": "papaya", "price": 7.3}"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the client against `server` with `args`, feeding `stdin`.
async fn client(server: &TestServer, args: &[&str], stdin: &str) -> Run {
    let mut all = vec!["--server", &server.grpc_url, "--retry-secs", "1"];
    all.extend_from_slice(args);
    run_client(&all, stdin).await
}

/// Runs the client with exactly `args`, off the async runtime.
async fn run_client(args: &[&str], stdin: &str) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sales-client"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_string();
    let output: Output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("client runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
    }
}

async fn start() -> (TestServer, TempDir) {
    let dir = TempDir::new().unwrap();
    let server = TestServer::start(dir.path().join("db")).await.unwrap();
    (server, dir)
}

fn revenue(statistics: &Value, item: &str) -> String {
    statistics[item]["total_revenue"].to_string()
}

#[tokio::test]
async fn one_sale_on_stdin_is_stored_as_the_seeds_client_did() {
    let (server, _dir) = start().await;

    let run = client(&server, &[], PAPAYA).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("stored: 4 x papaya at 7.3"),
        "{}",
        run.stdout
    );
    let statistics = server.statistics().await.unwrap();
    assert_eq!(revenue(&statistics, "papaya"), "29.2");
    assert_eq!(statistics["papaya"]["sales"], 1);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_and_nothing_is_stored() {
    let (server, _dir) = start().await;
    let cases = [
        (
            "{\"date\": \"2023-01-31T06:03:17+00:00\", \"quantity\": 4",
            "json",
        ),
        (
            r#"{"date": "2023-01-31T06:03:17+00:00", "item": "papaya", "price": 7.3}"#,
            "quantity: is missing",
        ),
        (
            &PAPAYA.replace("\"quantity\": 4", "\"quantity\": 0"),
            "quantity \"0\": must be at least 1",
        ),
        (
            &PAPAYA.replace("7.3", "-7.3"),
            "price \"-7.3\": must not be negative",
        ),
        (
            &PAPAYA.replace("+00:00", ""),
            "date \"2023-01-31T06:03:17\": has no UTC offset",
        ),
    ];

    for (input, message) in cases {
        let run = client(&server, &[], input).await;
        assert_eq!(run.code, 1, "{input}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("<stdin>:1: {message}")),
            "{input}: {}",
            run.stderr
        );
    }
    assert_eq!(server.statistics().await.unwrap(), serde_json::json!({}));
}

#[tokio::test]
async fn files_of_every_shape_stream_and_a_rerun_counts_nothing_twice() {
    let (server, dir) = start().await;
    let ndjson = dir.path().join("sales.ndjson");
    let array = dir.path().join("sales.json");
    let kiwi = PAPAYA.replace("papaya", "kiwi").replace("7.3", "0.35");
    std::fs::write(
        &ndjson,
        format!("{PAPAYA}\n{PAPAYA}\n{}\n", PAPAYA.replace("4", "-1")),
    )
    .unwrap();
    std::fs::write(&array, format!("[\n{kiwi},\n{kiwi}\n]\n")).unwrap();
    let files = [ndjson.to_str().unwrap(), array.to_str().unwrap()];

    let first = client(&server, &files, "").await;
    let second = client(&server, &files, "").await;

    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("sales.ndjson:3: quantity \"-1\": must be at least 1"),
        "{}",
        first.stderr
    );
    assert!(
        first
            .stderr
            .contains("sent 4: 4 stored, 0 duplicates, 1 refused"),
        "{}",
        first.stderr
    );
    assert!(
        second
            .stderr
            .contains("sent 4: 0 stored, 4 duplicates, 1 refused"),
        "{}",
        second.stderr
    );
    let statistics = server.statistics().await.unwrap();
    assert_eq!(revenue(&statistics, "papaya"), "58.4");
    assert_eq!(revenue(&statistics, "kiwi"), "2.8");
}

#[tokio::test]
async fn a_seed_directory_gets_the_same_ids_as_the_servers_import() {
    let (server, _dir) = start().await;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/2023/1");

    let first = client(&server, &[data.to_str().unwrap()], "").await;
    let again = client(&server, &[data.join("10").to_str().unwrap()], "").await;

    assert_eq!(first.code, 0, "{}", first.stderr);
    let sent: u64 = first
        .stderr
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .parse()
        .unwrap();
    assert!(sent > 700, "{}", first.stderr);
    assert!(again.stderr.contains(" 0 stored,"), "{}", again.stderr);
    let statistics = server.statistics().await.unwrap();
    let total: u64 = statistics
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["sales"].as_u64().unwrap())
        .sum();
    assert_eq!(total, sent);
}

#[tokio::test]
async fn an_unreachable_server_exits_3_with_advice() {
    let (server, _dir) = start().await;
    let url = server.grpc_url.clone();
    server.stop().await.unwrap();

    let run = run_client(&["--server", &url, "--retry-secs", "1"], PAPAYA).await;

    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the server")
            && run.stderr.contains("is it running?"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 not confirmed stored"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_file_that_grows_keeps_the_ids_of_its_first_sales() {
    let (server, dir) = start().await;
    let tills = dir.path().join("tills");
    std::fs::create_dir(&tills).unwrap();
    let file = tills.join("till-1.ndjson");
    std::fs::write(&file, format!("{PAPAYA}\n")).unwrap();
    let first = client(&server, &[tills.to_str().unwrap()], "").await;
    std::fs::write(
        &file,
        format!("{PAPAYA}\n{}\n", PAPAYA.replace("papaya", "kiwi")),
    )
    .unwrap();

    let second = client(&server, &[tills.to_str().unwrap()], "").await;

    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        second.stderr.contains("sent 2: 1 stored, 1 duplicates"),
        "{}",
        second.stderr
    );
    let statistics = server.statistics().await.unwrap();
    assert_eq!(
        (
            statistics["papaya"]["sales"].clone(),
            statistics["kiwi"]["sales"].clone()
        ),
        (1.into(), 1.into())
    );
}

#[tokio::test]
async fn an_id_prefix_keeps_two_sources_with_the_same_file_names_apart() {
    let (server, dir) = start().await;
    for (shop, item) in [("shop-a", "papaya"), ("shop-b", "kiwi")] {
        let day = dir.path().join(shop).join("2023/1/10");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("00001.json"), PAPAYA.replace("papaya", item)).unwrap();
    }
    let shop_a = dir.path().join("shop-a");
    let shop_b = dir.path().join("shop-b");

    let a = client(&server, &[shop_a.to_str().unwrap()], "").await;
    let clash = client(&server, &[shop_b.to_str().unwrap()], "").await;
    let b = client(
        &server,
        &["--id-prefix", "shop-b/", shop_b.to_str().unwrap()],
        "",
    )
    .await;

    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(clash.code, 1, "{}", clash.stderr);
    assert!(
        clash
            .stderr
            .contains("already stored with different content"),
        "{}",
        clash.stderr
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    let statistics = server.statistics().await.unwrap();
    assert_eq!(revenue(&statistics, "kiwi"), "29.2");
}

#[tokio::test]
async fn empty_input_is_refused_not_silently_accepted() {
    let (server, dir) = start().await;
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "").unwrap();

    let stdin = client(&server, &[], "").await;
    let file = client(&server, &[empty.to_str().unwrap()], "\n").await;

    assert_eq!(stdin.code, 1, "{}", stdin.stderr);
    assert!(
        stdin.stderr.contains("<stdin>:1: json: no sale found"),
        "{}",
        stdin.stderr
    );
    assert_eq!(file.code, 1, "{}", file.stderr);
    assert!(
        file.stderr.contains("empty.json:1: json: no sale found"),
        "{}",
        file.stderr
    );
}

#[tokio::test]
async fn the_server_may_be_given_as_host_and_port() {
    let (server, _dir) = start().await;
    let bare = server.grpc_url.trim_start_matches("http://").to_string();

    let run = run_client(&["--server", &bare], PAPAYA).await;

    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The server binary beside this test's client binary, built if missing.
fn server_binary() -> std::path::PathBuf {
    let binary =
        Path::new(env!("CARGO_BIN_EXE_sales-client")).with_file_name("sales-server");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "sales-server"])
            .status()
            .unwrap();
        assert!(status.success(), "building sales-server failed");
    }
    binary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_load_is_retried_and_nothing_counts_twice() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("load.ndjson");
    let mut text = String::new();
    for n in 0..150_000u64 {
        text.push_str(&format!(
            "{{\"date\": \"2023-{:02}-{:02}T{:02}:{:02}:00+00:00\", \"quantity\": {}, \"item\": \"item-{}\", \"price\": {}.{:02}}}\n",
            1 + n % 12, 1 + n % 28, n % 24, n % 60, 1 + n % 9, n % 7, n % 20, n % 100
        ));
    }
    std::fs::write(&file, text).unwrap();
    let (binary, db, log) = (
        server_binary(),
        dir.path().join("db"),
        dir.path().join("server.log"),
    );
    let server = ServerProcess::start(&binary, &db, &log).unwrap();
    let (grpc_port, http_port) = (server.grpc_port(), server.http_addr.port());

    let mut load = Command::new(env!("CARGO_BIN_EXE_sales-client"))
        .args([
            "--server",
            &server.grpc_url,
            "--retry-secs",
            "60",
            "--batch-size",
            "1000",
        ])
        .arg(&file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill as soon as the first sales are stored: the load is then
    // certainly still running, however fast this machine is.
    loop {
        let (_, body) = sales_server::testing::http_request(
            server.http_addr,
            "GET",
            "/sales_statistics",
        )
        .unwrap();
        if body.contains("item-") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    server.kill().unwrap();
    let killed_mid_load = load.try_wait().unwrap().is_none();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let server =
        ServerProcess::start_on(&binary, &db, &log, grpc_port, http_port).unwrap();
    let output = tokio::task::spawn_blocking(move || load.wait_with_output().unwrap())
        .await
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        killed_mid_load,
        "the load finished before the kill: {stderr}"
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("sent 150000:"), "{stderr}");
    let statistics: Value = serde_json::from_str(
        &sales_server::testing::http_request(
            server.http_addr,
            "GET",
            "/sales_statistics",
        )
        .unwrap()
        .1,
    )
    .unwrap();
    let sales: u64 = statistics
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["sales"].as_u64().unwrap())
        .sum();
    let quantity: u64 = statistics
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["total_quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(sales, 150_000);
    assert_eq!(quantity, (0..150_000u64).map(|n| 1 + n % 9).sum::<u64>());
    // Line n sells 1 + n % 9 of item-(n % 7) at (n % 20).(n % 100).
    let cents: u64 = (0..150_000u64)
        .filter(|n| n % 7 == 0)
        .map(|n| (1 + n % 9) * ((n % 20) * 100 + n % 100))
        .sum();
    let exact = format!("{}.{:02}", cents / 100, cents % 100);
    let exact = exact.trim_end_matches('0');
    let exact = if exact.ends_with('.') {
        format!("{exact}0")
    } else {
        exact.to_string()
    };
    assert_eq!(revenue(&statistics, "item-0"), exact);
    server.stop().unwrap();
}

#[tokio::test]
async fn long_names_and_ids_are_split_into_batches_under_the_message_limit() {
    let (server, dir) = start().await;
    let file = dir.path().join("fat.ndjson");
    let item = "\u{1F96D}".repeat(200);
    let mut text = String::new();
    for n in 0..5_000 {
        let id = format!("{n:0>200}");
        text.push_str(&format!(
            "{{\"date\": \"2023-05-01T10:00:00Z\", \"quantity\": 1, \"item\": \"{item}\", \"price\": 2, \"id\": \"{id}\"}}\n"
        ));
    }
    std::fs::write(&file, text).unwrap();

    let run = client(&server, &[file.to_str().unwrap()], "").await;

    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("sent 5000: 5000 stored"),
        "{}",
        run.stderr
    );
    assert_eq!(
        revenue(&server.statistics().await.unwrap(), &item),
        "10000.0"
    );
}

/// A server that takes every call and fails it as a server with a full
/// disk does: `INTERNAL`, after reading what was sent.
struct FailingServer;

#[tonic::async_trait]
impl SalesIngest for FailingServer {
    async fn record_sale(
        &self,
        _request: tonic::Request<RecordSaleRequest>,
    ) -> Result<tonic::Response<RecordSaleReply>, tonic::Status> {
        Err(tonic::Status::internal("writing to the disk failed"))
    }

    async fn stream_sales(
        &self,
        request: tonic::Request<tonic::Streaming<SaleBatch>>,
    ) -> Result<tonic::Response<StreamSalesReply>, tonic::Status> {
        let mut batches = request.into_inner();
        while batches.message().await?.is_some() {}
        // As the real server does: two sales were stored before the failure.
        let mut status = tonic::Status::internal("writing to the disk failed");
        status
            .metadata_mut()
            .insert(sales_proto::stream_failure::STORED, 2u64.into());
        Err(status)
    }
}

/// A server that takes every call and never answers, as a frozen one.
struct SilentServer;

#[tonic::async_trait]
impl SalesIngest for SilentServer {
    async fn record_sale(
        &self,
        _request: tonic::Request<RecordSaleRequest>,
    ) -> Result<tonic::Response<RecordSaleReply>, tonic::Status> {
        std::future::pending().await
    }

    async fn stream_sales(
        &self,
        _request: tonic::Request<tonic::Streaming<SaleBatch>>,
    ) -> Result<tonic::Response<StreamSalesReply>, tonic::Status> {
        std::future::pending().await
    }
}

async fn start_mock(service: impl SalesIngest) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SalesIngestServer::new(service))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    url
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_on() {
    let url = start_mock(SilentServer).await;
    let three = format!("{PAPAYA}\n{PAPAYA}\n{PAPAYA}\n");

    for (input, unconfirmed) in [(PAPAYA.to_string(), 1), (three, 3)] {
        let args = ["--server", &url, "--retry-secs", "1", "--timeout-secs", "1"];
        let run = run_client(&args, &input).await;

        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr.contains("cannot reach the server"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr
                .contains(&format!("{unconfirmed} not confirmed stored")),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn a_failing_server_is_told_apart_from_an_unreachable_one() {
    let url = start_mock(FailingServer).await;
    let three = format!("{PAPAYA}\n{PAPAYA}\n{PAPAYA}\n");
    let one_unconfirmed =
        "sent 0: 0 stored, 0 duplicates, 0 refused, 1 not confirmed stored";
    let two_stored = "sent 2: 2 stored, 0 duplicates, 0 refused, 1 not confirmed stored";

    for (input, summary) in [(PAPAYA.to_string(), one_unconfirmed), (three, two_stored)] {
        let run = run_client(&["--server", &url, "--retry-secs", "1"], &input).await;

        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("failed to store sales: writing to the disk failed"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("its log says why"), "{}", run.stderr);
        assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
        assert!(run.stderr.contains(summary), "{}", run.stderr);
    }
}

#[tokio::test]
async fn the_http_port_given_by_mistake_is_named_as_such() {
    let (server, _dir) = start().await;
    let http = format!("http://{}", server.http_addr);

    let run = run_client(&["--server", &http, "--retry-secs", "1"], PAPAYA).await;

    // Refused as not HTTP/2 at once or, depending on timing, seen as a
    // connection that went away: either way the port is questioned.
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("that its gRPC port (50051 unless changed"),
        "{}",
        run.stderr
    );
    assert_eq!(server.statistics().await.unwrap(), serde_json::json!({}));
}

#[tokio::test]
async fn a_one_sale_file_sent_twice_counts_once_but_stdin_counts_each_time() {
    let (server, dir) = start().await;
    let file = dir.path().join("one.json");
    std::fs::write(&file, PAPAYA).unwrap();
    let file = file.to_str().unwrap();

    let first = client(&server, &[file], "").await;
    let second = client(&server, &[file], "").await;
    assert_eq!((first.code, second.code), (0, 0), "{}", second.stderr);
    assert!(first.stdout.starts_with("stored:"), "{}", first.stdout);
    assert!(
        second.stdout.starts_with("already stored"),
        "{}",
        second.stdout
    );

    for _ in 0..2 {
        let piped = client(&server, &[], PAPAYA).await;
        assert!(piped.stdout.starts_with("stored:"), "{}", piped.stdout);
    }
    let statistics = server.statistics().await.unwrap();
    assert_eq!(statistics["papaya"]["sales"], 3);
}
