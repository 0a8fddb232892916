//! The benchmark's set-up, timed apart from the run: the application, its
//! channel config, app and channel, the day's paid orders in bulk, and the
//! bill placed where the engine keeps downloaded bills.
//!
//! - **The application** is built by [`Application::build`] as `cashdesk
//!   serve` builds it (migrations, keys, the store with its pools), in
//!   production mode with the sandbox off and the daily reconciliation off;
//!   nothing is served and no worker runs: the benchmark calls the engine
//!   on the application's state.
//! - **The channel config** holds a WeChat Pay v3 merchant's credentials,
//!   opened at an in-process sandbox that is stopped right after (the run
//!   never calls the channel: it reads the kept bill).
//! - **The orders** go in with multi-row `INSERT`s on a connection of the
//!   benchmark's own, in large transactions: the store writes one order per
//!   unit (two, with the payment), which would make the set-up of a million
//!   orders take most of an hour; the rows are what the store writes for an
//!   order paid through WeChat v3 (state `SUCCESS`, channel, config,
//!   transaction id, pay time).
//! - **The bill** is written to `bills/<configId>/<day>_own.csv.gz` in the
//!   data folder and recorded on the day's run as its kept bill, exactly
//!   what a run that downloaded it records; [`cashdesk_server::recon::run_day`]
//!   without `refetch` then reads that file instead of calling the channel.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use cashdesk_core::{ConfigId, ReconState, SignType};
use cashdesk_sandbox::{Sandbox, SandboxConfig};
use cashdesk_server::access::Principal;
use cashdesk_server::service::{apps, channels};
use cashdesk_server::state::AppState;
use cashdesk_server::{Application, Config, Mode};
use cashdesk_store::StoredBill;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::Connection as _;

use super::book::Book;

/// Rows per `INSERT` and per transaction.
const ROWS_PER_INSERT: u64 = 500;
const ROWS_PER_TX: u64 = 50_000;

pub(super) struct Setup {
    /// Kept alive for the run: it owns the listener and the store.
    _app: Application,
    pub(super) state: AppState,
    pub(super) backend: &'static str,
    database_url: String,
    pub(super) config_id: ConfigId,
    channel_id: String,
    app_id: String,
    /// 商户号 and the merchant's official-account app id (the bill's).
    pub(super) mch_id: String,
    pub(super) wx_app_id: String,
}

impl Setup {
    pub(super) async fn build(dir: &Path, database_url: Option<&str>) -> anyhow::Result<Setup> {
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.join("data"),
            database_url: database_url.map(str::to_owned),
            mode: Some(Mode::Production),
            sandbox: Some(false),
            recon_window: Some("off".to_owned()),
            ..Config::default()
        };
        let app = Application::build(config.clone())
            .await
            .context("building the application")?;
        let state = app.state();
        let backend = app.store().backend();

        let sandbox = Sandbox::start(SandboxConfig::new(
            dir.join("sandbox"),
            "http://127.0.0.1:9",
        ))
        .await
        .context("starting the sandbox")?;
        let merchant = sandbox.open_wechat_merchant(Some("HMAC-SHA256")).await;
        sandbox.shutdown().await;
        let merchant = merchant.context("opening a sandbox WeChat merchant")?;
        drop(sandbox);

