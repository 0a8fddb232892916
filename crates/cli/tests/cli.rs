//! End-to-end tests of the `cashdesk` binary: it is run as a user runs it
//! (a child process, environment variables, stdout), against a real
//! `cashdesk serve` on a free port with a fresh data folder (SQLite).

use std::borrow::BorrowMut;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use cashdesk_sdk::{
    ApplyBindingRequest, Client, Credentials, HeaderMap, RequestSigner, SignatureVerifier,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cashdesk");

/// The binary with no `CASHDESK_*` configuration inherited from the
/// environment running the tests, started in `cwd` (so no stray
/// `cashdesk.toml` is read).
fn cashdesk(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CASHDESK_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(cwd);
    cmd
}

fn run_ok(mut cmd: impl BorrowMut<Command>) -> String {
    let out = cmd.borrow_mut().output().expect("run cashdesk");
    assert!(
        out.status.success(),
        "cashdesk failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn run_json(cmd: impl BorrowMut<Command>) -> Value {
    let out = run_ok(cmd);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `Name: value` lines → a header map.
fn parse_headers(text: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.lines() {
        let (name, value) = line.split_once(": ").expect("Name: value");
        map.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    map
}

// ------------------------------------------------------------------ sign

const APP_ID: &str = "app0123456789abcdef";

#[test]
fn sign_prints_the_headers_the_sdk_computes() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"{"outTradeNo":"T1001","amount":1,"orderTitle":"Test"}"#;
    for sign_type in ["HMAC-SHA256", "HMAC-SM3", "MD5"] {
        let out = run_ok(cashdesk(dir.path()).args([
            "sign",
            "--app-id",
            APP_ID,
            "--key",
            "the-app-key",
            "--sign-type",
            sign_type,
            "--method",
            "POST",
            "--path",
            "/api/cashier-desk/unified/orders",
            "--body",
            body,
            "--timestamp",
            "1700000000",
            "--nonce",
            "fixedNonce0001",
        ]));
        let credentials = Credentials::Shared {
            sign_type: cashdesk_sdk::SignType::parse(sign_type).unwrap(),
            app_key: cashdesk_sdk::Secret::new("the-app-key"),
        };
        let expected = RequestSigner::new(APP_ID, &credentials)
            .unwrap()
            .sign_request_at(
                "POST",
                "/api/cashier-desk/unified/orders",
                body.as_bytes(),
                1_700_000_000,
                "fixedNonce0001",
            )
            .unwrap();
        let want: String = expected
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        assert_eq!(out, want, "{sign_type}");
    }
}

#[test]
fn sign_with_a_key_file_and_fresh_nonce_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.key");
    std::fs::write(&key_file, "the-app-key\n").unwrap();
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, b"{\"a\":1}\n").unwrap();
    let out = run_ok(cashdesk(dir.path()).args([
        "sign",
        "--app-id",
        APP_ID,
        "--key-file",
        key_file.to_str().unwrap(),
        "-X",
        "post",
        "--path",
        "/x?y=1",
        "--body-file",
        body_file.to_str().unwrap(),
    ]));
    let headers = parse_headers(&out);
    let verifier =
        SignatureVerifier::new(APP_ID, &Credentials::hmac_sha256("the-app-key")).unwrap();
    verifier
        .verify_request("POST", "/x?y=1", &headers, b"{\"a\":1}\n")
        .expect("signature over the exact file bytes");
    assert!(
        verifier
            .verify_request("POST", "/x?y=1", &headers, b"{\"a\":1}")
            .is_err()
    );
}

#[test]
fn sign_with_rsa_and_sm2_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = cashdesk_crypto::rsa::RsaPrivateKey::generate_2048().unwrap();
    let sm2 = cashdesk_crypto::sm::Sm2PrivateKey::generate();
    let rsa_file = dir.path().join("rsa.pem");
    let sm2_file = dir.path().join("sm2.pem");
    std::fs::write(&rsa_file, rsa.to_pkcs8_pem()).unwrap();
    std::fs::write(&sm2_file, sm2.to_pkcs8_pem()).unwrap();

    // RSA2 is deterministic: byte-for-byte what the SDK makes.
    let out = run_ok(cashdesk(dir.path()).args([
        "sign",
        "--app-id",
        APP_ID,
        "--private-key-pem-file",
        rsa_file.to_str().unwrap(),
        "--sign-type",
        "RSA2",
        "--path",
        "/api/cashier-desk/platform-keys",
        "--timestamp",
        "1700000000",
        "--nonce",
        "n1",
    ]));
    let expected = RequestSigner::new(
        APP_ID,
        &Credentials::Rsa {
            private_key_pem: cashdesk_sdk::Secret::new(rsa.to_pkcs8_pem()),
            platform_public_key_pem: String::new(),
        },
    )
    .unwrap()
    .sign_request_at(
        "GET",
        "/api/cashier-desk/platform-keys",
        b"",
        1_700_000_000,
        "n1",
    )
    .unwrap();
    assert_eq!(
        parse_headers(&out)["Cashdesk-Signature"],
        expected.signature.as_str()
    );

    // SM2 without --sign-type: recognised from the key, verifies with its
    // public half.
    let out = run_ok(cashdesk(dir.path()).args([
        "sign",
        "--app-id",
        APP_ID,
        "--private-key-pem-file",
        sm2_file.to_str().unwrap(),
        "--path",
        "/p",
    ]));
    let headers = parse_headers(&out);
    assert_eq!(headers["Cashdesk-Sign-Type"], "SM2");
    let verifier = SignatureVerifier::new(
        APP_ID,
        &Credentials::Sm2 {
            private_key_pem: cashdesk_sdk::Secret::new(String::new()),
            platform_public_key_pem: sm2.public_key().to_spki_pem(),
        },
    )
    .unwrap();
    verifier
        .verify_request("GET", "/p", &headers, b"")
        .expect("SM2 verifies");
}

#[test]
fn sign_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = cashdesk(dir.path())
        .args(["sign", "--app-id", APP_ID, "--path", "/p"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "no key given");
    let out = cashdesk(dir.path())
        .args([
            "sign",
            "--app-id",
            APP_ID,
            "--key",
            "k",
            "--path",
            "/p",
            "--sign-type",
            "SHA1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown sign type"));
    let out = cashdesk(dir.path())
        .args([
            "sign",
            "--app-id",
            APP_ID,
            "--key-file",
            "/nonexistent/key",
            "--path",
            "/p",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/key"));
}

// ----------------------------------------------------------------- serve

/// A running `cashdesk serve`, killed if the test fails.
struct Serve {
    child: Child,
    url: String,
    report: String,
    data_dir: Arc<tempfile::TempDir>,
    stderr_file: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Spawns `cmd` with stdout piped and reads lines until `done` says the
/// startup report is in (then a little more): `(child, url, report)`.
fn spawn_reporting(
    mut cmd: Command,
    what: &str,
    stderr_file: &Path,
    url_of: impl Fn(&str) -> Option<String>,
) -> (Child, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_file).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let mut url = String::new();
    let mut report = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The report is written in one piece; once the URL line is in, the
    // rest follows within moments.
    while url.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(u) = url_of(&line) {
                    url = u;
                }
                report.push_str(&line);
                report.push('\n');
            }
            Err(_) => panic!(
                "{what}: no startup report within 60 s; stdout so far:\n{report}\nstderr:\n{}",
                std::fs::read_to_string(stderr_file).unwrap_or_default()
            ),
        }
    }
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        report.push_str(&line);
        report.push('\n');
    }
    (child, url, report)
}

