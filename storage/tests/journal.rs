//! Commits are answered once they are in the commit journal, before sled
//! has applied them. These tests take a copy of the database directory at
//! that moment, as a crash would leave it, and check that opening the
//! copy brings back every such commit, whole and counted once.

use std::path::Path;

use sales_storage::{
    Item, NewSale, Outcome, Sale, SaleId, Store, StoreOptions, WriteRequest,
};

fn options(fsync: bool) -> StoreOptions {
    StoreOptions {
        cache_bytes: 1024 * 1024,
        fsync,
        ..StoreOptions::default()
    }
}

fn sale(item: &str, quantity: i64, price: &str, id: &str) -> NewSale {
    NewSale {
        sale: Sale::from_fields(item, quantity, price, "2023-01-31T23:30:00-05:00")
            .unwrap(),
        id: SaleId::parse_optional("id", id).unwrap(),
    }
}

/// Copies the files of a database as they are now: what a process killed
/// at this moment would leave behind.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn journaled_commits_come_back_after_a_crash(fsync: bool) {
    let dir = tempfile::TempDir::new().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let mut store = Store::open(&live, &options(fsync)).unwrap();
    store
        .commit(&[WriteRequest::sales(vec![sale("kiwi", 2, "1.25", "a")])])
        .unwrap();
    let outcomes = store
        .commit_to_journal(&[
            WriteRequest::sales(vec![sale("kiwi", 3, "0.10", "b")]),
            WriteRequest::sales(vec![sale("papaya", 1, "7.30", "")]),
        ])
        .unwrap();
    assert_eq!(outcomes, vec![vec![Outcome::Stored], vec![Outcome::Stored]]);
    copy_dir(&live, &crashed);
    drop(store);

    let mut reopened = Store::open(&crashed, &options(fsync)).unwrap();

    let (folded, count) = reopened.fold_sales().unwrap();
    assert_eq!(count, 3);
    assert_eq!(reopened.stored_totals().unwrap(), folded);
    let kiwi = Item::parse("kiwi").unwrap();
    let january = sale("kiwi", 1, "1", "").sale.date.month();
    assert_eq!(january.to_string(), "2023-01");
    let totals = folded.get(&kiwi, january).copied().unwrap();
    assert_eq!((totals.sales, totals.quantity), (2, 5));
    assert_eq!(totals.revenue.to_json_number(), "2.8");
    // The replayed commit's id is known: sending it again changes nothing.
    let again = reopened
        .commit(&[WriteRequest::sales(vec![sale("kiwi", 3, "0.10", "b")])])
        .unwrap();
    assert_eq!(again, vec![vec![Outcome::Duplicate]]);
    assert_eq!(reopened.fold_sales().unwrap().1, 3);
}

#[test]
fn journaled_commits_come_back_after_a_crash_by_default() {
    journaled_commits_come_back_after_a_crash(false);
}

#[test]
fn journaled_commits_come_back_after_a_crash_with_fsync() {
    journaled_commits_come_back_after_a_crash(true);
}

#[test]
fn ids_of_commits_not_yet_in_sled_are_already_taken() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = Store::open(dir.path(), &options(false)).unwrap();
    store
        .commit_to_journal(&[WriteRequest::sales(vec![sale("kiwi", 1, "2", "x")])])
        .unwrap();

    let outcomes = store
        .commit_to_journal(&[
            WriteRequest::sales(vec![sale("kiwi", 1, "2", "x")]),
            WriteRequest::sales(vec![sale("kiwi", 9, "2", "x")]),
        ])
        .unwrap();

    assert_eq!(
        outcomes,
        vec![vec![Outcome::Duplicate], vec![Outcome::Conflict]]
    );
    assert_eq!(store.fold_sales().unwrap().1, 0, "not applied to sled yet");
    store.apply_pending().unwrap();
    assert_eq!(store.fold_sales().unwrap().1, 1);
}

