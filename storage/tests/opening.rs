//! Opening a database that this program must not use as it is: each case
//! gets one error that says what is wrong and which command to run, and
//! nothing is created or changed.

use sales_storage::{migrate, Store, StoreError, StoreOptions, LAYOUT_VERSION};

fn options() -> StoreOptions {
    StoreOptions {
        cache_bytes: 1024 * 1024,
        ..StoreOptions::default()
    }
}

#[test]
fn a_newer_layout_is_refused_with_advice_to_upgrade() {
    let dir = tempfile::TempDir::new().unwrap();
    Store::open(dir.path(), &options())
        .unwrap()
        .set_layout_version(LAYOUT_VERSION + 1)
        .unwrap();

    let error = Store::open(dir.path(), &options()).err().expect("refused");

    assert!(
        matches!(error, StoreError::LayoutTooNew { found, .. } if found == LAYOUT_VERSION + 1)
    );
    assert!(
        error.to_string().contains("upgrade the sales service"),
        "{error}"
    );
}

#[test]
fn an_older_layout_is_refused_until_migrate_upgrades_it() {
    let dir = tempfile::TempDir::new().unwrap();
    Store::open(dir.path(), &options())
        .unwrap()
        .set_layout_version(0)
        .unwrap();

    let error = Store::open(dir.path(), &options()).err().expect("refused");
    let old = StoreOptions {
        allow_old_layout: true,
        ..options()
    };
    let report = migrate::run(&Store::open(dir.path(), &old).unwrap()).unwrap();
    let again = migrate::run(&Store::open(dir.path(), &old).unwrap()).unwrap();

    assert!(matches!(error, StoreError::LayoutTooOld { found: 0, .. }));
    assert!(error.to_string().contains("migrations-tool"), "{error}");
    assert_eq!(
        (report.from, report.to, report.steps.len()),
        (0, LAYOUT_VERSION, 1)
    );
    assert!(again.steps.is_empty());
    assert!(Store::open(dir.path(), &options()).is_ok());
}

#[test]
fn a_second_opener_is_told_the_database_is_in_use() {
    let dir = tempfile::TempDir::new().unwrap();
    let _first = Store::open(dir.path(), &options()).unwrap();

    let error = Store::open(dir.path(), &options()).err().expect("refused");

    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
}

#[test]
fn a_missing_database_is_not_created_when_creation_is_off() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("typo");
    let no_create = StoreOptions {
        create: false,
        ..options()
    };

    let error = Store::open(&path, &no_create).err().expect("refused");

    assert!(matches!(error, StoreError::Missing { .. }));
    assert!(!path.exists());
}