/// Numbers the stderr files of the processes a test starts.
static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Serve {
    fn start() -> Serve {
        Serve::start_with(&[])
    }

    /// `cashdesk serve` with these environment variables on top of the
    /// test defaults (which they may override).
    fn start_with(env: &[(&str, &str)]) -> Serve {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Serve::start_in(Arc::new(tempfile::tempdir().unwrap()), &env)
    }

    /// `cashdesk serve` in `data_dir` (its `data` subfolder is the data
    /// folder) with `env` on top of the test defaults (a free port,
    /// private notify URLs allowed).
    fn start_in(data_dir: Arc<tempfile::TempDir>, env: &[(&str, String)]) -> Serve {
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stderr_file = data_dir.path().join(format!("serve-{n}.stderr"));
        let mut cmd = cashdesk(data_dir.path());
        cmd.arg("serve")
            .env("CASHDESK_LISTEN", "127.0.0.1:0")
            .env("CASHDESK_DATA_DIR", data_dir.path().join("data"))
            .env("CASHDESK_ALLOW_PRIVATE_NOTIFY_URLS", "true")
            .env("CASHDESK_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (child, url, report) = spawn_reporting(cmd, "cashdesk serve", &stderr_file, |line| {
            line.trim()
                .strip_prefix("listening on")
                .map(|rest| rest.trim().trim_end_matches('/').to_owned())
        });
        Serve {
            child,
            url,
            report,
            data_dir,
            stderr_file,
        }
    }

    /// `kill -9`: no shutdown, no flushing, leases left held.
    fn kill9(&mut self) {
        // Child::kill is SIGKILL on Unix.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }

    fn data(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// An operator command against this server; the token comes from the
    /// data folder, as on the server host.
    fn admin(&self, args: &[&str]) -> Command {
        let mut cmd = cashdesk(self.data_dir.path());
        cmd.args(args)
            .env("CASHDESK_URL", &self.url)
            .env("CASHDESK_DATA_DIR", self.data());
        cmd
    }

    fn sigterm_and_wait(&mut self) -> std::process::ExitStatus {
        sigterm_and_wait(&mut self.child, &self.stderr_file)
    }
}

/// Sends SIGTERM to `child` and waits (at most 30 s) for it to exit.
fn sigterm_and_wait(child: &mut Child, stderr_file: &Path) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "cashdesk did not stop within 30 s of SIGTERM; stderr:\n{}",
            std::fs::read_to_string(stderr_file).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reports_answers_healthz_and_stops_on_sigterm() {
    let mut serve = Serve::start();
    let report = serve.report.clone();
    assert!(serve.url.starts_with("http://127.0.0.1:"), "{report}");
    assert!(
        !serve.url.ends_with(":0"),
        "the bound port is reported: {report}"
    );
    assert!(report.contains("sqlite"), "{report}");
    assert!(
        report.contains(&serve.data().display().to_string()),
        "{report}"
    );
    assert!(report.to_lowercase().contains("sandbox"), "{report}");
    assert!(
        report.contains("mode          development: listener 127.0.0.1:0 is loopback"),
        "{report}"
    );

    // First start: a generated operator token and a demo app, both shown
    // once and kept in the data folder.
    let token = std::fs::read_to_string(serve.data().join("admin.token")).unwrap();
    assert!(report.contains(token.trim()), "{report}");
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(serve.data().join("demo-app.json")).unwrap())
            .unwrap();
    assert!(report.contains(demo["appId"].as_str().unwrap()), "{report}");
    assert!(
        report.contains(demo["appKey"].as_str().unwrap()),
        "{report}"
    );
    // The sandbox simulates every channel, and the demo app is bound to all.
    for line in [
        "/sandbox/wechat",
        "Alipay sandbox",
        "/sandbox/alipay/gateway.do",
        "Lakala sandbox",
        "/sandbox/lakala",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    let channels = demo["channels"].as_array().unwrap();
    for (channel_type, n) in [("wx-pay", 10), ("ali-pay", 5), ("lakala", 4)] {
        let of_type: Vec<&Value> = channels
            .iter()
            .filter(|c| c["channelType"] == channel_type)
            .collect();
        assert_eq!(of_type.len(), n, "{channel_type}: {demo}");
        for c in of_type {
            let id = c["channelId"].as_str().unwrap();
            assert!(
                report.contains(&format!("{id}  {channel_type} ")),
                "{id}: {report}"
            );
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["admin.token", "demo-app.json", "master.key"] {
            let mode = std::fs::metadata(serve.data().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{file} is private");
        }
    }

    let health = reqwest::get(format!("{}/healthz", serve.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let status = serve.sigterm_and_wait();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        serve.stderr()
    );
    assert!(
        reqwest::get(format!("{}/healthz", serve.url))
            .await
            .is_err(),
        "the port is closed after shutdown"
    );

    // A second start on the same data folder generates nothing new.
    let again = Serve::start();
    assert!(!again.report.contains(token.trim()), "{}", again.report);
    drop(again);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_curl_example_works_with_the_demo_app() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("skipping: curl is not installed");
        return;
    }
    let serve = Serve::start();
    let demo_file = serve.data().join("demo-app.json");
    let curl = run_ok(serve.admin(&[
        "sign",
        "--app-file",
        demo_file.to_str().unwrap(),
        "--method",
        "POST",
        "--path",
        "/api/cashier-desk/unified/orders",
        "--body",
        r#"{"outTradeNo":"T1001","amount":1,"orderTitle":"Test"}"#,
        "--curl",
        "--base-url",
        &serve.url,
    ]));
    let out = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    assert!(
        out.status.success(),
        "{curl}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(answer["code"], 1000, "{answer}");
    assert_eq!(answer["data"]["outTradeNo"], "T1001");
    // The same signed command again is a replay and is refused.
    let out = Command::new("sh").arg("-c").arg(&curl).output().unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["code"], 4015, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_commands_round_trip_through_the_admin_api() {
    let serve = Serve::start();

    // Apps: create, show, disable, enable.
    let created = run_json(serve.admin(&["app", "create", "--name", "Shop A", "--refund-review"]));
    let app_id = created["appId"].as_str().expect("appId").to_owned();
    let app_key = created["appKey"].as_str().expect("appKey").to_owned();
    let list = run_json(serve.admin(&["app", "list"]));
    assert!(list.to_string().contains(&app_id), "{list}");
    let shown = run_json(serve.admin(&["app", "show", &app_id]));
    assert!(shown.to_string().contains("Shop A"), "{shown}");
    assert!(
        !shown.to_string().contains(&app_key),
        "the app key is never shown again"
    );
    run_ok(serve.admin(&["app", "disable", &app_id]));
    let shown = run_json(serve.admin(&["app", "show", &app_id]));
    assert_eq!(shown["enabled"], false, "{shown}");
    run_ok(serve.admin(&["app", "enable", &app_id]));
    let shown = run_json(serve.admin(&["app", "show", &app_id]));
    assert_eq!(shown["enabled"], true, "{shown}");
    let moved = run_json(serve.admin(&[
        "app",
        "settings",
        &app_id,
        "--notify-url",
        "https://shop-a.example.com/notify",
    ]));
    assert_eq!(
        moved["notifyUrl"], "https://shop-a.example.com/notify",
        "{moved}"
    );
    assert_eq!(moved["notificationsReaddressed"], 0, "{moved}");
    let removed = run_json(serve.admin(&["app", "settings", &app_id, "--notify-url", ""]));
    assert_eq!(removed["notifyUrl"], Value::Null, "{removed}");
    let out = serve
        .admin(&["app", "settings", &app_id, "--notify-url", "not a url"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notifyUrl"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A channel config: credentials go in, never come out. A sandbox
    // merchant's credentials paste as they are.
    let merchant: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/api/merchants", serve.url))
        .json(&serde_json::json!({"channelType": "wx-pay", "signType": "HMAC-SHA256"}))
        .send()
        .await
        .expect("open a sandbox merchant")
        .json()
        .await
        .expect("merchant JSON");
    let api_key = merchant["credentialsV2"]["apiKey"]
        .as_str()
        .expect("apiKey")
        .to_owned();
    let mch_id = merchant["mchId"].as_str().expect("mchId").to_owned();
    let creds = serve.data_dir.path().join("creds.json");
    std::fs::write(&creds, merchant["credentialsV2"].to_string()).unwrap();
    let cfg = run_json(serve.admin(&[
        "channel-config",
        "create",
        "--channel-type",
        "wx-pay",
        "--name",
        "WeChat main",
        "--mch-id",
        &mch_id,
        "--api-version",
        "v2",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--base-url",
        merchant["baseUrl"].as_str().expect("baseUrl"),
    ]));
    let config_id = cfg["configId"].as_str().expect("configId").to_owned();
    for args in [
        vec!["channel-config", "list"],
        vec!["channel-config", "show", config_id.as_str()],
    ] {
        let out = run_ok(serve.admin(&args));
        assert!(out.contains(&config_id), "{out}");
        assert!(!out.contains(&api_key), "credentials leaked: {out}");
    }

    // A channel on it.
    let ch = run_json(serve.admin(&[
        "channel",
        "create",
        "--config-id",
        &config_id,
        "--scene-code",
        "mini",
        "--name",
        "WeChat mini-program",
        "--sort",
        "1",
    ]));
    let channel_id = ch["channelId"].as_str().expect("channelId").to_owned();
    let out = run_ok(serve.admin(&["channel", "show", &channel_id]));
    assert!(out.contains("WeChat mini-program"), "{out}");

    // The app applies; the operator sees the application and approves it.
    let client = Client::new(
        &serve.url,
        &app_id,
        Credentials::hmac_sha256(app_key.clone()),
    )
    .unwrap();
    let applied = client
        .apply_binding(&ApplyBindingRequest {
            channel_id: channel_id.clone(),
            store_id: None,
        })
        .await
        .expect("apply for the channel");
    let pending =
        run_json(serve.admin(&["binding", "list", "--state", "pending", "--app-id", &app_id]));
    let pending = pending.as_array().expect("a list");
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["bindingId"], applied.binding_id.as_str());
    assert_eq!(pending[0]["state"], "PENDING");
    run_ok(serve.admin(&["binding", "approve", &applied.binding_id]));
    let approved = run_json(serve.admin(&["binding", "list", "--state", "APPROVED"]));
    assert!(
        approved.to_string().contains(&applied.binding_id),
        "{approved}"
    );
    // Approving twice is refused with the API's error, on stderr.
    let out = serve
        .admin(&["binding", "approve", &applied.binding_id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4220"),
        "{out:?}"
    );

    // An order shows up in the operator's list.
    let order = client
        .create_order(&cashdesk_sdk::CreateOrderRequest::new(
            "T-CLI-1", 100, "Test",
        ))
        .await
        .expect("order");
    assert_eq!(order.channels.len(), 1, "the approved channel is offered");
    let orders = run_json(serve.admin(&["order", "list", "--app-id", &app_id]));
    assert!(orders.to_string().contains(&order.order_id), "{orders}");
    let shown = run_ok(serve.admin(&["order", "show", &order.order_id]));
    assert!(shown.contains("T-CLI-1"), "{shown}");
    // … and by the merchant's number, alone or with its app.
    let by_no = run_json(serve.admin(&["order", "show", "T-CLI-1"]));
    assert_eq!(by_no["orderId"], order.order_id.as_str(), "{by_no}");
    let by_no = run_json(serve.admin(&["order", "show", "T-CLI-1", "--app-id", &app_id]));
    assert_eq!(by_no["orderId"], order.order_id.as_str(), "{by_no}");
    let out = serve.admin(&["order", "show", "T-NOPE"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no order with outTradeNo T-NOPE"),
        "{out:?}"
    );

    // Refund review: the order is paid on the sandbox, the app's refunds
    // wait for the operator, who approves one and rejects the other.
    client
        .pay(&cashdesk_sdk::PaymentRequest::new("T-CLI-1", &channel_id).with_openid("oCli"))
        .await
        .expect("pay");
    let paid = reqwest::Client::new()
        .post(format!("{}/sandbox/api/pay", serve.url))
        .json(&serde_json::json!({"channelType": "wx-pay", "outTradeNo": order.order_id, "result": "SUCCESS"}))
        .send()
        .await
        .expect("sandbox pay");
    assert_eq!(paid.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = client
            .query_pay_result("T-CLI-1", true)
            .await
            .expect("query");
        if serde_json::to_value(q.state).unwrap() == "SUCCESS" {
            break;
        }
        assert!(Instant::now() < deadline, "never paid: {q:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = client
        .create_refund(&cashdesk_sdk::CreateRefundRequest::new(
            "T-CLI-1", "RF-CLI-1", 40,
        ))
        .await
        .expect("refund");
    let second = client
        .create_refund(&cashdesk_sdk::CreateRefundRequest::new(
            "T-CLI-1", "RF-CLI-2", 60,
        ))
        .await
        .expect("refund");
    let pending = run_json(serve.admin(&[
        "refund",
        "list",
        "--state",
        "pending_review",
        "--app-id",
        &app_id,
    ]));
    assert_eq!(pending.as_array().map(Vec::len), Some(2), "{pending}");
    let shown = run_json(serve.admin(&["refund", "show", &first.refund_id]));
    assert_eq!(shown["outRefundNo"], "RF-CLI-1", "{shown}");
    let approved = run_json(serve.admin(&["refund", "approve", &first.refund_id]));
    assert_ne!(approved["state"], "PENDING_REVIEW", "{approved}");
    let rejected = run_json(serve.admin(&["refund", "reject", &second.refund_id]));
    assert_eq!(rejected["state"], "REJECTED", "{rejected}");
    let out = serve
        .admin(&["refund", "approve", &second.refund_id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4220"),
        "{out:?}"
    );

    // Credentials change: only what changes is sent; a bad one is refused
    // with the adapter's reason and nothing changes.
    let patch = serve.data_dir.path().join("patch.json");
    std::fs::write(&patch, r#"{"signType": "SHA1"}"#).unwrap();
    let out = serve
        .admin(&[
            "channel-config",
            "credentials",
            &config_id,
            "--credentials-file",
            patch.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("signType"),
        "{out:?}"
    );
    std::fs::write(&patch, serde_json::json!({ "apiKey": api_key }).to_string()).unwrap();
    let changed = run_json(serve.admin(&[
        "channel-config",
        "credentials",
        &config_id,
        "--credentials-file",
        patch.to_str().unwrap(),
    ]));
    assert!(changed["credentialsUpdatedAt"].is_string(), "{changed}");
    assert!(!changed.to_string().contains(&api_key), "{changed}");

    // The app's key turns; the old one still works inside the window.
    let rotated =
        run_json(serve.admin(&["app", "rotate-key", &app_id, "--overlap-seconds", "600"]));
    let new_key = rotated["appKey"].as_str().expect("new key").to_owned();
    assert_ne!(new_key, app_key);
    client
        .query_pay_result("T-CLI-1", false)
        .await
        .expect("old key, inside the window");
    Client::new(&serve.url, &app_id, Credentials::hmac_sha256(new_key))
        .unwrap()
        .query_pay_result("T-CLI-1", false)
        .await
        .expect("new key");

    // Every write was audited.
    let audit = run_ok(serve.admin(&["audit", "list"]));
    assert!(audit.contains(&config_id), "{audit}");
    assert!(
        audit.contains("channel_config.credentials") && audit.contains("app.rotate_key"),
        "{audit}"
    );

    // A wrong token is refused with the API's error and a non-zero exit.
    let out: Output = serve
        .admin(&["app", "list", "--token", "wrong-token-0123456789"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("4019"),
        "{out:?}"
    );
}

#[test]
fn migrate_creates_and_updates_the_default_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for _ in 0..2 {
        let out = run_ok(
            cashdesk(dir.path())
                .arg("migrate")
                .env("CASHDESK_DATA_DIR", &data),
        );
        assert!(out.contains("sqlite"), "{out}");
    }
    assert!(data.join("cashdesk.db").is_file());
}

#[test]
fn admin_commands_name_the_url_nobody_answers_at() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cashdesk(dir.path())
        .args([
            "app",
            "list",
            "--token",
            "some-token-0123456789",
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&url) && err.contains("--url") && err.contains("CASHDESK_URL"),
        "{err}"
    );
}

#[test]
fn admin_commands_without_a_token_say_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = cashdesk(dir.path())
        .args(["app", "list"])
        .env("CASHDESK_DATA_DIR", dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin token") && err.contains("admin.token"),
        "{err}"
    );
}

// ------------------------------------------- notifications, crashes, instances

#[path = "../../server/tests/api/receiver.rs"]
mod receiver;

use receiver::Receiver;

/// `cashdesk sandbox` on its own (it must keep running, and retrying its
/// notifications, while the cashdesk processes a test kills are down),
/// retrying on a millisecond schedule. Standing alone it notifies any
/// cashdesk on loopback (`/api/cashier-desk/notify/`), as these tests need.
struct StandaloneSandbox {
    child: Child,
    /// `http://127.0.0.1:<port>` (the test API is under `/sandbox/api`).
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for StandaloneSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandaloneSandbox {
    fn start() -> StandaloneSandbox {
        let dir = tempfile::tempdir().unwrap();
        let stderr_file = dir.path().join("sandbox.stderr");
        let mut cmd = cashdesk(dir.path());
        cmd.args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--notify-schedule",
            "200ms,300ms,500ms,1s,1s,2s,2s,2s,2s,2s",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"));
        let (child, url, _) = spawn_reporting(cmd, "cashdesk sandbox", &stderr_file, |line| {
            line.trim()
                .strip_prefix("WeChat Pay base URL")
                .map(|rest| rest.trim().trim_end_matches("/sandbox/wechat").to_owned())
        });
        StandaloneSandbox {
            child,
            url,
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("sandbox call");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// A free port on 127.0.0.1, so a restarted server can take its old
/// address (the sandbox keeps notifying the URL it was given).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A merchant app notified at `receiver`, bound (approved) to a v3
/// mini-program channel of a fresh merchant of `sandbox`, set up through
/// the admin API of `url`: (appId, its credentials, channelId).
async fn notified_shop(
    url: &str,
    token: &str,
    sandbox: &StandaloneSandbox,
    receiver: &Receiver,
) -> (String, Credentials, String) {
    let admin = cashdesk_sdk::AdminClient::new(url, token).unwrap();
    let (status, merchant) = sandbox
        .post(
            "/sandbox/api/merchants",
            serde_json::json!({"channelType": "wx-pay", "signType": "HMAC-SHA256"}),
        )
        .await;
    assert_eq!(status, 201, "{merchant}");
    let config = admin
        .create_channel_config(&cashdesk_sdk::CreateChannelConfigRequest {
            channel_type: "wx-pay".into(),
            name: "sandbox v3".into(),
            mch_id: merchant["mchId"].as_str().unwrap().to_owned(),
            api_version: Some("v3".into()),
            credentials: merchant["credentialsV3"].clone(),
            base_url: Some(merchant["baseUrl"].as_str().unwrap().to_owned()),
        })
        .await
        .expect("channel config");
    let channel = admin
        .create_channel(&cashdesk_sdk::CreateChannelRequest {
            config_id: config.config_id,
            scene_code: "mini".into(),
            channel_name: "mini".into(),
            sort: None,
        })
        .await
        .expect("channel");
    let reg = admin
        .create_app(&cashdesk_sdk::RegisterAppRequest {
            app_name: "notified shop".into(),
            notify_url: Some(receiver.url("/merchant/notify")),
            ..Default::default()
        })
        .await
        .expect("app");
    let credentials = Credentials::hmac_sha256(reg.app_key.clone());
    receiver.trust(&reg.app_id, &credentials);
    let client = Client::new(url, &reg.app_id, credentials.clone()).unwrap();
    let applied = client
        .apply_binding(&ApplyBindingRequest {
            channel_id: channel.channel_id.clone(),
            store_id: None,
        })
        .await
        .expect("apply");
    admin
        .approve_binding(&applied.binding_id)
        .await
        .expect("approve");
    (reg.app_id, credentials, channel.channel_id)
}

/// Creates an order and starts paying it (PAYING): (outTradeNo, orderId).
async fn paying(client: &Client, channel_id: &str, i: usize) -> (String, String) {
    let no = format!("T-BURST-{i:03}");
    let created = client
        .create_order(&cashdesk_sdk::CreateOrderRequest::new(
            &no,
            100 + i as i64,
            "Tea",
        ))
        .await
        .expect("order");
    client
        .pay(&cashdesk_sdk::PaymentRequest::new(&no, channel_id).with_openid("oBurst"))
        .await
        .expect("pay");
    (no, created.order_id)
}

async fn wait_for(timeout: Duration, mut cond: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `kill -9` of `cashdesk serve` while the buyers of a burst of orders pay
/// at the channel, then a restart on the same data folder: every order the
/// channel saw paid is SUCCESS (the channel's retried notifications and
/// the poller), and every PAY_SUCCESS reaches the merchant, acknowledged
/// once. Then the operator's notification commands.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_burst_loses_nothing() {
    let sandbox = StandaloneSandbox::start();
    let receiver = Receiver::start().await;
    let port = free_port();
    let env = [
        ("CASHDESK_LISTEN", format!("127.0.0.1:{port}")),
        ("CASHDESK_SANDBOX", "false".to_owned()),
        (
            "CASHDESK_NOTIFY_SCHEDULE",
            "100ms,200ms,400ms,800ms,1s,1s,2s".to_owned(),
        ),
        ("CASHDESK_NOTIFY_TIMEOUT_MS", "1000".to_owned()),
        ("CASHDESK_QUERY_SCHEDULE", "1s,500ms".to_owned()),
    ];
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut first = Serve::start_in(dir.clone(), &env);
    let token = std::fs::read_to_string(first.data().join("admin.token")).unwrap();
    let token = token.trim().to_owned();
    let (app_id, credentials, channel_id) =
        notified_shop(&first.url, &token, &sandbox, &receiver).await;
    let client = Client::new(&first.url, &app_id, credentials).unwrap();

    const N: usize = 24;
    let mut orders = Vec::new();
    for i in 0..N {
        orders.push(paying(&client, &channel_id, i).await);
    }
    // The buyers pay, one every 40 ms; cashdesk dies half way through.
    let pay = {
        let url = sandbox.url.clone();
        let ids: Vec<String> = orders.iter().map(|(_, id)| id.clone()).collect();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut paid = Vec::new();
            for id in ids {
                let resp = http
                    .post(format!("{url}/sandbox/api/pay"))
                    .json(&serde_json::json!({"channelType": "wx-pay", "outTradeNo": id, "result": "SUCCESS"}))
                    .send()
                    .await
                    .expect("sandbox pay");
                if resp.status().is_success() {
                    paid.push(id);
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            paid
        })
    };
    tokio::time::sleep(Duration::from_millis(40 * N as u64 / 2)).await;
    assert!(!pay.is_finished(), "killed during the burst");
    first.kill9();
    let paid_at_channel = pay.await.expect("payer task");
    assert_eq!(paid_at_channel.len(), N, "the channel took every payment");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = Serve::start_in(dir.clone(), &env);
    assert_eq!(second.url, first.url, "same address after the restart");

    let all_paid = wait_for(Duration::from_secs(60), async || {
        for (no, _) in &orders {
            let q = client.query_pay_result(no, false).await.expect("query");
            if serde_json::to_value(q.state).unwrap() != "SUCCESS" {
                return false;
            }
        }
        true
    })
    .await;
    assert!(
        all_paid,
        "every order the channel saw paid is SUCCESS; stderr:\n{}",
        second.stderr()
    );
    let all_told = receiver
        .wait(Duration::from_secs(60), |r| {
            paid_at_channel
                .iter()
                .all(|id| !r.acked_for(id, "PAY_SUCCESS").is_empty())
        })
        .await;
    assert!(
        all_told,
        "every PAY_SUCCESS reached the merchant: {} of {N}; stderr:\n{}",
        receiver.acked().len(),
        second.stderr()
    );
    assert!(
        receiver.unverified().is_empty(),
        "{:?}",
        receiver.unverified()
    );
    // One notification per order, acknowledged (a repeat is possible only
    // if the kill fell between the acknowledgement and its record; the
    // notifyId is then the same).
    let mut ids_by_order: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    for n in receiver.acked() {
        ids_by_order
            .entry(n.order_id)
            .or_default()
            .insert(n.notify_id);
    }
    assert!(
        ids_by_order.values().all(|ids| ids.len() == 1),
        "{ids_by_order:?}"
    );

    // The operator's view through the CLI. The receiver records its
    // acknowledgement before cashdesk records the delivery (and a delivery
    // acknowledged just before the kill is sent again after the restart),
    // so the list is polled until every order's notification is there.
    let list_delivered = || {
        run_json(second.admin(&[
            "notification",
            "list",
            "--app-id",
            &app_id,
            "--state",
            "delivered",
            "--limit",
            "100",
        ]))
    };
    let mut delivered = list_delivered();
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.as_array().map(Vec::len) != Some(N) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        delivered = list_delivered();
    }
    assert_eq!(delivered.as_array().map(Vec::len), Some(N), "{delivered}");
    let notify_id = delivered[0]["notifyId"].as_str().unwrap().to_owned();
    let shown = run_json(second.admin(&["notification", "show", &notify_id]));
    assert_eq!(shown["state"], "DELIVERED");
    let log = shown["attemptLog"].as_array().expect("attempt log");
    assert_eq!(log.last().unwrap()["outcome"], "DELIVERED", "{shown}");
    assert_eq!(log.last().unwrap()["httpStatus"], 200, "{shown}");
    let before = receiver.deliveries_of(&notify_id).len();
    let resent = run_json(second.admin(&["notification", "resend", &notify_id]));
    assert_eq!(resent["notifyId"], notify_id.as_str());
    assert!(
        receiver
            .wait(Duration::from_secs(15), |r| r
                .deliveries_of(&notify_id)
                .len()
                > before)
            .await,
        "the resend reached the merchant"
    );
    let out = second
        .admin(&["notification", "list", "--state", "lost"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The app setting, through the CLI.
    let app = run_json(second.admin(&[
        "app",
        "settings",
        &app_id,
        "--auto-refund-paid-after-close",
        "true",
    ]));
    assert_eq!(app["autoRefundPaidAfterClose"], true, "{app}");
    assert_eq!(app["refundReview"], false, "{app}");
    let audit = run_ok(second.admin(&["audit", "list"]));
    assert!(
        audit.contains("notification.resend") && audit.contains("app.settings"),
        "{audit}"
    );
}

/// Two `cashdesk serve` processes on one PostgreSQL database under a
/// burst: every notification is delivered, and none by both at once (the
/// receiver answers slowly and fails each first attempt, so retries are up
/// for grabs while the other instance may be sending).
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_postgres_deliver_each_notification_once() {
    let Some(server_url) = std::env::var("CASHDESK_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true, but CASHDESK_TEST_POSTGRES_URL is not set: the PostgreSQL variant would pass without running (set it, as .ci/run does)"
        );
        eprintln!("skipping: CASHDESK_TEST_POSTGRES_URL not set (two instances need PostgreSQL)");
        return;
    };
    use sqlx::Connection as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("cd_cli_{}_{nanos}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&server_url)
        .await
        .expect("PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let mut db_url = url::Url::parse(&server_url).unwrap();
    db_url.set_path(&format!("/{name}"));
    /// Drops the database when the test ends, also when it panics.
    struct DropDb(String, String);
    impl Drop for DropDb {
        fn drop(&mut self) {
            let (server, name) = (self.0.clone(), self.1.clone());
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
    let _drop_db = DropDb(server_url.clone(), name.clone());

    let sandbox = StandaloneSandbox::start();
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(100));
    receiver.fail_first_attempts(true);
    let token = "two-instances-operator-token";
    let env = [
        ("CASHDESK_DATABASE_URL", db_url.to_string()),
        ("CASHDESK_SANDBOX", "false".to_owned()),
        ("CASHDESK_ADMIN_TOKEN", token.to_owned()),
        (
            "CASHDESK_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        (
            "CASHDESK_NOTIFY_SCHEDULE",
            "100ms,100ms,200ms,400ms,1s".to_owned(),
        ),
        ("CASHDESK_NOTIFY_TIMEOUT_MS", "2000".to_owned()),
    ];
    let a = Serve::start_in(Arc::new(tempfile::tempdir().unwrap()), &env);
    let b = Serve::start_in(Arc::new(tempfile::tempdir().unwrap()), &env);
    let (app_id, credentials, channel_id) = notified_shop(&a.url, token, &sandbox, &receiver).await;
    let clients = [
        Client::new(&a.url, &app_id, credentials.clone()).unwrap(),
        Client::new(&b.url, &app_id, credentials).unwrap(),
    ];
    // A burst through both instances; the channel notifies whichever
    // instance started the payment.
    const N: usize = 20;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(paying(&clients[i % 2], &channel_id, i).await.1);
    }
    let pays = ids.iter().map(|id| {
        sandbox.post(
            "/sandbox/api/pay",
            serde_json::json!({"channelType": "wx-pay", "outTradeNo": id, "result": "SUCCESS"}),
        )
    });
    for (status, v) in futures::future::join_all(pays).await {
        assert_eq!(status, 200, "{v}");
    }
    let all = receiver
        .wait(Duration::from_secs(60), |r| {
            ids.iter()
                .all(|id| !r.acked_for(id, "PAY_SUCCESS").is_empty())
        })
        .await;
    assert!(
        all,
        "every notification delivered: {} of {N}\nA:\n{}\nB:\n{}",
        receiver.acked().len(),
        a.stderr(),
        b.stderr()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.max_in_flight(),
        1,
        "never delivered by both at once"
    );
    let mut acked: std::collections::HashMap<String, usize> = Default::default();
    for n in receiver.acked() {
        *acked.entry(n.notify_id).or_default() += 1;
    }
    assert_eq!(acked.len(), N);
    assert!(
        acked.values().all(|&c| c == 1),
        "acknowledged once each: {acked:?}"
    );
    assert!(
        receiver.unverified().is_empty(),
        "{:?}",
        receiver.unverified()
    );
    // Each instance's log names the attempts it made; between them, all.
    // (Polled: the receiver acknowledges before the sender records it.)
    let admin = cashdesk_sdk::AdminClient::new(&b.url, token).unwrap();
    let mut listed = Value::Null;
    wait_for(Duration::from_secs(30), async || {
        listed = admin
            .list_notifications(&cashdesk_sdk::NotificationQuery {
                app_id: Some(app_id.clone()),
                state: Some("DELIVERED".into()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .expect("list");
        listed.as_array().map(Vec::len) == Some(N)
    })
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(N), "{listed}");
}

/// `cashdesk sandbox`: the simulators alone, on their own port; the
/// printed URLs work and the merchant-opening commands it prints answer
/// in the config shapes.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_runs_alone_and_prints_every_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cashdesk(dir.path())
        .args(["sandbox", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cashdesk sandbox");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.matches("curl -s -X POST").count() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no banner within 60 s: {out}");
            }
        }
    }
    let url_after = |label: &str| -> String {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("{label}: {out}"))
            .trim()
            .to_owned()
    };
    let alipay = url_after("Alipay gateway");
    let lakala = url_after("Lakala base URL");
    assert!(alipay.ends_with("/sandbox/alipay/gateway.do"), "{out}");
    assert!(lakala.ends_with("/sandbox/lakala"), "{out}");
    let base = lakala.trim_end_matches("/sandbox/lakala").to_owned();
    for body in [
        r#"{"channelType":"wx-pay","signType":"HMAC-SHA256"}"#,
        r#"{"channelType":"ali-pay"}"#,
        r#"{"channelType":"lakala"}"#,
    ] {
        assert!(out.contains(body), "{body}: {out}");
    }
    let http = reqwest::Client::new();
    let opened: Value = http
        .post(format!("{base}/sandbox/api/merchants"))
        .header("content-type", "application/json")
        .body(r#"{"channelType":"lakala"}"#)
        .send()
        .await
        .expect("open lakala")
        .json()
        .await
        .expect("json");
    assert_eq!(opened["baseUrl"], lakala.as_str());
    assert!(
        opened["credentials"]["subAppId"]
            .as_str()
            .is_some_and(|s| s.starts_with("wx")),
        "{opened}"
    );
    let opened: Value = http
        .post(format!("{base}/sandbox/api/merchants"))
        .header("content-type", "application/json")
        .body(r#"{"channelType":"ali-pay"}"#)
        .send()
        .await
        .expect("open alipay")
        .json()
        .await
        .expect("json");
    assert_eq!(opened["baseUrl"], alipay.as_str());
    let _ = child.kill();
    let _ = child.wait();
}

// --------------------------------------------------------------- sandbox

/// `cashdesk sandbox --help` describes every simulator and where it
/// answers, and `cashdesk --help` says it is more than WeChat Pay.
#[test]
fn sandbox_help_names_every_channel_and_its_paths() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_ok(cashdesk(dir.path()).args(["sandbox", "--help"]));
    for needle in [
        "WeChat Pay v2",
        "WeChat Pay v3",
        "Alipay",
        "Lakala",
        "/sandbox/wechat/pay/unifiedorder",
        "/sandbox/wechat/v3/pay/transactions/",
        "/sandbox/wechat/secapi/pay/refund",
        "/sandbox/alipay/gateway.do",
        "/sandbox/lakala/api/v3/labs/",
        "/sandbox/api/merchants",
        "--notify-allow",
        "--oauth-domain",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let top = run_ok(cashdesk(dir.path()).arg("--help"));
    let line = top
        .lines()
        .find(|l| l.trim_start().starts_with("sandbox"))
        .unwrap_or_else(|| panic!("{top}"));
    assert!(line.contains("Alipay") && line.contains("Lakala"), "{line}");
}

/// `cashdesk sandbox` alone, on a free port: it reports where it listens,
/// opens a merchant through its test API, answers a WeChat Pay v2 call the
/// way WeChat does (signed request verified, signed answer), and stops on
/// SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_runs_alone_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let stderr_file = dir.path().join("sandbox.stderr");
    let mut child = cashdesk(dir.path())
        .args(["sandbox", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--notify-schedule", "100ms,200ms"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .expect("spawn cashdesk sandbox");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut report = String::new();
    let mut base = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while base.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!(
                "no report within 60 s: {report}\nstderr:\n{}",
                std::fs::read_to_string(&stderr_file).unwrap_or_default()
            );
        };
        if let Some(url) = line.trim().strip_prefix("WeChat Pay base URL") {
            base = Some(url.trim().to_owned());
        }
        report.push_str(&line);
        report.push('\n');
    }
    let base = base.unwrap();
    assert!(report.contains("SANDBOX"), "clearly labelled: {report}");
    let origin = base
        .strip_suffix("/sandbox/wechat")
        .unwrap_or_else(|| panic!("base URL {base}"));
    assert!(
        origin.starts_with("http://127.0.0.1:") && !origin.ends_with(":0"),
        "the bound port is reported: {report}"
    );

    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{origin}/sandbox/api/merchants"))
        .json(&serde_json::json!({"channelType": "wx-pay", "signType": "MD5"}))
        .send()
        .await
        .expect("open a merchant");
    assert_eq!(resp.status(), 201);
    let m: Value = resp.json().await.unwrap();
    assert_eq!(m["baseUrl"], base.as_str(), "{m}");
    let mch_id = m["mchId"].as_str().expect("mchId").to_owned();
    let v2 = &m["credentialsV2"];
    let key = v2["apiKey"].as_str().expect("apiKey");
    assert!(
        v2["certPem"]
            .as_str()
            .is_some_and(|c| c.contains("CERTIFICATE"))
    );
    assert!(
        m["credentialsV3"]["privateKeyPem"]
            .as_str()
            .is_some_and(|k| k.contains("PRIVATE KEY"))
    );

    // pay/orderquery for an order it never saw: a signed, verified
    // business answer; the same call with a wrong key: SIGNERROR.
    let query = |api_key: &str| {
        let mut f = std::collections::BTreeMap::new();
        f.insert("appid".to_owned(), v2["appId"].as_str().unwrap().to_owned());
        f.insert("mch_id".to_owned(), mch_id.clone());
        f.insert("out_trade_no".to_owned(), "P-NEVER-SEEN".to_owned());
        f.insert(
            "nonce_str".to_owned(),
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".to_owned(),
        );
        let sign = cashdesk_crypto::wxv2::sign(&f, api_key, cashdesk_crypto::wxv2::WxSignType::Md5);
        f.insert("sign".to_owned(), sign);
        let mut xml = String::from("<xml>");
        for (k, v) in &f {
            xml.push_str(&format!("<{k}>{v}</{k}>"));
        }
        xml + "</xml>"
    };
    let answer = http
        .post(format!("{base}/pay/orderquery"))
        .body(query(key))
        .send()
        .await
        .expect("orderquery")
        .text()
        .await
        .unwrap();
    assert!(
        answer.contains("<return_code><![CDATA[SUCCESS]]></return_code>")
            && answer.contains("ORDERNOTEXIST")
            && answer.contains("<sign>"),
        "{answer}"
    );
    let refused = http
        .post(format!("{base}/pay/orderquery"))
        .body(query("0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .expect("orderquery")
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("<return_code><![CDATA[FAIL]]></return_code>"),
        "{refused}"
    );

    // Its keys are kept, privately, in the data folder.
    let sandbox_dir = dir.path().join("data").join("sandbox");
    assert!(sandbox_dir.is_dir(), "{}", sandbox_dir.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for entry in std::fs::read_dir(&sandbox_dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let mode = entry.metadata().unwrap().permissions().mode();
                assert_eq!(mode & 0o077, 0, "{} is private", entry.path().display());
            }
        }
    }

    let status = sigterm_and_wait(&mut child, &stderr_file);
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        std::fs::read_to_string(&stderr_file).unwrap_or_default()
    );
    assert!(
        http.get(format!("{origin}/sandbox/api/faults"))
            .send()
            .await
            .is_err(),
        "the port is closed after shutdown"
    );
}

// ------------------------------------------------------------ PostgreSQL

/// A fresh PostgreSQL database on the server of
/// `CASHDESK_TEST_POSTGRES_URL`, dropped when this is dropped.
struct PgDatabase {
    server_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create() -> Option<PgDatabase> {
        use sqlx::Connection as _;
        let Some(server_url) = std::env::var("CASHDESK_TEST_POSTGRES_URL")
            .ok()
            .filter(|s| !s.is_empty())
        else {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true, but CASHDESK_TEST_POSTGRES_URL is not set: the PostgreSQL variant would pass without running (set it, as .ci/run does)"
            );
            eprintln!("skipping: CASHDESK_TEST_POSTGRES_URL not set");
            return None;
        };
        let name = format!("cd_cli_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&server_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let _ = conn.close().await;
        let mut url = reqwest::Url::parse(&server_url).expect("URL");
        url.set_path(&format!("/{name}"));
        Some(PgDatabase {
            server_url,
            name,
            url: url.to_string(),
        })
    }

    async fn connect(&self) -> sqlx::PgConnection {
        use sqlx::Connection as _;
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            use sqlx::Connection as _;
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&server_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// The binary on a `postgres://` `CASHDESK_DATABASE_URL`: `migrate` builds
/// the schema (twice is fine), `serve` starts on it, reports it, keeps its
/// orders there and stops on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_and_serve_on_postgresql() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = run_ok(
            cashdesk(dir.path())
                .arg("migrate")
                .env("CASHDESK_DATA_DIR", dir.path().join("data"))
                .env("CASHDESK_DATABASE_URL", &db.url),
        );
        assert!(out.contains("postgres"), "{out}");
    }
    assert!(
        !dir.path().join("data").join("cashdesk.db").exists(),
        "no SQLite file next to a PostgreSQL database"
    );
    let mut conn = db.connect().await;
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name IN ('apps', 'orders', 'refunds', 'notifications')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 4, "migrate created the schema");

    let mut serve = Serve::start_with(&[("CASHDESK_DATABASE_URL", &db.url)]);
    assert!(serve.report.contains("postgres"), "{}", serve.report);
    let health: Value = reqwest::get(format!("{}/healthz", serve.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, serde_json::json!({"status": "ok", "db": "ok"}));
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(serve.data().join("demo-app.json")).unwrap())
            .unwrap();
    let client = Client::new(
        &serve.url,
        demo["appId"].as_str().unwrap(),
        Credentials::hmac_sha256(demo["appKey"].as_str().unwrap()),
    )
    .unwrap();
    let order = client
        .create_order(&cashdesk_sdk::CreateOrderRequest::new(
            "T-PG-1", 100, "Test",
        ))
        .await
        .expect("order");
    let (stored,): (String,) =
        sqlx::query_as("SELECT order_id FROM orders WHERE out_trade_no = $1")
            .bind("T-PG-1")
            .fetch_one(&mut conn)
            .await
            .expect("the order is in PostgreSQL");
    assert_eq!(stored, order.order_id);
    let _ = sqlx::Connection::close(conn).await;

    let status = serve.sigterm_and_wait();
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        serve.stderr()
    );
}

// ------------------------------------------------------------------ logs

/// `CASHDESK_LOG_FORMAT=json`: every stderr line is one JSON object with a
/// timestamp, a level and a message, and no secret appears in the logs —
/// not the operator token, the master key, an app key, a channel key, a
/// cashier token — even at debug level, after requests that carry them.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_json_lines_without_secrets() {
    let admin_token = "op-token-6f1d0c9e2b7a4f58a3c1";
    let mut serve = Serve::start_with(&[
        ("CASHDESK_LOG_FORMAT", "json"),
        ("CASHDESK_LOG", "debug"),
        ("CASHDESK_ADMIN_TOKEN", admin_token),
    ]);
    assert!(
        !serve.report.contains(admin_token),
        "a configured token is not printed"
    );
    let data = serve.data();
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("demo-app.json")).unwrap())
            .unwrap();
    let demo_key = demo["appKey"].as_str().unwrap().to_owned();
    let master_key = std::fs::read_to_string(data.join("master.key"))
        .unwrap()
        .trim()
        .to_owned();
    let client = Client::new(
        &serve.url,
        demo["appId"].as_str().unwrap(),
        Credentials::hmac_sha256(demo_key.clone()),
    )
    .unwrap();

    // Requests that carry secrets: signed API calls, a bad signature, the
    // cashier page with its token, operator calls with the token, a channel
    // config with keys, a new app whose key is answered once.
    let order = client
        .create_order(&cashdesk_sdk::CreateOrderRequest::new(
            "T-LOG-1", 100, "Test",
        ))
        .await
        .expect("order");
    let wrong = Client::new(
        &serve.url,
        demo["appId"].as_str().unwrap(),
        Credentials::hmac_sha256("not-the-key"),
    )
    .unwrap();
    assert!(wrong.query_pay_result("T-LOG-1", false).await.is_err());
    let page = reqwest::get(&order.cashier_url).await.unwrap();
    assert_eq!(page.status(), 200);
    let admin = cashdesk_sdk::AdminClient::new(&serve.url, admin_token).unwrap();
    let merchant: Value = reqwest::Client::new()
        .post(format!("{}/sandbox/api/merchants", serve.url))
        .json(&serde_json::json!({"channelType": "wx-pay"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v3 = merchant["credentialsV3"].clone();
    admin
        .create_channel_config(&cashdesk_sdk::CreateChannelConfigRequest {
            channel_type: "wx-pay".into(),
            name: "logs".into(),
            mch_id: merchant["mchId"].as_str().unwrap().into(),
            api_version: Some("v3".into()),
            credentials: v3.clone(),
            base_url: Some(merchant["baseUrl"].as_str().unwrap().into()),
        })
        .await
        .expect("channel config");
    let app = admin
        .create_app(&cashdesk_sdk::RegisterAppRequest {
            app_name: "Logs shop".into(),
            ..Default::default()
        })
        .await
        .expect("app");
    let bad_admin = cashdesk_sdk::AdminClient::new(&serve.url, "wrong-token-0123456789").unwrap();
    assert!(bad_admin.list_channels().await.is_err());

    let status = serve.sigterm_and_wait();
    assert!(status.success(), "exit status {status}");
    let stderr = serve.stderr();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 5, "some logs were written:\n{stderr}");
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(v["target"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("cashdesk serving")),
        "{stderr}"
    );
    let v3_key_line = v3["privateKeyPem"]
        .as_str()
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    for (what, secret) in [
        ("operator token", admin_token),
        ("master key", master_key.as_str()),
        ("demo app key", demo_key.as_str()),
        ("new app key", app.app_key.as_str()),
        ("cashier token", order.token.as_str()),
        ("APIv3 key", v3["apiV3Key"].as_str().unwrap()),
        ("merchant private key", v3_key_line.as_str()),
    ] {
        assert!(secret.len() >= 16, "{what} is a real secret");
        assert!(!stderr.contains(secret), "the {what} is in the logs");
    }
}

// ---------------------------------------------------------------- config

/// `./cashdesk.toml` is read, and a `CASHDESK_*` variable wins over it.
#[tokio::test(flavor = "multi_thread")]
async fn config_file_is_read_and_environment_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cashdesk.toml"),
        "sandbox = false\nadmin_token = \"file-token-0123456789\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let env_token = "env-token-9876543210";
    let mut serve = Serve::start_in(
        Arc::new(dir),
        &[("CASHDESK_ADMIN_TOKEN", env_token.to_string())],
    );
    // From the file: the sandbox is off, logs are JSON.
    assert!(
        serve.report.contains("sandbox       off"),
        "{}",
        serve.report
    );
    let merchants = reqwest::Client::new()
        .post(format!("{}/sandbox/api/merchants", serve.url))
        .json(&serde_json::json!({"channelType": "wx-pay"}))
        .send()
        .await
        .unwrap();
    assert_eq!(merchants.status(), 404);
    // From the environment, over the file: the operator token.
    let env_admin = cashdesk_sdk::AdminClient::new(&serve.url, env_token).unwrap();
    env_admin
        .list_channels()
        .await
        .expect("the environment's token");
    let file_admin = cashdesk_sdk::AdminClient::new(&serve.url, "file-token-0123456789").unwrap();
    assert!(file_admin.list_channels().await.is_err());
    assert!(
        !dir_has_token_file(&serve),
        "a configured token is not generated"
    );
    let status = serve.sigterm_and_wait();
    assert!(status.success());
    let stderr = serve.stderr();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "JSON logs: {first}"
    );
}

/// A misspelt key in `cashdesk.toml` stops the start and is named; a
/// misspelt `CASHDESK_*` variable is named in a warning.
#[test]
fn unknown_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cashdesk.toml"), "sanbox = false\n").unwrap();
    let out = cashdesk(dir.path())
        .arg("serve")
        .env("CASHDESK_LISTEN", "127.0.0.1:0")
        .env("CASHDESK_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sanbox"), "{stderr}");
    assert!(!dir.path().join("data").exists(), "nothing started");

    std::fs::remove_file(dir.path().join("cashdesk.toml")).unwrap();
    let mut serve = Serve::start_in(Arc::new(dir), &[("CASHDESK_SANBOX", "false".to_owned())]);
    assert!(
        serve.report.contains("sandbox       ON"),
        "{}",
        serve.report
    );
    assert!(serve.sigterm_and_wait().success());
    let stderr = serve.stderr();
    assert!(
        stderr.contains("CASHDESK_SANBOX is not a cashdesk setting"),
        "{stderr}"
    );
}

/// `CASHDESK_MODE=production` (tests cannot listen on a public address):
/// no demo app and no sandbox by default; with the sandbox asked for, it
/// answers only on its own loopback listener, which the report names.
#[tokio::test(flavor = "multi_thread")]
async fn production_mode_has_no_demo_app_and_keeps_the_sandbox_apart() {
    let mut serve = Serve::start_with(&[("CASHDESK_MODE", "production")]);
    let report = serve.report.clone();
    assert!(
        report.contains("mode          production: set explicitly"),
        "{report}"
    );
    assert!(report.contains("sandbox       off"), "{report}");
    assert!(
        !report.contains("Demo app") && !report.contains("appKey"),
        "{report}"
    );
    assert!(!serve.data().join("demo-app.json").exists());
    assert!(serve.sigterm_and_wait().success());

    let serve = Serve::start_with(&[
        ("CASHDESK_MODE", "production"),
        ("CASHDESK_SANDBOX", "true"),
    ]);
    let report = serve.report.clone();
    let sandbox_url = report
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("sandbox       ON at ")?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("the sandbox's own URL: {report}"));
    assert!(sandbox_url.starts_with("http://127.0.0.1:"), "{report}");
    assert_ne!(sandbox_url, serve.url);
    assert!(!report.contains("appKey"), "{report}");
    let http = reqwest::Client::new();
    let body = serde_json::json!({"channelType": "wx-pay"});
    let public = http
        .post(format!("{}/sandbox/api/merchants", serve.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), 404);
    let own = http
        .post(format!("{sandbox_url}/sandbox/api/merchants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
}

/// 500 forged notifications from one address: refused (429 past the
/// public rate limit), and a handful of log lines, not 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_forged_notifications_writes_few_log_lines() {
    let mut serve = Serve::start();
    let admin = cashdesk_sdk::AdminClient::new(
        &serve.url,
        std::fs::read_to_string(serve.data().join("admin.token"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let configs = admin.list_channel_configs().await.unwrap();
    let config_id = configs[0]["configId"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let mut limited = 0;
    for _ in 0..500 {
        let r = http
            .post(format!("{}/api/cashier-desk/notify/{config_id}", serve.url))
            .body("<xml><sign>forged</sign></xml>")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0, "the public rate limit refused some");
    assert!(serve.sigterm_and_wait().success());
    let stderr = serve.stderr();
    let warnings = stderr.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 5, "{warnings} warnings:\n{stderr}");
    assert!(stderr.contains("notification refused"), "{stderr}");
}

fn dir_has_token_file(serve: &Serve) -> bool {
    serve.data().join("admin.token").exists()
}

/// `cashdesk store …`: a chain's stores and their identities, as the
/// README's walkthrough uses them (the identity piped in on stdin).
#[tokio::test(flavor = "multi_thread")]
async fn store_commands_manage_stores_and_identities() {
    let serve = Serve::start();
    let app = run_json(serve.admin(&["app", "create", "--name", "Chain"]));
    let app_id = app["appId"].as_str().expect("appId").to_owned();
    let app_key = app["appKey"].as_str().expect("appKey").to_owned();
    let store = run_json(serve.admin(&[
        "store",
        "create",
        "--app-id",
        &app_id,
        "--store-id",
        "SH-001",
        "--name",
        "上海店",
    ]));
    assert_eq!(
        (store["storeId"].as_str(), store["enabled"].as_bool()),
        (Some("SH-001"), Some(true)),
        "{store}"
    );
    run_json(serve.admin(&[
        "store",
        "create",
        "--app-id",
        &app_id,
        "--store-id",
        "BJ-002",
        "--name",
        "北京店",
        "--disabled",
    ]));
    let listed = run_json(serve.admin(&["store", "list", "--app-id", &app_id]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[0]["storeId"], "BJ-002");
    assert_eq!(listed[0]["enabled"], false);

    // A Lakala app and a store terminal of it, opened on the sandbox.
    let http = reqwest::Client::new();
    let open = |body: Value| {
        let http = http.clone();
        let url = format!("{}/sandbox/api/merchants", serve.url);
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .expect("sandbox")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let lkl = open(serde_json::json!({"channelType": "lakala"})).await;
    let creds = serve.data_dir.path().join("lakala.json");
    std::fs::write(&creds, lkl["credentials"].to_string()).unwrap();
    let cfg = run_json(serve.admin(&[
        "channel-config",
        "create",
        "--channel-type",
        "lakala",
        "--name",
        "Lakala",
        "--mch-id",
        lkl["mchId"].as_str().expect("mchId"),
        "--api-version",
        "v3",
        "--credentials-file",
        creds.to_str().unwrap(),
        "--base-url",
        lkl["baseUrl"].as_str().expect("baseUrl"),
    ]));
    let config_id = cfg["configId"].as_str().expect("configId").to_owned();
    let terminal =
        open(serde_json::json!({"channelType": "lakala", "appId": lkl["credentials"]["appId"]}))
            .await;
    let mut child = serve
        .admin(&[
            "store",
            "set-identity",
            &app_id,
            "SH-001",
            &config_id,
            "--identity-file",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(terminal["identity"].to_string().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().expect("set-identity");
    assert!(out.status.success(), "{out:?}");
    let set: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(set["mchId"], terminal["merchantNo"], "{set}");
    let ids = run_json(serve.admin(&["store", "identities", &app_id, "SH-001"]));
    assert_eq!(ids[0]["identity"], terminal["identity"], "{ids}");
    // A bad identity is refused before or by the server, naming the field.
    let bad = serve.data_dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"merchantNo": "822"}"#).unwrap();
    let out = serve
        .admin(&[
            "store",
            "set-identity",
            &app_id,
            "SH-001",
            &config_id,
            "--identity-file",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4000") && err.contains("termNo"), "{err}");

    // Orders of the disabled store are refused; enabled, they are listed
    // per store.
    let client = Client::new(&serve.url, &app_id, Credentials::hmac_sha256(app_key)).unwrap();
    let mut req = cashdesk_sdk::CreateOrderRequest::new("T-STORE-1", 100, "Coffee");
    req.store_id = Some("BJ-002".into());
    match client.create_order(&req).await {
        Err(cashdesk_sdk::SdkError::Api { code, .. }) => assert_eq!(code, 4034),
        other => panic!("{other:?}"),
    }
    run_ok(serve.admin(&["store", "enable", &app_id, "BJ-002"]));
    let created = client.create_order(&req).await.expect("order");
    let orders = run_json(serve.admin(&["order", "list", "--store-id", "BJ-002"]));
    assert_eq!(orders[0]["orderId"], created.order_id.as_str(), "{orders}");
    assert_eq!(
        run_json(serve.admin(&["order", "list", "--store-id", "SH-001"]))
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let renamed =
        run_json(serve.admin(&["store", "rename", &app_id, "BJ-002", "--name", "北京旗舰店"]));
    assert_eq!(renamed["name"], "北京旗舰店");
    run_ok(serve.admin(&["store", "delete-identity", &app_id, "SH-001", &config_id]));
    let shown = run_json(serve.admin(&["store", "show", &app_id, "SH-001"]));
    assert_eq!(shown["identities"], serde_json::json!([]), "{shown}");
}

// ----------------------------------------------------------------- bench

/// `cashdesk bench` with the given arguments and a JSON report; the
/// report (also checked against what was printed).
fn bench(cwd: &Path, args: &[&str]) -> Value {
    let json = cwd.join("figures.json");
    let stdout = run_ok(
        cashdesk(cwd)
            .arg("bench")
            .args(args)
            .arg("--json")
            .arg(&json),
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the --json file")).expect("JSON");
    let per_second = report["perSecond"].as_f64().expect("perSecond");
    assert!(
        stdout.contains(&format!("{per_second:.0} ")),
        "the printed figures are the JSON ones:\n{stdout}\n{report:#}"
    );
    assert!(stdout.contains("errors: none"), "{stdout}");
    report
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name}: {report:#}"))
}

/// The whole cycle, end to end: every cycle counted is a merchant
/// notification received with a valid signature, once; each stage has its
/// percentiles; the server's memory and CPU and the `/healthz` comparison
/// are there.
#[test]
fn bench_runs_the_whole_cycle_and_reports_every_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = bench(
        dir.path(),
        &[
            "--clients",
            "4",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--baseline",
            "1s",
        ],
    );
    let completed = report["completed"].as_u64().expect("completed");
    assert!(completed > 0, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    assert_eq!(report["scenario"], "cycle");
    assert_eq!(report["channel"], "wx-v2-mini");
    for name in [
        "order",
        "payment",
        "buyer pays (sandbox)",
        "channel notification",
        "merchant delivery",
        "cycle",
    ] {
        let s = stage(&report, name);
        assert_eq!(s["count"].as_u64(), Some(completed), "{name}: {s}");
        let (p50, p99, max) = (
            s["p50Ms"].as_f64().expect("p50"),
            s["p99Ms"].as_f64().expect("p99"),
            s["maxMs"].as_f64().expect("max"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{name}: {s}");
    }
    // The cycle contains its stages.
    assert!(stage(&report, "cycle")["maxMs"].as_f64() >= stage(&report, "order")["maxMs"].as_f64());
    let notes = &report["merchantNotifications"];
    assert!(notes["received"].as_u64().expect("received") >= completed);
    assert_eq!(notes["duplicates"], 0, "{report:#}");
    assert_eq!(notes["badSignatures"], 0, "{report:#}");
    let server = &report["server"];
    assert_eq!(server["backend"], "sqlite");
    let (idle, peak) = (
        server["rssIdleMib"].as_f64().expect("idle RSS"),
        server["rssPeakMib"].as_f64().expect("peak RSS"),
    );
    assert!(1.0 < idle && idle <= peak, "{server}");
    assert!(server["cpuMsPerOp"].as_f64().expect("cpu") > 0.0);
    let healthz = &report["healthz"];
    assert!(healthz["perSecond"].as_f64().expect("healthz") > 0.0);
    assert_eq!(healthz["errors"], serde_json::json!({}));
    let ratio = report["ratioToHealthz"].as_f64().expect("ratio");
    let expected =
        report["perSecond"].as_f64().expect("") / healthz["perSecond"].as_f64().expect("");
    assert!((ratio - expected).abs() < 1e-9);
}

/// `--count` stops after exactly that many operations; the order scenario
/// reports the order stage alone and no comparison with `--baseline 0s`.
#[test]
fn bench_order_scenario_stops_at_its_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = bench(
        dir.path(),
        &[
            "--scenario",
            "order",
            "--clients",
            "3",
            "--count",
            "50",
            "--rate",
            "200",
            // Another build may be named; this one here.
            "--server-exe",
            BIN,
            "--warmup",
            "0s",
            "--baseline",
            "0s",
        ],
    );
    assert_eq!(report["completed"], 50, "{report:#}");
    assert_eq!(report["scenario"], "order");
    assert_eq!(report["channel"], Value::Null);
    let stages = report["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 1, "{report:#}");
    assert_eq!(stage(&report, "order")["count"], 50);
    assert_eq!(report["healthz"], Value::Null);
    assert_eq!(report["merchantNotifications"]["received"], 0);
    // 50 at 200/s: a quarter of a second at least.
    assert!(
        report["seconds"].as_f64().expect("seconds") >= 0.24,
        "{report:#}"
    );
}

/// Every channel the bench offers completes cycles through its sandbox.
#[test]
fn bench_pays_with_every_channel() {
    for channel in ["wx-v3-mini", "alipay-qr", "lakala-native"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = bench(
            dir.path(),
            &[
                "--channel",
                channel,
                "--clients",
                "2",
                "--count",
                "6",
                "--warmup",
                "0s",
                "--baseline",
                "0s",
            ],
        );
        assert_eq!(report["completed"], 6, "{channel}: {report:#}");
        assert_eq!(report["channel"], channel);
        assert_eq!(stage(&report, "merchant delivery")["count"], 6, "{channel}");
    }
}

/// `--database-url` runs the server on PostgreSQL.
#[tokio::test]
async fn bench_runs_on_postgres() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let report = bench(
        dir.path(),
        &[
            "--database-url",
            &db.url,
            "--clients",
            "4",
            "--count",
            "20",
            "--warmup",
            "0s",
            "--baseline",
            "0s",
        ],
    );
    assert_eq!(report["completed"], 20, "{report:#}");
    assert_eq!(report["server"]["backend"], "postgres");
    let mut conn = db.connect().await;
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE state = 'SUCCESS'")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(paid, 20);
}

#[test]
fn bench_refuses_bad_arguments_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, says) in [
        (&["--clients", "0"][..], "--clients must be at least 1"),
        (&["--rate", "0"][..], "--rate must be positive"),
        (&["--duration", "10x"][..], "unit must be ms, s, m or h"),
        (&["--channel", "paypal"][..], "invalid value 'paypal'"),
        (
            &["--server-exe", "/nonexistent/cashdesk"][..],
            "starting /nonexistent/cashdesk serve",
        ),
    ] {
        let out = cashdesk(dir.path())
            .arg("bench")
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// `bench recon`: the day's bill is reconciled through the engine and the
/// findings are exactly the planted ones (10 of each kind), with the
/// figures printed and in the JSON.
fn bench_recon(cwd: &Path, args: &[&str]) -> Value {
    let json = cwd.join("recon.json");
    let stdout = run_ok(
        cashdesk(cwd)
            .args(["bench", "recon"])
            .args(args)
            .arg("--json")
            .arg(&json),
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the --json file")).expect("JSON");
    let per_second = report["linesPerSecond"].as_f64().expect("linesPerSecond");
    assert!(
        stdout.contains(&format!("{per_second:.0} bill lines/s")),
        "the printed figures are the JSON ones:\n{stdout}\n{report:#}"
    );
    assert!(
        stdout.contains("exactly the planted differences"),
        "{stdout}"
    );
    assert_eq!(report["correct"], true, "{report:#}");
    assert_eq!(
        report["findings"],
        serde_json::json!([
            ["AMOUNT_MISMATCH", 10],
            ["CHANNEL_ONLY", 10],
            ["LOCAL_ONLY", 10]
        ]),
        "{report:#}"
    );
    assert!(
        report["peakRssMib"].as_f64().expect("peak") > 0.0,
        "{report:#}"
    );
    report
}

#[test]
fn bench_recon_reports_exactly_the_planted_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = bench_recon(dir.path(), &["--lines", "2000"]);
    assert_eq!(report["backend"], "sqlite");
    assert_eq!(report["lines"], 2000);
    assert_eq!(report["orders"], 2000);
    assert_eq!(report["matched"], 1980);
}

#[tokio::test]
async fn bench_recon_runs_on_postgres() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let report = bench_recon(dir.path(), &["--lines", "500", "--database-url", &db.url]);
    assert_eq!(report["backend"], "postgres");
    assert_eq!(report["matched"], 480);
    let mut conn = db.connect().await;
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE state = 'SUCCESS'")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(paid, 500);
}

#[test]
fn bench_recon_refuses_a_day_too_small_for_its_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cashdesk(dir.path())
        .args(["bench", "recon", "--lines", "50"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--lines must be at least 100"), "{stderr}");
}