#[test]
fn after_a_clean_close_the_journal_holds_nothing_sled_lacks() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = Store::open(dir.path(), &options(false)).unwrap();
    store
        .commit_to_journal(&[WriteRequest::sales(vec![sale("kiwi", 1, "2", "")])])
        .unwrap();

    store.flush().unwrap();
    drop(store);
    // Even losing the journal now loses nothing.
    std::fs::remove_file(dir.path().join("commits.journal")).unwrap();

    let reopened = Store::open(dir.path(), &options(false)).unwrap();
    assert_eq!(reopened.fold_sales().unwrap().1, 1);
    assert!(reopened.recovery_notes().is_empty());
}

#[test]
fn a_commit_wider_than_one_sled_batch_comes_back_whole() {
    let dir = tempfile::TempDir::new().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let mut store = Store::open(&live, &options(false)).unwrap();
    // 1,500 items: 1,500 sale groups and 1,500 totals, far more keys than
    // sled is given in one batch.
    let sales: Vec<NewSale> = (0..1_500)
        .map(|n| sale(&format!("item {n}"), 1 + n % 3, "0.25", &format!("id-{n}")))
        .collect();
    store.commit(&[WriteRequest::sales(sales.clone())]).unwrap();
    let again = store
        .commit_to_journal(&[WriteRequest::sales(sales.clone())])
        .unwrap();
    assert!(again[0]
        .iter()
        .all(|outcome| *outcome == Outcome::Duplicate));
    let more: Vec<NewSale> = (0..1_500)
        .map(|n| sale(&format!("item {n}"), 2, "1", ""))
        .collect();
    store
        .commit_to_journal(&[WriteRequest::sales(more)])
        .unwrap();
    copy_dir(&live, &crashed);
    drop(store);

    let reopened = Store::open(&crashed, &options(false)).unwrap();

    let (folded, count) = reopened.fold_sales().unwrap();
    assert_eq!(count, 3_000);
    assert_eq!(reopened.stored_totals().unwrap(), folded);
    let grand = folded.grand_total();
    // 1,500 sales of 1, 2 or 3 (500 each) at 0.25, the same again with
    // the same ids (duplicates), then 1,500 sales of 2 at 1.
    assert_eq!((grand.sales, grand.quantity), (3_000, 3_000 + 3_000));
    assert_eq!(grand.revenue.to_json_number(), "3750.0");
}

#[test]
fn a_journal_damaged_in_the_middle_is_refused_and_repair_keeps_what_it_can() {
    let dir = tempfile::TempDir::new().unwrap();
    let live = dir.path().join("live");
    let crashed = dir.path().join("crashed");
    let mut store = Store::open(&live, &options(false)).unwrap();
    for quantity in 1..=3 {
        store
            .commit_to_journal(&[WriteRequest::sales(vec![sale(
                "kiwi", quantity, "1", "",
            )])])
            .unwrap();
    }
    copy_dir(&live, &crashed);
    drop(store);
    // Damage the second record: the third follows it.
    let journal = crashed.join("commits.journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let second = bytes
        .windows(4)
        .enumerate()
        .skip(8)
        .find(|(_, w)| *w == bytes[..4].to_vec().as_slice())
        .map(|(at, _)| at)
        .unwrap();
    bytes[second + 20] ^= 0xff;
    std::fs::write(&journal, bytes).unwrap();

    let error = Store::open(&crashed, &options(false))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("lacks commit 1"), "{error}");
    assert!(error.to_string().contains("repair"), "{error}");

    let recovering = StoreOptions {
        recover: true,
        ..options(false)
    };
    let repaired = Store::open(&crashed, &recovering).unwrap();
    assert_eq!(repaired.recovery_notes().len(), 1);
    let (folded, count) = repaired.fold_sales().unwrap();
    assert_eq!(count, 1, "only the commit before the damage");
    assert_eq!(repaired.stored_totals().unwrap(), folded);
    drop(repaired);
    // Repaired for good: it opens normally afterwards.
    assert!(Store::open(&crashed, &options(false)).is_ok());
}

