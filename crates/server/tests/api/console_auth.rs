//! Console sign-in over HTTP: a new session at every sign-in (a planted
//! cookie is never promoted), CSRF on every form, sign-out, lockout after
//! repeated wrong passwords, TOTP enrolment and sign-in with a code.

use cashdesk_core::Role;
use cashdesk_sdk::Method;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::backend_tests;
use crate::helpers::*;
use crate::rbac::account_token;

backend_tests!(
    sign_in_makes_a_new_session_and_sign_out_ends_it,
    forms_without_the_csrf_token_change_nothing,
    wrong_passwords_lock_the_account,
    totp_enrolment_and_sign_in,
    the_order_page_shows_its_timeline_and_the_dashboard_its_figures,
    oversized_and_malformed_forms_change_nothing,
);

use crate::rbac::PASSWORD;

pub struct Browserless {
    pub http: reqwest::Client,
    pub base: String,
}

/// What a response set: `(name, value, attributes)` of each cookie.
fn set_cookies(resp: &reqwest::Response) -> Vec<(String, String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=')?;
            Some((k.to_owned(), val.to_owned(), attrs.to_owned()))
        })
        .collect()
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .find(|(k, v, _)| k == name && !v.is_empty())
        .map(|(_, v, _)| v)
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("end")].to_owned()
}

impl Browserless {
    pub fn new(app: &TestApp) -> Browserless {
        Browserless {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A new connection per request: a refused oversized body
                // ends its connection, and a pooled one could be reused
                // just as the server closes it (IncompleteMessage).
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
            base: app.base_url.clone(),
        }
    }

    /// The login page's CSRF token and its cookie.
    pub async fn login_form(&self) -> (String, String) {
        let resp = self
            .http
            .get(format!("{}/console/login", self.base))
            .send()
            .await
            .expect("login page");
        assert_eq!(resp.status(), 200);
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        let cookie = cookie_of(&resp, "cashdesk_login").expect("login cookie");
        let html = resp.text().await.expect("html");
        (csrf_of(&html), cookie)
    }

    /// Signs in; the response (a 303 with the session cookie, or the form).
    pub async fn sign_in(
        &self,
        user: &str,
        password: &str,
        code: &str,
        extra_cookie: &str,
    ) -> reqwest::Response {
        let (csrf, login_cookie) = self.login_form().await;
        self.http
            .post(format!("{}/console/login", self.base))
            .header(
                COOKIE,
                format!("cashdesk_login={login_cookie}{extra_cookie}"),
            )
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", password),
                ("code", code),
            ])
            .send()
            .await
            .expect("sign in")
    }

    /// Signs in and returns the session cookie.
    pub async fn session(&self, user: &str, password: &str) -> String {
        let resp = self.sign_in(user, password, "", "").await;
        assert_eq!(
            resp.status(),
            303,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        cookie_of(&resp, "cashdesk_session").expect("session cookie")
    }

    pub async fn get(&self, session: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("cashdesk_session={session}"))
            .send()
            .await
            .expect("get")
    }

    pub async fn post(
        &self,
        session: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("cashdesk_session={session}"))
            .form(form)
            .send()
            .await
            .expect("post")
    }
}

