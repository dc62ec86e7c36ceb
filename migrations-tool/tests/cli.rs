//! The migrations tool, run as an operator would.

use std::path::Path;
use std::process::Command;

use sales_storage::{Item, Store, StoreOptions};
use tempfile::TempDir;

struct Run {
    code: i32,
    stdout: String,
}

fn tool(db: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_migrations-tool"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    }
}

fn revenue_of(db: &Path, item: &str) -> (u64, String) {
    let store = Store::open(db, &StoreOptions::default()).unwrap();
    let statistics = store.statistics();
    let total = statistics
        .read()
        .unwrap()
        .item_total(&Item::parse(item).unwrap());
    (total.sales, total.revenue.to_string())
}

#[test]
fn importing_a_directory_twice_counts_every_sale_once() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");

    let first = tool(&db, &["import", data.to_str().unwrap()]);
    let second = tool(&db, &["import", data.to_str().unwrap()]);
    let verify = tool(&db, &["verify"]);

    assert_eq!(first.code, 0, "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("10000 sales stored, 0 already stored"),
        "{}",
        first.stdout
    );
    assert!(
        second
            .stdout
            .contains("0 sales stored, 10000 already stored"),
        "{}",
        second.stdout
    );
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    assert!(
        verify.stdout.contains("10000 sales rescanned"),
        "{}",
        verify.stdout
    );
}

#[test]
fn an_import_directory_with_junk_refuses_it_by_file_and_keeps_the_rest() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let day = data.join("2023/1/10");
    std::fs::create_dir_all(&day).unwrap();
    let sale = r#"{"date": "2023-01-10T06:03:17+00:00", "quantity": 2, "item": "papaya", "price": 7.3}"#;
    std::fs::write(day.join("00001.json"), sale).unwrap();
    std::fs::write(day.join("00002.json"), "").unwrap();
    std::fs::write(day.join("00003.json"), "not json").unwrap();
    std::fs::write(
        day.join("00004.json"),
        format!("\u{feff}{}\r\n", sale.replace('2', "3")),
    )
    .unwrap();
    std::fs::write(data.join("README.txt"), "notes").unwrap();
    // Opening a FIFO would wait for a writer forever.
    let fifo = std::process::Command::new("mkfifo")
        .arg(day.join("00005.json"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let db = dir.path().join("db");

    let run = tool(&db, &["import", data.to_str().unwrap()]);

    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.contains("00002.json:1: json: the file is empty"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("00003.json:1: json: must be an object"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("skipped 2 entries that are not regular .json or .ndjson files"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 sales stored"), "{}", run.stdout);
}

#[test]
fn legacy_import_recovers_float_prices_and_is_resumable() {
    let dir = TempDir::new().unwrap();
    let legacy = dir.path().join("sales_data.json");
    let line = |quantity: u32, price: f32| {
        format!(
            r#"{{"item": "papaya", "quantity": {quantity}, "price": {}, "date": "2023-01-31T06:03:17+00:00"}}"#,
            f64::from(price)
        )
    };
    std::fs::write(
        &legacy,
        format!("{}\n{}\n{}\n", line(4, 7.3), line(4, 7.3), line(1, 0.1)),
    )
    .unwrap();
    let db = dir.path().join("db");

    let first = tool(&db, &["import-legacy", legacy.to_str().unwrap()]);
    let again = tool(&db, &["import-legacy", legacy.to_str().unwrap()]);

    assert_eq!(first.code, 0, "{}", first.stdout);
    assert!(
        first.stdout.contains("3 prices recovered"),
        "{}",
        first.stdout
    );
    assert!(
        again.stdout.contains("0 sales stored, 3 already stored"),
        "{}",
        again.stdout
    );
    assert_eq!(revenue_of(&db, "papaya"), (3, "58.5".into()));
}

#[test]
fn verify_finds_tampered_totals_and_rebuild_mends_them() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/2023/3");
    tool(&db, &["import", data.to_str().unwrap()]);
    {
        // Tamper: rewrite one total behind the store's back.
        let raw = sled::open(&db).unwrap();
        let key = raw.scan_prefix(b"A").next().unwrap().unwrap().0;
        raw.insert(key, vec![1, 1, 1, 1]).unwrap();
        raw.flush().unwrap();
    }

    let broken = tool(&db, &["verify"]);
    let rebuild = tool(&db, &["rebuild"]);
    let fixed = tool(&db, &["verify"]);

    assert_eq!(broken.code, 1, "{}", broken.stdout);
    assert!(
        broken
            .stdout
            .contains("stored totals say 1 sales / 1 units / revenue 0.0001"),
        "{}",
        broken.stdout
    );
    assert!(broken.stdout.contains("1 differences"), "{}", broken.stdout);
    assert_eq!(rebuild.code, 0, "{}", rebuild.stdout);
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
}

#[test]
fn migrate_is_idempotent_and_info_reports_the_layout() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/2023/2/14");
    tool(&db, &["import", data.to_str().unwrap()]);

    let first = tool(&db, &["migrate"]);
    let second = tool(&db, &["migrate"]);
    let info = tool(&db, &["info"]);

    assert!(first.stdout.contains("already current"), "{}", first.stdout);
    assert!(
        second.stdout.contains("already current"),
        "{}",
        second.stdout
    );
    assert!(info.stdout.contains("layout version: 1"), "{}", info.stdout);
    assert!(
        info.stdout.contains("sales:          27"),
        "{}",
        info.stdout
    );
}

#[test]
fn commands_other_than_import_refuse_a_missing_database() {
    let dir = TempDir::new().unwrap();
    let typo = dir.path().join("dbb");

    for command in ["info", "verify", "rebuild", "migrate", "repair"] {
        let run = tool(&typo, &[command]);
        assert_eq!(run.code, 2, "{command}: {}", run.stdout);
        assert!(
            run.stdout.contains("no database at"),
            "{command}: {}",
            run.stdout
        );
    }
    assert!(!typo.exists());
}

#[test]
fn repair_recovers_a_database_whose_snapshot_is_damaged() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/2023/4");
    tool(&db, &["import", data.to_str().unwrap()]);
    let before = revenue_of(&db, "papaya");
    let snapshot = std::fs::read_dir(&db)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .expect("sled wrote a snapshot");
    std::fs::File::options()
        .write(true)
        .open(&snapshot)
        .unwrap()
        .set_len(100)
        .unwrap();

    let refused = tool(&db, &["info"]);
    let repair = tool(&db, &["repair"]);
    let verify = tool(&db, &["verify"]);

    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.stdout.contains("is damaged"), "{}", refused.stdout);
    assert!(refused.stdout.contains("repair"), "{}", refused.stdout);
    assert_eq!(repair.code, 0, "{}", repair.stdout);
    assert!(
        repair.stdout.contains("copied the damaged database to"),
        "{}",
        repair.stdout
    );
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    assert_eq!(revenue_of(&db, "papaya"), before);
}