#[test]
fn a_journal_lost_after_a_crash_is_refused_but_not_after_a_clean_close() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = Store::open(dir.path(), &options(false)).unwrap();
    store
        .commit(&[WriteRequest::sales(vec![sale("kiwi", 1, "2", "")])])
        .unwrap();
    drop(store);
    let journal = dir.path().join("commits.journal");
    std::fs::remove_file(&journal).unwrap();

    let error = Store::open(dir.path(), &options(false))
        .err()
        .expect("refused");
    assert!(error.to_string().contains("journal is missing"), "{error}");

    let recovering = StoreOptions {
        recover: true,
        ..options(false)
    };
    let mut store = Store::open(dir.path(), &recovering).unwrap();
    assert_eq!(store.recovery_notes().len(), 1);
    store.flush().unwrap();
    drop(store);
    std::fs::remove_file(&journal).unwrap();
    let reopened = Store::open(dir.path(), &options(false)).unwrap();
    assert_eq!(reopened.fold_sales().unwrap().1, 1);
}

#[test]
fn a_journal_from_another_database_is_not_applied() {
    let dir = tempfile::TempDir::new().unwrap();
    let (one, other) = (dir.path().join("one"), dir.path().join("other"));
    let mut first = Store::open(&one, &options(false)).unwrap();
    first
        .commit_to_journal(&[WriteRequest::sales(vec![sale("kiwi", 5, "1", "")])])
        .unwrap();
    let mut second = Store::open(&other, &options(false)).unwrap();
    second
        .commit(&[WriteRequest::sales(vec![sale("papaya", 1, "7.3", "")])])
        .unwrap();
    second.flush().unwrap();
    drop(second);
    std::fs::copy(one.join("commits.journal"), other.join("commits.journal")).unwrap();
    drop(first);

    let reopened = Store::open(&other, &options(false)).unwrap();

    let (folded, count) = reopened.fold_sales().unwrap();
    assert_eq!(count, 1);
    assert!(folded.has_item(&Item::parse("papaya").unwrap()));
    assert!(!folded.has_item(&Item::parse("kiwi").unwrap()));
}

/// A batch sent again gets the answer it got the first time, sale by
/// sale: a conflict inside it stays a conflict, never becomes a duplicate.
/// Checked within one commit, from the journal before sled has it, and
/// from sled after reopening.
#[test]
fn a_batch_sent_again_keeps_its_conflicts() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("db");
    let mut store = Store::open(&db, &options(false)).unwrap();
    store
        .commit(&[WriteRequest::sales(vec![sale("kiwi", 2, "1.25", "K1")])])
        .unwrap();

    let batch = || {
        WriteRequest::batch(
            SaleId::parse_optional("batch_id", "client:0:abc")
                .unwrap()
                .unwrap(),
            vec![sale("kiwi", 1, "1.25", "K1"), sale("kiwi", 1, "1.25", "")],
        )
    };
    let first_time = vec![Outcome::Conflict, Outcome::Stored];
    let again = vec![Outcome::Conflict, Outcome::Duplicate];

    let same_commit = store.commit_to_journal(&[batch(), batch()]).unwrap();
    assert_eq!(same_commit, vec![first_time, again.clone()]);
    let pending = store.commit_to_journal(&[batch()]).unwrap();
    assert_eq!(pending, vec![again.clone()]);
    drop(store);

    let mut reopened = Store::open(&db, &options(false)).unwrap();
    assert_eq!(reopened.commit(&[batch()]).unwrap(), vec![again]);
    let kiwi = reopened
        .statistics()
        .read()
        .unwrap()
        .item_total(&Item::parse("kiwi").unwrap());
    assert_eq!((kiwi.sales, kiwi.quantity), (2, 3));
}
