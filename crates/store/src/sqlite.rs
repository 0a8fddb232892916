//! The SQLite backend: the embedded default, one file in the data folder.
//!
//! Every connection runs in WAL mode (readers never block the writer),
//! `synchronous = FULL` (a committed payment survives a power cut),
//! `foreign_keys = ON` and a 5 s busy timeout.
//!
//! # One writer, group commit
//!
//! SQLite has one write lock, and with `synchronous = FULL` every commit
//! waits for an fsync of the WAL (about 0.2–0.5 ms on our machines). One
//! commit per write would cap cashdesk at a couple of thousand writes per
//! second whatever the CPU, and a payment cycle makes several. So all
//! writes go through one task that owns one connection (the [`writer`]):
//! callers send it their transactions as *units*, and it runs the units
//! that are waiting one after the other inside a single `BEGIN IMMEDIATE
//! … COMMIT`, each unit in its own `SAVEPOINT`. A unit's statements run as
//! the caller sends them, so its reads see everything written before it
//! (what `BEGIN IMMEDIATE` gave each transaction before); a unit that is
//! dropped without committing is rolled back to its savepoint and leaves
//! no trace; a unit's `commit` returns only after the group's `COMMIT` is
//! durable. Nothing is acknowledged before its fsync: group commit makes
//! one fsync serve many callers, it does not skip any.
//!
//! When nobody else is writing a group is one unit, so a lone write costs
//! what it did before; under load the units that queued up during one
//! commit form the next group (at most [`MAX_GROUP`] units or
//! [`MAX_GROUP_TIME`] of work, so the first caller of a group is not kept
//! waiting for long).
//!
//! A statement error that only undoes the statement (a constraint
//! violation: unique, foreign key, not null, check) is the unit's to
//! handle, as in any transaction. Any other error may have rolled back the
//! whole transaction in SQLite, so it fails the group: every unit of the
//! group is told its commit failed (nothing of it was stored) and the next
//! units start a new group.
//!
//! Reads (statements that start with `SELECT`) go to a pool of reader
//! connections and see the last commit. `sqlite::memory:` (tests) has one
//! connection, held by the writer (an in-memory database lives as long as
//! its connection, and a shared cache between several would trade
//! `SQLITE_BUSY` waits for `SQLITE_LOCKED` errors), so there every
//! statement goes through the writer.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt as _;
use sqlx::Arguments;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::common::{Arg, Backend, RawRow, Sql, Tx};
use crate::{ConnectOptions, Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Most units in one group commit.
const MAX_GROUP: usize = 128;
/// Stop adding units to a group after this much time since its `BEGIN`.
const MAX_GROUP_TIME: Duration = Duration::from_millis(10);
/// A unit whose caller sends nothing for this long is rolled back: the
/// writer is everybody's, and a transaction never waits on anything but
/// its own statements.
const UNIT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Sqlite {
    /// Reader connections (none for an in-memory database).
    readers: Option<readers::Readers>,
    /// An in-memory database's one connection lives in this pool (lent to
    /// the writer for good).
    _memory: Option<SqlitePool>,
    /// Groups committed so far (tests check that writes are grouped).
    #[cfg(test)]
    groups: std::sync::Arc<std::sync::atomic::AtomicU64>,
    writer: mpsc::Sender<writer::Job>,
    /// Every statement goes through the writer (in-memory database).
    reads_via_writer: bool,
}

/// Makes the database file, and the journal files SQLite keeps beside it,
/// readable and writable by the owner only (0600), whatever the umask:
///
/// - SQLite creates a new database file 0644 (`SQLITE_DEFAULT_FILE_PERMISSIONS`,
///   applied with `fchmod`, so even a strict umask does not narrow it), and
///   gives the `-wal`, `-shm` and `-journal` files the database file's own
///   mode (`findCreateFileMode` and `unixOpenSharedMemory` in `os_unix.c`).
///   So the database file is created here first, 0600, and SQLite's files
///   follow it.
/// - Files left wider by an older version, a copy or a restore are
///   narrowed to 0600 (logged).
#[cfg(unix)]
fn owner_only_files(db: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        // No such folder: SQLite gives its own error for the path.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let name = db.as_os_str();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = name.to_owned();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(file = %path.display(), from = format!("{mode:o}"), "database file was readable by others; made owner-only (0600)");
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only_files(_db: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

impl Sqlite {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            owner_only_files(connect.get_filename()).map_err(|e| StoreError::Database(e.into()))?;
        }
        let (readers, memory, conn) = if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect)
                .await?;
            let conn = writer::Conn::Pooled(pool.acquire().await?);
            (None, Some(pool), conn)
        } else {
            let conn = writer::Conn::Own(sqlx::ConnectOptions::connect(&connect).await?);
            let readers = readers::Readers::new(connect, options.max_connections.max(1));
            (Some(readers), None, conn)
        };
        let groups = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        Ok(Self {
            readers,
            _memory: memory,
            writer: writer::spawn(conn, groups.clone()),
            reads_via_writer: in_memory,
            #[cfg(test)]
            groups,
        })
    }

    /// The reader pool when `sql` is a read (and reads do not go through
    /// the writer).
    fn reader_for(&self, sql: &Sql) -> Option<&readers::Readers> {
        self.readers.as_ref().filter(|_| self.is_read(sql))
    }

    fn is_read(&self, sql: &Sql) -> bool {
        !self.reads_via_writer
            && sql
                .text
                .trim_start()
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("SELECT"))
    }

    /// A statement alone, as its own unit.
    async fn write_alone(&self, sql: Sql) -> Result<Vec<SqliteRow>> {
        self.alone(|reply| writer::Op::Fetch(sql, reply)).await
    }

    /// One statement as a unit of its own, sent with its commit at once:
    /// the writer goes from the statement to the commit without waiting
    /// for this caller to wake up and ask (the writer is everybody's, so a
    /// round trip saved here is saved for every caller queued behind).
    /// A statement error that undid only the statement is returned as it
    /// is; the commit then commits nothing.
    async fn alone<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Op,
    ) -> Result<T> {
        let tx = self.begin().await?;
        let (reply, answer) = oneshot::channel();
        let (commit_reply, committed) = oneshot::channel();
        tx.ops.send(op(reply)).map_err(|_| writer::gone())?;
        tx.ops
            .send(writer::Op::Commit(commit_reply))
            .map_err(|_| writer::gone())?;
        let value = answer.await.map_err(|_| writer::gone())??;
        committed.await.map_err(|_| writer::gone())??;
        Ok(value)
    }
}