#[test]
fn a_database_whose_log_is_unreadable_is_refused_not_treated_as_new() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/2023/2/14");
    tool(&db, &["import", data.to_str().unwrap()]);
    let mut log = std::fs::read(db.join("db")).unwrap();
    log[..64].iter_mut().for_each(|byte| *byte ^= 0xFF);
    std::fs::write(db.join("db"), log).unwrap();

    let info = tool(&db, &["info"]);
    let repair = tool(&db, &["repair"]);

    assert_eq!(info.code, 2, "{}", info.stdout);
    assert!(info.stdout.contains("is damaged"), "{}", info.stdout);
    assert_ne!(repair.code, 0, "{}", repair.stdout);
    assert!(repair.stdout.contains("restore"), "{}", repair.stdout);
}

#[test]
fn an_edited_file_is_refused_by_file_and_line_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("db");
    let data = dir.path().join("exports");
    std::fs::create_dir(&data).unwrap();
    let file = data.join("till-1.ndjson");
    let papaya = r#"{"date": "2023-01-31T06:03:17+00:00", "quantity": 4, "item": "papaya", "price": 7.3}"#;
    std::fs::write(&file, format!("{papaya}\n{papaya}\n")).unwrap();
    let first = tool(&db, &["import", data.to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.stdout);

    // The second line now says 5 papayas: same id, other content.
    let edited = papaya.replace("\"quantity\": 4", "\"quantity\": 5");
    std::fs::write(&file, format!("{papaya}\n{edited}\n")).unwrap();
    let second = tool(&db, &["import", data.to_str().unwrap()]);

    assert_eq!(second.code, 1, "{}", second.stdout);
    let expected = format!(
        "refused {}:2: id: is already stored with different content",
        file.display()
    );
    assert!(second.stdout.contains(&expected), "{}", second.stdout);
    assert!(
        second
            .stdout
            .contains("0 sales stored, 1 already stored, 1 conflicting ids"),
        "{}",
        second.stdout
    );
    assert_eq!(revenue_of(&db, "papaya"), (2, "58.4".to_string()));
}