async fn sign_in_makes_a_new_session_and_sign_out_ends_it(b: Backend) {
    let app = spawn_app(b).await;
    account_token(&app, "root", Role::Admin, &[]).await;
    let web = Browserless::new(&app);
    // A cookie planted before sign-in (session fixation) is not promoted.
    let resp = web
        .sign_in(
            "root",
            PASSWORD,
            "",
            "; cashdesk_session=planted-by-someone",
        )
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console");
    let (_, session, attrs) = set_cookies(&resp)
        .into_iter()
        .find(|(k, _, _)| k == "cashdesk_session")
        .expect("session cookie");
    assert_ne!(session, "planted-by-someone");
    assert!(session.len() >= 40, "{session}");
    for a in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(attrs.contains(a), "{attrs}");
    }
    assert!(!attrs.contains("Secure"), "http public URL: {attrs}");
    let planted = web.get("planted-by-someone", "/console/account").await;
    assert_eq!(planted.status(), 303);
    let page = web.get(&session, "/console/account").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.expect("html");
    assert!(html.contains("root"));
    let csrf = csrf_of(&html);
    // Sign-out needs the token too.
    assert_eq!(
        web.post(&session, "/console/logout", &[]).await.status(),
        403
    );
    let out = web
        .post(&session, "/console/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status(), 200);
    assert!(
        set_cookies(&out)
            .iter()
            .any(|(k, v, a)| k == "cashdesk_session" && v.is_empty() && a.contains("Max-Age=0"))
    );
    assert_eq!(web.get(&session, "/console/account").await.status(), 303);
    let audit = app
        .admin
        .list_audit(Some(50))
        .await
        .expect("audit")
        .to_string();
    for action in ["account.login", "account.logout"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

async fn forms_without_the_csrf_token_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    account_token(&app, "root", Role::Admin, &[]).await;
    let web = Browserless::new(&app);
    // The login form itself: without its cookie's token, no sign-in.
    let (csrf, _) = web.login_form().await;
    let resp = web
        .http
        .post(format!("{}/console/login", web.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "root"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);
    assert!(cookie_of(&resp, "cashdesk_session").is_none());
    let session = web.session("root", PASSWORD).await;
    let before = app
        .admin
        .list_audit(Some(1000))
        .await
        .expect("audit")
        .as_array()
        .map(Vec::len);
    for csrf in ["", "wrong", "x".repeat(43).as_str()] {
        let resp = web
            .post(
                &session,
                "/console/account/tokens",
                &[("csrf", csrf), ("name", "ci")],
            )
            .await;
        assert_eq!(resp.status(), 403, "{csrf}");
        let resp = web
            .post(
                &session,
                "/console/accounts",
                &[
                    ("csrf", csrf),
                    ("username", "evil"),
                    ("role", "admin"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(resp.status(), 403);
    }
    let after = app
        .admin
        .list_audit(Some(1000))
        .await
        .expect("audit")
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after, "nothing was done");
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("list");
    assert_eq!(accounts.as_array().map(Vec::len), Some(1));
}

async fn wrong_passwords_lock_the_account(b: Backend) {
    let app = spawn_app(b).await;
    account_token(&app, "ops", Role::Operator, &[]).await;
    let web = Browserless::new(&app);
    let unknown = web.sign_in("nobody", "whatever-password", "", "").await;
    assert_eq!(unknown.status(), 401);
    let unknown_text = unknown.text().await.expect("html");
    for _ in 0..5 {
        let resp = web.sign_in("ops", "wrong password!!", "", "").await;
        assert_eq!(resp.status(), 401);
        // One message for every refusal: an unknown user reads the same.
        let text = resp.text().await.expect("html");
        assert_eq!(
            text.split("class=\"error\"").nth(1).map(|s| &s[..80]),
            unknown_text
                .split("class=\"error\"")
                .nth(1)
                .map(|s| &s[..80])
        );
    }
    // Locked: the right password is refused too.
    let resp = web.sign_in("ops", PASSWORD, "", "").await;
    assert_eq!(resp.status(), 401);
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("list");
    let ops = &accounts[0];
    // Attempts on a locked account are refused without being counted.
    assert_eq!(ops["failedLogins"], 5);
    assert!(ops["lockedUntil"].is_string(), "{ops}");
    let audit = app
        .admin
        .list_audit(Some(50))
        .await
        .expect("audit")
        .to_string();
    assert!(audit.contains("account.locked"), "{audit}");
    // An administrator's reset unlocks.
    let id = ops["accountId"].as_str().expect("id");
    app.admin
        .request(
            Method::POST,
            &format!("/api/admin/accounts/{id}/password"),
            Some(&json!({"password": "a new password 1"})),
        )
        .await
        .expect("reset");
    web.session("ops", "a new password 1").await;
}

async fn totp_enrolment_and_sign_in(b: Backend) {
    let app = spawn_app(b).await;
    account_token(&app, "fin", Role::Finance, &[]).await;
    let web = Browserless::new(&app);
    let session = web.session("fin", PASSWORD).await;
    let html = web
        .get(&session, "/console/account")
        .await
        .text()
        .await
        .expect("html");
    let csrf = csrf_of(&html);
    let setup = web
        .post(&session, "/console/account/totp/start", &[("csrf", &csrf)])
        .await;
    assert_eq!(setup.status(), 200);
    let html = setup.text().await.expect("html");
    assert!(html.contains("data:image/svg+xml;base64,"), "a QR code");
    let at = html.find("id=\"totp-secret\">").expect("secret shown") + "id=\"totp-secret\">".len();
    let secret = html[at..at + html[at..].find('<').expect("end")].to_owned();
    let totp = TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret.clone()).to_bytes().expect("base32"),
        None,
        "fin".into(),
    )
    .expect("totp");
    // A wrong code does not turn it on.
    let wrong = web
        .post(
            &session,
            "/console/account/totp/confirm",
            &[("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status(), 303);
    let code = totp.generate_current().expect("code");
    let good = if code == "000000" {
        totp.generate(totp_rs_time() + 30)
    } else {
        code
    };
    let ok = web
        .post(
            &session,
            "/console/account/totp/confirm",
            &[("csrf", &csrf), ("code", &good)],
        )
        .await;
    assert_eq!(ok.status(), 303);
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("list");
    assert_eq!(accounts[0]["totp"], true, "{accounts}");
    // From now on: no code, no sign-in; the right code signs in.
    assert_eq!(web.sign_in("fin", PASSWORD, "", "").await.status(), 401);
    assert_eq!(web.sign_in("fin", PASSWORD, "123", "").await.status(), 401);
    let code = totp.generate_current().expect("code");
    assert_eq!(web.sign_in("fin", PASSWORD, &code, "").await.status(), 303);
    // The secret is never shown again.
    let session = cookie_of(
        &web.sign_in("fin", PASSWORD, &totp.generate_current().expect("code"), "")
            .await,
        "cashdesk_session",
    )
    .expect("session");
    let html = web
        .get(&session, "/console/account")
        .await
        .text()
        .await
        .expect("html");
    assert!(!html.contains(&secret));
}

fn totp_rs_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn the_order_page_shows_its_timeline_and_the_dashboard_its_figures(b: Backend) {
    let app = spawn_app(b).await;
    let setup = app.wechat_setup("v3").await;
    let client = &setup.shop.client;
    let (no, order_id) = app.new_order(client, 321).await;
    client
        .pay(
            &cashdesk_sdk::PaymentRequest::new(&no, setup.channel("mini"))
                .with_openid("oBuyer0001"),
        )
        .await
        .expect("pay");
    app.sandbox_pay(&order_id).await;
    app.wait_state(client, &no, "SUCCESS").await;
    account_token(&app, "fin", Role::Finance, &[]).await;
    let web = Browserless::new(&app);
    let session = web.session("fin", PASSWORD).await;
    // The events are written in the background: wait for the channel's notification.
    let mut html = String::new();
    for _ in 0..50 {
        html = web
            .get(&session, &format!("/console/orders/{order_id}"))
            .await
            .text()
            .await
            .expect("html");
        if html.contains("CHANNEL_NOTIFY") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let timeline = &html[html.find("id=\"timeline\"").expect("a timeline")..];
    for what in ["CREATED", "CHANNEL_CALL", "CHANNEL_NOTIFY", " ms<"] {
        assert!(timeline.contains(what), "{what}: {timeline}");
    }
    // Finance may not read merchant notifications: none in the timeline.
    assert!(!timeline.contains("MERCHANT_"), "{timeline}");
    assert!(
        !html.contains("oBuyer0001"),
        "the buyer's id is not shown in the timeline"
    );
    let dash = web.get(&session, "/console/dashboard?days=1").await;
    assert_eq!(dash.status(), 200);
    let html = dash.text().await.expect("html");
    assert!(
        html.contains("<svg") && html.contains("3.21"),
        "today's volume: {html}"
    );
    // Finance reads findings, not notifications.
    assert!(html.contains("id=\"open-findings\""));
    assert!(!html.contains("failed notifications") && !html.contains("通知失败"));
}

async fn oversized_and_malformed_forms_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    account_token(&app, "root", Role::Admin, &[]).await;
    let web = Browserless::new(&app);
    let big = "x".repeat(70 * 1024);
    let (csrf, cookie) = web.login_form().await;
    let resp = web
        .http
        .post(format!("{}/console/login", web.base))
        .header(COOKIE, format!("cashdesk_login={cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "root"),
            ("password", big.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 413);
    assert!(cookie_of(&resp, "cashdesk_session").is_none());
    let session = web.session("root", PASSWORD).await;
    let csrf = csrf_of(
        &web.get(&session, "/console/account")
            .await
            .text()
            .await
            .expect("html"),
    );
    let before = app
        .admin
        .list_audit(Some(1000))
        .await
        .expect("audit")
        .as_array()
        .map(Vec::len);
    let resp = web
        .post(
            &session,
            "/console/account/tokens",
            &[("csrf", csrf.as_str()), ("name", big.as_str())],
        )
        .await;
    assert_eq!(resp.status(), 413);
    // Not a form at all, and a form whose fields are garbage.
    let resp = web
        .http
        .post(format!("{}/console/accounts", web.base))
        .header(COOKIE, format!("cashdesk_session={session}"))
        .body(vec![0xff, 0xfe, b'%', b'&', b'='])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403, "no csrf field in it");
    let resp = web
        .post(
            &session,
            "/console/accounts",
            &[
                ("csrf", csrf.as_str()),
                ("username", "<script>"),
                ("role", "root"),
                ("password", "x"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 303, "refused with a flash");
    let after = app
        .admin
        .list_audit(Some(1000))
        .await
        .expect("audit")
        .as_array()
        .map(Vec::len);
    assert_eq!(before, after, "nothing was done");
    let accounts = app
        .admin
        .request(Method::GET, "/api/admin/accounts", None)
        .await
        .expect("list");
    assert_eq!(accounts.as_array().map(Vec::len), Some(1));
}
