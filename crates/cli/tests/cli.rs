//! End-to-end tests of the `cashdesk` binary: it is run as a user runs it
//! (a child process, environment variables, stdout), against a real
//! `cashdesk serve` on a free port with a fresh data folder (SQLite).

use std::borrow::BorrowMut;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
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
    data_dir: tempfile::TempDir,
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

impl Serve {
    fn start() -> Serve {
        let data_dir = tempfile::tempdir().unwrap();
        let stderr_file = data_dir.path().join("serve.stderr");
        let mut child = cashdesk(data_dir.path())
            .arg("serve")
            .env("CASHDESK_LISTEN", "127.0.0.1:0")
            .env("CASHDESK_DATA_DIR", data_dir.path().join("data"))
            .env("CASHDESK_ALLOW_PRIVATE_NOTIFY_URLS", "true")
            .env("CASHDESK_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).unwrap())
            .spawn()
            .expect("spawn cashdesk serve");
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
        let mut serve = Serve {
            child,
            url: String::new(),
            report: String::new(),
            data_dir,
            stderr_file,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        // The report is written in one piece; once the listen line is in,
        // the rest follows within moments.
        while serve.url.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix("listening on") {
                        serve.url = rest.trim().trim_end_matches('/').to_owned();
                    }
                    serve.report.push_str(&line);
                    serve.report.push('\n');
                }
                Err(_) => panic!(
                    "no startup report within 60 s; stdout so far:\n{}\nstderr:\n{}",
                    serve.report,
                    serve.stderr()
                ),
            }
        }
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            serve.report.push_str(&line);
            serve.report.push('\n');
        }
        serve
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
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "cashdesk did not stop within 30 s of SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

    // Refund review: the order is paid on the sandbox, the app's refunds
    // wait for the operator, who approves one and rejects the other.
    client
        .send(
            cashdesk_sdk::Method::POST,
            "/api/cashier-desk/payment",
            Some(&serde_json::json!({"outTradeNo": "T-CLI-1", "channelId": channel_id, "openid": "oCli"})),
        )
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

    // Every write was audited.
    let audit = run_ok(serve.admin(&["audit", "list"]));
    assert!(audit.contains(&config_id), "{audit}");

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
