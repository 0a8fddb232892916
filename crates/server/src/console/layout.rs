//! The console's frame: the layout every page is rendered into (header,
//! the sections the principal's role may see, who is signed in, the
//! language switch, the logout form), the flash message of a
//! POST-redirect-GET, the message pages (403, 404, failure), the
//! stylesheet and the headers every console response carries.
//!
//! A page handler takes a [`Ctx`] (the [`ConsoleSession`] and what the
//! layout needs from the request), checks its permission with
//! [`Ctx::require`], renders its own askama template (escaped), and hands
//! it to [`Ctx::render`], which puts it into `templates/console/layout.html`.
//! A form handler answers [`Ctx::done`] / [`redirect`]: a 303 to the page
//! to show next, carrying the outcome as a flash.
//!
//! The flash travels in a short-lived cookie (`cashdesk_flash`, HttpOnly,
//! SameSite=Strict, path `/console`) rather than in the URL, so that a link
//! cannot make the console say something it did not say; the next page
//! shows it and clears it.
//!
//! # Headers
//!
//! [`secure`] runs on every console response (the pages router and the
//! assets router layer it): a CSP with nothing but this origin's
//! stylesheet and images (no script at all: the console works without
//! JavaScript), forms posting only to this origin, no framing, no
//! `<base>`; `X-Frame-Options: DENY`; `Referrer-Policy: no-referrer`
//! (console URLs carry search terms and ids, and the console links nowhere
//! else); `nosniff`; and `Cache-Control: no-store` unless the response set
//! its own (the stylesheet: a content-hashed URL, cached for long).

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cashdesk_core::Permission;

use super::texts::{Texts, texts};
use super::{BASE, ConsoleSession};
use crate::cashier::i18n::Lang;
use crate::service::error::ServiceError;
use crate::state::AppState;

pub const CSS: &str = include_str!("../../static/console.css");

pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet's URL, with its content hash (so it is cached for long
/// and a new build is fetched at once).
pub static CSS_URL: LazyLock<String> = LazyLock::new(|| {
    let d = cashdesk_crypto::digest::sha256(CSS.as_bytes());
    format!("{BASE}/assets/console.css?v={}", &hex::encode(d)[..12])
});

const FLASH_COOKIE: &str = "cashdesk_flash";
/// The language the switch sets; the session middleware reads it.
pub const LANG_COOKIE: &str = "lang";
/// A flash longer than this is cut (a cookie stays small).
const FLASH_MAX_CHARS: usize = 300;

/// The headers of every console response (see the module comment).
pub async fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// `GET /console/assets/console.css`. Open (the login page uses it too):
/// merge it outside the session middleware.
pub fn assets_router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/assets/console.css"), get(css))
        .layer(axum::middleware::map_response(secure))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        CSS,
    )
        .into_response()
}

// --- sections ------------------------------------------------------------

/// A section of the console: one entry of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Orders,
    Refunds,
    Bindings,
    Notifications,
    Apps,
    Channels,
    Stores,
    Recon,
    Audit,
    Accounts,
}

impl Section {
    pub const ALL: [Section; 11] = [
        Section::Dashboard,
        Section::Orders,
        Section::Refunds,
        Section::Bindings,
        Section::Notifications,
        Section::Apps,
        Section::Stores,
        Section::Channels,
        Section::Recon,
        Section::Audit,
        Section::Accounts,
    ];

    pub fn href(self) -> String {
        let path = match self {
            Section::Dashboard => "dashboard",
            Section::Orders => "orders",
            Section::Refunds => "refunds",
            Section::Bindings => "bindings",
            Section::Notifications => "notifications",
            Section::Apps => "apps",
            Section::Channels => "channels",
            Section::Stores => "stores",
            Section::Recon => "recon",
            Section::Audit => "audit",
            Section::Accounts => "accounts",
        };
        format!("{BASE}/{path}")
    }