fn arguments(args: Vec<Arg>) -> Result<SqliteArguments<'static>> {
    let mut out = SqliteArguments::default();
    for arg in args {
        let added = match arg {
            Arg::Text(v) => out.add(v),
            Arg::Bytes(v) => out.add(v),
            Arg::I64(v) => out.add(v),
            Arg::I32(v) => out.add(v),
            Arg::Bool(v) => out.add(v),
            Arg::Ts(v) => out.add(v),
        };
        added.map_err(|e| StoreError::Database(sqlx::Error::Encode(e)))?;
    }
    Ok(out)
}

fn decode<T: RawRow>(row: &SqliteRow) -> Result<T> {
    Ok(T::from_row(row)?)
}

#[async_trait]
impl Backend for Sqlite {
    type Tx = SqliteTx;

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.writer
            .send(writer::Job::Migrate(reply))
            .await
            .map_err(|_| writer::gone())?;
        done.await.map_err(|_| writer::gone())?
    }

    async fn execute(&self, sql: Sql) -> Result<u64> {
        if let Some(readers) = self.reader_for(&sql) {
            let args = arguments(sql.args)?;
            let mut conn = readers.get().await?;
            let done = sqlx::query_with(&sql.text, args).execute(conn.conn()).await;
            let done = conn.check(done)?;
            return Ok(done.rows_affected());
        }
        self.alone(|reply| writer::Op::Execute(sql, reply)).await
    }

    async fn fetch_optional<T: RawRow>(&self, sql: Sql) -> Result<Option<T>> {
        if let Some(readers) = self.reader_for(&sql) {
            let args = arguments(sql.args)?;
            let mut conn = readers.get().await?;
            let row = sqlx::query_as_with::<_, T, _>(&sql.text, args)
                .fetch_optional(conn.conn())
                .await;
            return Ok(conn.check(row)?);
        }
        self.write_alone(sql)
            .await?
            .first()
            .map(decode::<T>)
            .transpose()
    }

    async fn fetch_all<T: RawRow>(&self, sql: Sql) -> Result<Vec<T>> {
        if let Some(readers) = self.reader_for(&sql) {
            let args = arguments(sql.args)?;
            let mut conn = readers.get().await?;
            let rows = sqlx::query_as_with::<_, T, _>(&sql.text, args)
                .fetch_all(conn.conn())
                .await;
            return Ok(conn.check(rows)?);
        }
        self.write_alone(sql)
            .await?
            .iter()
            .map(decode::<T>)
            .collect()
    }

    async fn fetch_each<T: RawRow>(
        &self,
        sql: Sql,
        each: &mut (dyn FnMut(T) -> Result<()> + Send),
    ) -> Result<()> {
        let Some(readers) = self.reader_for(&sql) else {
            // The in-memory database (tests): its one connection is the
            // writer's, which answers with every row at once.
            for row in self.write_alone(sql).await? {
                each(decode::<T>(&row)?)?;
            }
            return Ok(());
        };
        let args = arguments(sql.args)?;
        let mut conn = readers.get().await?;
        let mut rows = sqlx::query_as_with::<_, T, _>(&sql.text, args).fetch(conn.conn());
        let read = loop {
            match rows.try_next().await {
                Ok(Some(row)) => each(row)?,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        drop(rows);
        Ok(conn.check(read)?)
    }

    async fn begin(&self) -> Result<SqliteTx> {
        let (ops, rx) = mpsc::unbounded_channel();
        self.writer
            .send(writer::Job::Unit(rx))
            .await
            .map_err(|_| writer::gone())?;
        Ok(SqliteTx { ops })
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn skip_locked(&self) -> &'static str {
        ""
    }

    fn cn_day(&self, col: &str) -> String {
        // Times are unix microseconds; integer division floors them (all
        // are after 1970).
        format!("(({col} / 1000000 + 28800) / 86400)")
    }
}

/// A unit of the writer's current or next group. Dropping it without
/// [`Tx::commit`] rolls it back (the writer sees its channel close).
pub(crate) struct SqliteTx {
    ops: mpsc::UnboundedSender<writer::Op>,
}

impl SqliteTx {
    async fn ask<T>(&self, op: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Op) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.ops.send(op(reply)).map_err(|_| writer::gone())?;
        answer.await.map_err(|_| writer::gone())?
    }

    async fn fetch_rows(&mut self, sql: Sql) -> Result<Vec<SqliteRow>> {
        self.ask(|reply| writer::Op::Fetch(sql, reply)).await
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn execute(&mut self, sql: Sql) -> Result<u64> {
        self.ask(|reply| writer::Op::Execute(sql, reply)).await
    }

    async fn fetch_optional<T: RawRow>(&mut self, sql: Sql) -> Result<Option<T>> {
        self.fetch_rows(sql)
            .await?
            .first()
            .map(decode::<T>)
            .transpose()
    }

    async fn commit(self) -> Result<()> {
        self.ask(writer::Op::Commit).await
    }
}

/// The task that owns the write connection and runs groups of units.
/// The reader connections: a small pool of our own rather than sqlx's,
/// which pings every connection when it is given back (a round trip to the
/// connection's thread per read; about a tenth of the server's CPU under
/// load). A local file needs no liveness test: a connection whose query
/// failed other than in the database (I/O, its thread gone) is dropped
/// and a fresh one is opened when next needed. A read cancelled midway
/// leaves its connection usable: its thread finishes or resets the
/// statement before it takes the next command.
mod readers {
    use std::sync::Mutex;

    use sqlx::SqliteConnection;
    use sqlx::sqlite::SqliteConnectOptions;
    use tokio::sync::{Semaphore, SemaphorePermit};

    use crate::{Result, StoreError};

    pub(super) struct Readers {
        options: SqliteConnectOptions,
        idle: Mutex<Vec<SqliteConnection>>,
        permits: Semaphore,
    }

    impl Readers {
        /// At most `max` connections, opened when first needed.
        pub(super) fn new(options: SqliteConnectOptions, max: u32) -> Readers {
            Readers {
                options,
                idle: Mutex::new(Vec::new()),
                permits: Semaphore::new(max as usize),
            }
        }

        pub(super) async fn get(&self) -> Result<Reader<'_>> {
            let permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
            let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
            let conn = match idle {
                Some(c) => c,
                None => sqlx::ConnectOptions::connect(&self.options).await?,
            };
            Ok(Reader {
                readers: self,
                conn: Some(conn),
                _permit: permit,
            })
        }
    }

    /// A connection lent for one read; given back when dropped.
    pub(super) struct Reader<'a> {
        readers: &'a Readers,
        conn: Option<SqliteConnection>,
        _permit: SemaphorePermit<'a>,
    }

    impl Reader<'_> {
        pub(super) fn conn(&mut self) -> &mut SqliteConnection {
            self.conn.as_mut().expect("a lent connection")
        }

        /// Passes `result` on; a failure outside the database (the
        /// connection itself) retires the connection.
        pub(super) fn check<T>(
            &mut self,
            result: std::result::Result<T, sqlx::Error>,
        ) -> std::result::Result<T, sqlx::Error> {
            if let Err(e) = &result
                && matches!(
                    e,
                    sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
                )
            {
                self.conn = None;
            }
            result
        }
    }

    impl Drop for Reader<'_> {
        fn drop(&mut self) {
            if let (Some(conn), Ok(mut idle)) = (self.conn.take(), self.readers.idle.lock()) {
                idle.push(conn);
            }
        }
    }
}