        let bench = Principal::system("bench", None);
        let body = json!({
            "channelType": "wx-pay",
            "name": "bench recon",
            "mchId": merchant.mch_id,
            "apiVersion": "v3",
            "credentials": merchant.credentials_v3,
            "baseUrl": merchant.base_url,
        });
        let config_id = channels::create_config(&state, object(&body)?, &bench)
            .await
            .context("creating the channel config")?;
        let body = json!({
            "configId": config_id.as_str(),
            "sceneCode": "mini",
            "channelName": "bench recon",
        });
        let channel_id = channels::create_channel(&state, object(&body)?, &bench)
            .await
            .context("creating the channel")?;
        let new = apps::NewApp {
            app_name: "bench recon".to_owned(),
            notify_url: None,
            sign_type: SignType::HmacSha256,
            public_key_pem: None,
            refund_review: false,
            auto_refund_paid_after_close: false,
        };
        let (app_row, _key) = apps::create(&state, new, &bench)
            .await
            .context("registering the app")?;
        Ok(Setup {
            _app: app,
            state,
            backend,
            database_url: config.effective_database_url(),
            config_id,
            channel_id: channel_id.to_string(),
            app_id: app_row.app_id.to_string(),
            mch_id: merchant.mch_id,
            wx_app_id: merchant.credentials_v3.app_id.clone(),
        })
    }

    /// Writes the book's orders, paid, `ROWS_PER_INSERT` to a statement.
    pub(super) async fn insert_orders(&self, book: &Book) -> anyhow::Result<()> {
        let mut db = Bulk::open(&self.database_url).await?;
        let mut sql = String::with_capacity(256 * ROWS_PER_INSERT as usize);
        let mut i = 0;
        while i < book.n {
            db.exec("BEGIN").await?;
            let tx_end = (i + ROWS_PER_TX).min(book.n);
            while i < tx_end {
                let end = (i + ROWS_PER_INSERT).min(tx_end);
                sql.clear();
                sql.push_str(
                    "INSERT INTO orders (order_id, app_id, out_trade_no, amount, order_title, \
                     goods_desc, third_party_user, token, expire_at, request_hash, response, \
                     state, channel_id, channel_type, config_id, mch_id, scene_code, \
                     transaction_id, pay_time, created_at, updated_at) VALUES ",
                );
                for j in i..end {
                    if j > i {
                        sql.push(',');
                    }
                    self.push_order(&mut sql, &db, book, j);
                }
                db.exec(&sql).await?;
                i = end;
            }
            db.exec("COMMIT").await?;
        }
        match db {
            // A production database has statistics; the planner needs them.
            Bulk::Postgres(_) => db.exec("ANALYZE orders").await?,
            // Everything on disk before the run, so the run does not share
            // the disk with the set-up's write-back.
            Bulk::Sqlite(_) => db.exec("PRAGMA wal_checkpoint(TRUNCATE)").await?,
        }
        db.close().await?;
        if let Some(file) = self.sqlite_file() {
            std::fs::File::open(&file)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("syncing {}", file.display()))?;
        }
        Ok(())
    }

    /// The SQLite database file, when that is the database.
    fn sqlite_file(&self) -> Option<PathBuf> {
        let rest = self.database_url.strip_prefix("sqlite://")?;
        let path = rest.split('?').next().unwrap_or(rest);
        Some(PathBuf::from(path)).filter(|p| p.is_file())
    }

    fn push_order(&self, sql: &mut String, db: &Bulk, book: &Book, i: u64) {
        let paid = book.pay_time(i);
        let order_id = book.order_id(i);
        // Every value is generated here (ids, digits, fixed words): no
        // quoting is needed.
        sql.push_str(&format!(
            "('{order_id}','{app}','{otn}',{amount},'bench','bench order','bench','t{order_id}',\
             {expire},'-','{{}}','SUCCESS','{channel}','wx-pay','{config}','{mch}','mini',\
             '{txn}',{paid},{created},{paid})",
            app = self.app_id,
            otn = book.out_trade_no(i),
            amount = book.amount(i),
            expire = db.ts(paid + chrono::Duration::hours(2)),
            channel = self.channel_id,
            config = self.config_id,
            mch = self.mch_id,
            txn = book.transaction_id(i),
            paid = db.ts(paid),
            created = db.ts(paid - chrono::Duration::seconds(20)),
        ));
    }

    /// Where the engine keeps this day's bill of the config's own account
    /// (`recon::files`: `bills/<configId>/<day>_own.csv.gz`), absolute
    /// and relative to the data folder.
    pub(super) fn bill_path(&self, day: NaiveDate) -> anyhow::Result<(PathBuf, String)> {
        let rel = Path::new("bills")
            .join(self.config_id.as_str())
            .join(format!("{day}_own.csv.gz"));
        let abs = self.state.config.data_dir.join(&rel);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        Ok((abs, rel.to_string_lossy().into_owned()))
    }

    /// Records `bill` as the kept bill of (config, day), as a run that had
    /// downloaded it and stopped before matching would have.
    pub(super) async fn keep_bill(&self, day: NaiveDate, bill: StoredBill) -> anyhow::Result<()> {
        let store = &self.state.store;
        let mut run = store
            .start_recon_run(&self.config_id, day, Utc::now())
            .await?;
        run.state = ReconState::Failed;
        run.message = Some("bill placed by cashdesk bench recon".to_owned());
        run.bills = vec![bill];
        run.finished_at = Some(Utc::now());
        store.finish_recon_run(&run).await?;
        Ok(())
    }
}

fn object(v: &serde_json::Value) -> anyhow::Result<&serde_json::Map<String, serde_json::Value>> {
    v.as_object().context("a JSON object")
}

/// The benchmark's own connection for the bulk insert.
enum Bulk {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Bulk {
    async fn open(url: &str) -> anyhow::Result<Bulk> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let conn = sqlx::PgConnection::connect(url)
                .await
                .context("connecting to PostgreSQL for the bulk insert")?;
            return Ok(Bulk::Postgres(conn));
        }
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
            .context("the SQLite URL")?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            // Set-up data: a crash loses the benchmark, nothing else.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .context("opening SQLite for the bulk insert")?;
        Ok(Bulk::Sqlite(conn))
    }

    async fn exec(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Bulk::Sqlite(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
            Bulk::Postgres(c) => sqlx::raw_sql(sql).execute(c).await.map(drop),
        }
        .context("inserting the orders")
    }

    /// A time as the store keeps it: SQLite unix microseconds, PostgreSQL
    /// `TIMESTAMPTZ`.
    fn ts(&self, t: DateTime<Utc>) -> String {
        match self {
            Bulk::Sqlite(_) => t.timestamp_micros().to_string(),
            Bulk::Postgres(_) => format!(
                "'{}'::timestamptz",
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        }
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Bulk::Sqlite(c) => c.close().await,
            Bulk::Postgres(c) => c.close().await,
        }
        .context("closing the bulk connection")
    }
}