    pub fn label(self, t: &'static Texts) -> &'static str {
        match self {
            Section::Dashboard => t.dashboard,
            Section::Orders => t.orders,
            Section::Refunds => t.refunds,
            Section::Bindings => t.bindings,
            Section::Notifications => t.notifications,
            Section::Apps => t.apps,
            Section::Channels => t.channels,
            Section::Stores => t.stores,
            Section::Recon => t.recon,
            Section::Audit => t.audit,
            Section::Accounts => t.accounts,
        }
    }

    /// Whether the section is shown to `session`: its landing page's read
    /// permission (reconciliation: runs, or a merchant's statements).
    pub fn visible(self, session: &ConsoleSession) -> bool {
        let p = &session.principal;
        match self {
            Section::Dashboard | Section::Orders => p.can(Permission::OrdersRead),
            Section::Refunds => p.can(Permission::RefundsRead),
            Section::Bindings => p.can(Permission::BindingsRead),
            Section::Notifications => p.can(Permission::NotificationsRead),
            Section::Apps => p.can(Permission::AppsRead),
            Section::Channels => p.can(Permission::ChannelsRead),
            Section::Stores => p.can(Permission::StoresRead),
            Section::Recon => p.can(Permission::ReconRead) || p.can(Permission::StatementsRead),
            Section::Audit => p.can(Permission::AuditRead),
            Section::Accounts => p.can(Permission::AccountsManage),
        }
    }
}

// --- the request ---------------------------------------------------------

/// A message shown once on the page after a POST-redirect-GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Flash {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Flash {
        Flash {
            ok: false,
            text: text.into(),
        }
    }

    /// The CSS class.
    pub fn kind(&self) -> &'static str {
        if self.ok { "ok" } else { "error" }
    }

    fn cookie_value(&self) -> String {
        let text: String = self.text.chars().take(FLASH_MAX_CHARS).collect();
        let enc: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        format!("{}.{enc}", if self.ok { 'o' } else { 'e' })
    }

    fn from_cookie(value: &str) -> Option<Flash> {
        let (kind, enc) = value.split_once('.')?;
        let text: String = url::form_urlencoded::parse(format!("t={enc}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        let text: String = text.chars().take(FLASH_MAX_CHARS).collect();
        match kind {
            "o" => Some(Flash::ok(text)),
            "e" => Some(Flash::error(text)),
            _ => None,
        }
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session and what the layout needs from the request: the page's
/// own path (for the language switch) and the flash to show.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub session: ConsoleSession,
    /// Path and query of this request.
    pub here: String,
    pub flash: Option<Flash>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = ConsoleSession::from_request_parts(parts, state).await?;
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| BASE.to_owned(), |p| p.as_str().to_owned());
        let flash = cookie(&parts.headers, FLASH_COOKIE).and_then(Flash::from_cookie);
        Ok(Ctx {
            session,
            here,
            flash,
        })
    }
}

/// A page answer: the page, or the page that says why not.
pub type PageResult = Result<Response, Refused>;

/// The page that says why not (403, 404, a failure), boxed: it travels
/// back through `?`.
#[derive(Debug)]
pub struct Refused(pub Box<Response>);

impl From<Response> for Refused {
    fn from(r: Response) -> Refused {
        Refused(Box::new(r))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

#[derive(Template)]
#[template(path = "console/layout.html")]
struct Layout<'a> {
    t: &'static Texts,
    title: &'a str,
    css: &'static str,
    home: &'static str,
    nav: Vec<NavItem>,
    actor: &'a str,
    role: &'static str,
    csrf: &'a str,
    logout: String,
    other_lang_href: String,
    other_lang_code: &'static str,
    flash: Option<&'a Flash>,
    body: &'a str,
}

struct NavItem {
    href: String,
    label: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct Message<'a> {
    body: &'a str,
    back: Option<&'a str>,
    back_label: &'static str,
}

/// `/console/lang/{code}?back=<path>`: the language switch.
pub fn lang_href(lang: Lang, back: &str) -> String {
    let code = match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    };
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("back", back)
        .finish();
    format!("{BASE}/lang/{code}?{q}")
}