mod writer {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    use sqlx::pool::PoolConnection;
    use sqlx::{Executor as _, SqliteConnection};

    use super::*;

    pub(super) enum Conn {
        Own(SqliteConnection),
        Pooled(PoolConnection<sqlx::Sqlite>),
    }

    impl Conn {
        fn get(&mut self) -> &mut SqliteConnection {
            match self {
                Conn::Own(c) => c,
                Conn::Pooled(c) => c,
            }
        }
    }

    pub(super) enum Job {
        /// A transaction: its statements arrive on the channel, ending
        /// with a commit (or the channel closing: rollback).
        Unit(mpsc::UnboundedReceiver<Op>),
        Migrate(oneshot::Sender<Result<()>>),
    }

    pub(super) enum Op {
        Execute(Sql, oneshot::Sender<Result<u64>>),
        Fetch(Sql, oneshot::Sender<Result<Vec<SqliteRow>>>),
        /// Answered once the group's COMMIT is durable (or has failed).
        Commit(oneshot::Sender<Result<()>>),
    }

    pub(super) fn gone() -> StoreError {
        StoreError::WriteFailed("the SQLite writer has stopped".into())
    }

    pub(super) fn spawn(conn: Conn, groups: Arc<AtomicU64>) -> mpsc::Sender<Job> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(run(conn, rx, groups));
        tx
    }

    async fn run(mut conn: Conn, mut jobs: mpsc::Receiver<Job>, groups: Arc<AtomicU64>) {
        let mut next: VecDeque<Job> = VecDeque::new();
        loop {
            let job = match next.pop_front() {
                Some(job) => job,
                None => match jobs.recv().await {
                    Some(job) => job,
                    None => break,
                },
            };
            match job {
                Job::Migrate(reply) => {
                    let done = MIGRATOR
                        .run_direct(conn.get())
                        .await
                        .map_err(StoreError::from);
                    let _ = reply.send(done);
                }
                Job::Unit(first) => {
                    group(conn.get(), first, &mut jobs, &mut next).await;
                    groups.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tracing::debug!("SQLite writer stopped");
    }

    /// One group: `BEGIN IMMEDIATE`, `first` and the units that are
    /// waiting (until the group is full or old), `COMMIT`, then every
    /// committed unit is answered. A migration that arrives meanwhile waits
    /// for the next turn.
    ///
    /// Every statement is a round trip to the connection's thread, so the
    /// bookkeeping statements travel together: `BEGIN IMMEDIATE; SAVEPOINT
    /// unit` opens the group and its first unit, `RELEASE unit; SAVEPOINT
    /// unit` passes from one unit to the next, `RELEASE unit; COMMIT` ends
    /// the group. A unit rolled back to its savepoint leaves the (empty)
    /// savepoint open for the next of these. A lone write is three round
    /// trips plus its own statements.
    async fn group(
        conn: &mut SqliteConnection,
        first: mpsc::UnboundedReceiver<Op>,
        jobs: &mut mpsc::Receiver<Job>,
        next: &mut VecDeque<Job>,
    ) {
        if let Err(e) = conn.execute("BEGIN IMMEDIATE; SAVEPOINT unit").await {
            // BEGIN may have succeeded and SAVEPOINT not.
            let _ = conn.execute("ROLLBACK").await;
            fail_unit(first, &format!("could not start a write transaction: {e}")).await;
            return;
        }
        let started = Instant::now();
        let mut committed: Vec<oneshot::Sender<Result<()>>> = Vec::new();
        let mut units = 0;
        let mut ops = first;
        loop {
            units += 1;
            match run_unit(conn, ops).await {
                Ok(Some(reply)) => committed.push(reply),
                Ok(None) => {}
                Err(failure) => {
                    let _ = conn.execute("ROLLBACK").await;
                    tell(committed, &failure);
                    return;
                }
            }
            let more = if units < MAX_GROUP && started.elapsed() < MAX_GROUP_TIME {
                match jobs.try_recv() {
                    Ok(Job::Unit(ops)) => Some(ops),
                    Ok(job @ Job::Migrate(_)) => {
                        next.push_back(job);
                        None
                    }
                    Err(_) => None,
                }
            } else {
                None
            };
            let Some(more) = more else { break };
            if let Err(e) = conn.execute("RELEASE unit; SAVEPOINT unit").await {
                let _ = conn.execute("ROLLBACK").await;
                let failure = format!("could not pass to the next unit: {e}");
                tell(committed, &failure);
                fail_unit(more, &failure).await;
                return;
            }
            ops = more;
        }
        match conn.execute("RELEASE unit; COMMIT").await {
            Ok(_) => {
                for reply in committed {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                tell(committed, &format!("commit failed: {e}"));
            }
        }
    }

    fn tell(committed: Vec<oneshot::Sender<Result<()>>>, failure: &str) {
        tracing::error!(
            units = committed.len(),
            error = failure,
            "an SQLite write group failed; its units were rolled back"
        );
        for reply in committed {
            let _ = reply.send(Err(StoreError::WriteFailed(failure.to_owned())));
        }
    }

    /// Whether an error undid only its statement (the transaction goes on).
    fn statement_only(e: &sqlx::Error) -> bool {
        match e {
            sqlx::Error::Database(db) => {
                use sqlx::error::ErrorKind;
                matches!(
                    db.kind(),
                    ErrorKind::UniqueViolation
                        | ErrorKind::ForeignKeyViolation
                        | ErrorKind::NotNullViolation
                        | ErrorKind::CheckViolation
                )
            }
            // Nothing reached the database.
            sqlx::Error::Encode(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                true
            }
            _ => false,
        }
    }

    /// Runs one unit in the savepoint `unit`, which is open, and leaves
    /// it open. `Ok(Some(reply))` when the unit asked to commit (its reply
    /// waits for the group's `COMMIT`), `Ok(None)` when it was rolled back
    /// to its savepoint; `Err` with the reason when the group can no
    /// longer commit.
    async fn run_unit(
        conn: &mut SqliteConnection,
        mut ops: mpsc::UnboundedReceiver<Op>,
    ) -> std::result::Result<Option<oneshot::Sender<Result<()>>>, String> {
        loop {
            let op = match tokio::time::timeout(UNIT_IDLE_TIMEOUT, ops.recv()).await {
                Ok(Some(op)) => op,
                Ok(None) => return rollback_unit(conn).await,
                Err(_) => {
                    tracing::error!("a write transaction sent nothing for 5 s; rolled back");
                    ops.close();
                    fail_unit(ops, "the transaction was idle too long and was rolled back").await;
                    return rollback_unit(conn).await;
                }
            };
            match op {
                Op::Execute(sql, reply) => {
                    let done = match arguments(sql.args) {
                        Ok(args) => sqlx::query_with(&sql.text, args)
                            .execute(&mut *conn)
                            .await
                            .map(|d| d.rows_affected()),
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    };
                    if let Err(failure) = answer(done, reply) {
                        fail_unit(ops, &failure).await;
                        return Err(failure);
                    }
                }
                Op::Fetch(sql, reply) => {
                    let rows = match arguments(sql.args) {
                        Ok(args) => {
                            sqlx::query_with(&sql.text, args)
                                .fetch_all(&mut *conn)
                                .await
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    };
                    if let Err(failure) = answer(rows, reply) {
                        fail_unit(ops, &failure).await;
                        return Err(failure);
                    }
                }
                Op::Commit(reply) => return Ok(Some(reply)),
            }
        }
    }

    /// Answers a statement; `Err` when its error ends the group.
    fn answer<T>(
        done: std::result::Result<T, sqlx::Error>,
        reply: oneshot::Sender<Result<T>>,
    ) -> std::result::Result<(), String> {
        match done {
            Ok(v) => {
                let _ = reply.send(Ok(v));
                Ok(())
            }
            Err(e) if statement_only(&e) => {
                let _ = reply.send(Err(StoreError::from(e)));
                Ok(())
            }
            Err(e) => {
                let failure = e.to_string();
                let _ = reply.send(Err(StoreError::from(e)));
                Err(failure)
            }
        }
    }

    /// Undoes the unit's statements; the savepoint stays open (empty).
    async fn rollback_unit(
        conn: &mut SqliteConnection,
    ) -> std::result::Result<Option<oneshot::Sender<Result<()>>>, String> {
        match conn.execute("ROLLBACK TO unit").await {
            Ok(_) => Ok(None),
            Err(e) => Err(format!("could not roll back a savepoint: {e}")),
        }
    }

    /// Answers every remaining statement of a unit with `failure`, until
    /// its commit (answered too) or until its caller drops it.
    async fn fail_unit(mut ops: mpsc::UnboundedReceiver<Op>, failure: &str) {
        let err = || StoreError::WriteFailed(failure.to_owned());
        while let Ok(Some(op)) = tokio::time::timeout(UNIT_IDLE_TIMEOUT, ops.recv()).await {
            match op {
                Op::Execute(_, reply) => {
                    let _ = reply.send(Err(err()));
                }
                Op::Fetch(_, reply) => {
                    let _ = reply.send(Err(err()));
                }
                Op::Commit(reply) => {
                    let _ = reply.send(Err(err()));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
