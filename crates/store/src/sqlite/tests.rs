use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;

async fn open() -> (tempfile::TempDir, Arc<Sqlite>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = Sqlite::connect(&url, &ConnectOptions::default())
        .await
        .expect("connect");
    db.execute(Sql::new("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
        .await
        .expect("create");
    (dir, Arc::new(db))
}

async fn count(db: &Sqlite) -> i64 {
    let (n,): (i64,) = db
        .fetch_optional(Sql::new("SELECT COUNT(*) FROM t"))
        .await
        .expect("count")
        .expect("a row");
    n
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Issue 13: the database file and SQLite's -wal and -shm files are
/// 0600, on a new database and on one whose files were left wider.
#[tokio::test]
async fn database_files_are_owner_only() {
    let (dir, db) = open().await;
    db.execute(Sql::new("INSERT INTO t (x) VALUES (1)"))
        .await
        .expect("insert");
    let base = dir.path().join("t.db");
    let wal = dir.path().join("t.db-wal");
    let shm = dir.path().join("t.db-shm");
    for path in [&base, &wal, &shm] {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    drop(db);
    use std::os::unix::fs::PermissionsExt as _;
    for path in [&base, &wal, &shm] {
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
    let url = format!("sqlite://{}", base.display());
    let db = Sqlite::connect(&url, &ConnectOptions::default())
        .await
        .expect("reopen");
    db.execute(Sql::new("INSERT INTO t (x) VALUES (2)"))
        .await
        .expect("insert");
    for path in [&base, &wal, &shm] {
        assert_eq!(mode(path), 0o600, "{} after reopening", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_are_grouped_and_all_stored() {
    let (_dir, db) = open().await;
    let before = db.groups.load(Ordering::Relaxed);
    let tasks: Vec<_> = (0..200i64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.execute(Sql::new("INSERT INTO t (x) VALUES ($1)").bind(i))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("insert"), 1);
    }
    assert_eq!(count(&db).await, 200);
    let groups = db.groups.load(Ordering::Relaxed) - before;
    assert!(groups < 150, "200 concurrent writes took {groups} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_unit_leaves_no_trace_and_its_group_commits() {
    let (_dir, db) = open().await;
    let tasks: Vec<_> = (0..100i64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut tx = db.begin().await?;
                tx.execute(Sql::new("INSERT INTO t (x) VALUES ($1)").bind(i))
                    .await?;
                if i % 2 == 0 {
                    tx.commit().await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("unit");
    }
    assert_eq!(count(&db).await, 50);
    let odd: Option<(i64,)> = db
        .fetch_optional(Sql::new("SELECT x FROM t WHERE x % 2 = 1"))
        .await
        .expect("read");
    assert!(odd.is_none(), "a rolled-back unit's row was stored");
}

#[tokio::test]
async fn a_constraint_error_undoes_the_statement_only() {
    let (_dir, db) = open().await;
    db.execute(Sql::new("INSERT INTO t (x) VALUES (1)"))
        .await
        .expect("first");
    let mut tx = db.begin().await.expect("begin");
    let dup = tx.execute(Sql::new("INSERT INTO t (x) VALUES (1)")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    tx.execute(Sql::new("INSERT INTO t (x) VALUES (2)"))
        .await
        .expect("the transaction goes on");
    tx.commit().await.expect("commit");
    assert_eq!(count(&db).await, 2);
}

/// A lone statement travels with its commit; when it fails on a
/// constraint, its caller gets the error, nothing of it is stored, and
/// the units grouped with it commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_statement_error_is_its_own_and_the_group_goes_on() {
    let (_dir, db) = open().await;
    let tasks: Vec<_> = (0..100i64)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.execute(Sql::new("INSERT INTO t (x) VALUES ($1)").bind(i / 2))
                    .await
            })
        })
        .collect();
    let (mut stored, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            Ok(1) => stored += 1,
            Err(StoreError::Conflict(_)) => conflicts += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((stored, conflicts), (50, 50));
    assert_eq!(count(&db).await, 50);
    // And the writer is in a clean state for what follows.
    let mut tx = db.begin().await.expect("begin");
    tx.execute(Sql::new("INSERT INTO t (x) VALUES (1000)"))
        .await
        .expect("insert");
    drop(tx);
    db.execute(Sql::new("INSERT INTO t (x) VALUES (1001)"))
        .await
        .expect("insert");
    assert_eq!(count(&db).await, 51);
}

#[tokio::test]
async fn a_commit_is_durable_when_it_returns() {
    let (dir, db) = open().await;
    db.execute(Sql::new("INSERT INTO t (x) VALUES (7)"))
        .await
        .expect("insert");
    // Another connection, as after a restart, sees it.
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let other = Sqlite::connect(&url, &ConnectOptions::default())
        .await
        .expect("reopen");
    assert_eq!(count(&other).await, 1);
}