/// A path inside the console to go back to: anything else (another site,
/// `//host`, a backslash trick) becomes the console's home.
pub fn local_back(back: Option<&str>) -> String {
    match back {
        Some(b)
            if (b == BASE
                || b.starts_with(&format!("{BASE}/"))
                || b.starts_with(&format!("{BASE}?")))
                && !b.contains("//")
                && !b.contains('\\')
                && !b.chars().any(char::is_control) =>
        {
            b.to_owned()
        }
        _ => BASE.to_owned(),
    }
}

impl Ctx {
    pub fn t(&self) -> &'static Texts {
        texts(self.session.lang)
    }

    /// The audit log's name for who acts.
    pub fn actor(&self) -> &str {
        &self.session.principal.actor
    }

    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    pub fn can(&self, p: Permission) -> bool {
        self.session.principal.can(p)
    }

    /// The 403 page unless the role may do `p`.
    /// (A page answering [`PageResult`] takes it with `?`: the page
    /// converts into [`Refused`].)
    #[allow(clippy::result_large_err)]
    pub fn require(&self, p: Permission) -> Result<(), Response> {
        if self.can(p) {
            Ok(())
        } else {
            Err(self.forbidden())
        }
    }

    /// `body` (a rendered template) in the layout, 200.
    pub fn render(&self, section: Option<Section>, title: &str, body: &impl Template) -> Response {
        match body.render() {
            Ok(html) => self.render_html(StatusCode::OK, section, title, &html),
            Err(e) => {
                tracing::error!(error = %e, "console template failed");
                self.error_page()
            }
        }
    }

    /// Already rendered (escaped) HTML in the layout.
    pub fn render_html(
        &self,
        status: StatusCode,
        section: Option<Section>,
        title: &str,
        html: &str,
    ) -> Response {
        let t = self.t();
        let other = match self.session.lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        let nav = Section::ALL
            .iter()
            .filter(|s| s.visible(&self.session))
            .map(|&s| NavItem {
                href: s.href(),
                label: s.label(t),
                active: Some(s) == section,
            })
            .collect();
        let page = Layout {
            t,
            title,
            css: CSS_URL.as_str(),
            home: BASE,
            nav,
            actor: &self.session.principal.actor,
            role: t.role(self.session.principal.role),
            csrf: &self.session.csrf,
            logout: format!("{BASE}/logout"),
            other_lang_href: lang_href(other, &self.here),
            other_lang_code: texts(other).code,
            flash: self.flash.as_ref(),
            body: html,
        };
        let mut resp = match page.render() {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "console layout failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        };
        if self.flash.is_some() {
            // Shown once.
            resp.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "cashdesk_flash=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict",
                ),
            );
        }
        resp
    }

    fn message(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let m = Message {
            body,
            back: Some(BASE),
            back_label: self.t().back,
        };
        match m.render() {
            Ok(html) => self.render_html(status, None, title, &html),
            Err(e) => {
                tracing::error!(error = %e, "console template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// 403: the role may not.
    pub fn forbidden(&self) -> Response {
        let t = self.t();
        self.message(StatusCode::FORBIDDEN, t.forbidden_title, t.forbidden_body)
    }

    /// 404: missing, or another app's (the two read the same).
    pub fn not_found(&self) -> Response {
        let t = self.t();
        self.message(StatusCode::NOT_FOUND, t.not_found_title, t.not_found_body)
    }

    /// 500, the cause logged by the caller.
    pub fn error_page(&self) -> Response {
        let t = self.t();
        self.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            t.error_title,
            t.error_body,
        )
    }

    /// The page for a service's failure on a GET: 404 for what does not
    /// exist, the refusal's own words for a refusal (400), the generic
    /// page for an internal failure (logged).
    pub fn fail(&self, e: &ServiceError) -> Response {
        match e {
            ServiceError::NotFound { .. } => self.not_found(),
            _ => match refusal_text(e) {
                Some(msg) => {
                    let t = self.t();
                    self.message(StatusCode::BAD_REQUEST, t.error_title, &msg)
                }
                None => {
                    tracing::error!(error = ?e, "console: internal error");
                    self.error_page()
                }
            },
        }
    }

    /// After a form: a 303 to `to` with the outcome as the flash (`ok` on
    /// success; a refusal's own words, or a generic line for an internal
    /// failure, which is logged).
    pub fn done<T>(&self, to: &str, result: Result<T, ServiceError>, ok: &str) -> Response {
        let flash = match result {
            Ok(_) => Flash::ok(ok),
            Err(e) => self.flash_of(&e),
        };
        redirect(to, Some(&flash))
    }

    /// The flash that tells of `e`.
    pub fn flash_of(&self, e: &ServiceError) -> Flash {
        match refusal_text(e) {
            Some(msg) => Flash::error(msg),
            None => {
                tracing::error!(error = ?e, "console: internal error");
                Flash::error(self.t().error_body)
            }
        }
    }
}

/// A refusal's message for its user, `None` for an internal failure.
pub fn refusal_text(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Internal(_) => None,
        ServiceError::Storage(cashdesk_store::StoreError::Conflict(_)) => Some(
            "conflict: the record was created or changed at the same time; read it again, or retry"
                .to_owned(),
        ),
        ServiceError::Storage(_) => None,
        other => Some(other.to_string()),
    }
}

/// 303 See Other to `to`, with a flash for the next page.
pub fn redirect(to: &str, flash: Option<&Flash>) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Some(f) = flash {
        let cookie = format!(
            "{FLASH_COOKIE}={}; Path={BASE}; Max-Age=60; HttpOnly; SameSite=Strict",
            f.cookie_value()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The `Set-Cookie` of the language switch.
pub fn lang_cookie(lang: Lang) -> HeaderValue {
    HeaderValue::from_static(match lang {
        Lang::Zh => "lang=zh; Path=/console; Max-Age=31536000; HttpOnly; SameSite=Strict",
        Lang::En => "lang=en; Path=/console; Max-Age=31536000; HttpOnly; SameSite=Strict",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flash_survives_its_cookie() {
        for f in [
            Flash::ok("退款已通过 <b>&; = ok"),
            Flash::error("a; b=c, \"d\""),
        ] {
            let v = f.cookie_value();
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
            );
            assert_eq!(Flash::from_cookie(&v), Some(f));
        }
        assert_eq!(Flash::from_cookie("x.abc"), None);
        let long = Flash::ok("长".repeat(1000));
        let back = Flash::from_cookie(&long.cookie_value()).expect("flash");
        assert_eq!(back.text.chars().count(), FLASH_MAX_CHARS);
    }

    #[test]
    fn going_back_stays_in_the_console() {
        assert_eq!(
            local_back(Some("/console/orders?state=PAID")),
            "/console/orders?state=PAID"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/consolex",
            "/console/\\evil",
            "/other",
        ] {
            assert_eq!(local_back(Some(bad)), BASE, "{bad}");
        }
        assert_eq!(local_back(None), BASE);
    }

    #[test]
    fn small_and_self_contained() {
        assert!(CSS.len() < 8192, "{}", CSS.len());
        assert!(!CSS.contains("http://") && !CSS.contains("https://"));
        assert!(!CSS.contains("@import") && !CSS.contains("url("));
        assert!(CSS_URL.starts_with("/console/assets/console.css?v="));
        assert!(!CSP.contains("unsafe") && !CSP.contains("script-src"));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cashdesk_flash=o.hi; lang=en"),
        );
        assert_eq!(cookie(&h, "cashdesk_flash"), Some("o.hi"));
        assert_eq!(cookie(&h, "lang"), Some("en"));
        assert_eq!(cookie(&h, "x"), None);
    }
}
