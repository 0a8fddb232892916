//! Operations endpoints: `/healthz`, Prometheus `/metrics`, the OpenAPI
//! document (`/api/openapi.json`, a hand-written file compiled in) and
//! `/api/docs`, an HTML page rendered on the server from that document:
//! inline CSS, no script, no external request, so it works offline.
//!
//! Also the request metrics middleware, the 404/405 fallbacks and the panic
//! handler, which all answer in the envelope.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use cashdesk_core::html::escape as esc;
use serde_json::{Value, json};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The OpenAPI 3.1 document, checked by a unit test to parse and to cover
/// every route.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/docs", get(docs))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ok", "db": "ok" }))).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database ping failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "db": "error" })),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn docs() -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| render_docs(OPENAPI_JSON)).as_str())
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// A schema in one line: `$ref` names, types, object properties.
fn schema_summary(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return r.rsplit('/').next().unwrap_or(r).to_owned();
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "[{}]",
            schema.get("items").map(schema_summary).unwrap_or_default()
        ),
        Some(t) => t.to_owned(),
        None => "object".to_owned(),
    }
}

/// The docs page: every path and method with summary, description,
/// parameters, body and responses; then every schema's properties.
pub fn render_docs(openapi: &str) -> String {
    let doc: Value = serde_json::from_str(openapi).unwrap_or(Value::Null);
    let mut h = String::new();
    let title = text(doc.pointer("/info/title"));
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — API</title>\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>\
body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
h2{{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.5rem}}\
.op{{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}}\
.m{{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}}\
.get{{color:#0a6}}.post{{color:#06c}}.put{{color:#a60}}.delete{{color:#c00}}\
code,pre{{font-family:ui-monospace,monospace;background:#f5f5f5;border-radius:3px;padding:0 .2rem}}\
table{{border-collapse:collapse;margin:.4rem 0}}td,th{{border:1px solid #e3e3e3;padding:.2rem .5rem;text-align:left;vertical-align:top}}\
.d{{color:#555}}</style></head><body>",
        esc(title)
    );
    let _ = write!(
        h,
        "<h1>{} <small>{}</small></h1><p class=\"d\">{}</p><p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>",
        esc(title),
        esc(text(doc.pointer("/info/version"))),
        esc(text(doc.pointer("/info/description")))
    );
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        h.push_str("<h2>Endpoints</h2>");
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                    continue;
                }
                let _ = write!(
                    h,
                    "<div class=\"op\"><div><span class=\"m {m}\">{M}</span> <code>{p}</code> — {s}</div>",
                    m = esc(method),
                    M = esc(&method.to_uppercase()),
                    p = esc(path),
                    s = esc(text(op.get("summary")))
                );
                let desc = text(op.get("description"));
                if !desc.is_empty() {
                    let _ = write!(h, "<p class=\"d\">{}</p>", esc(desc));
                }
                if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                    h.push_str("<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>");
                    for p in params {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(text(p.get("name"))),
                            if p.get("required").and_then(Value::as_bool).unwrap_or(false) {
                                " *"
                            } else {
                                ""
                            },
                            esc(text(p.get("in"))),
                            esc(&p.get("schema").map(schema_summary).unwrap_or_default()),
                            esc(text(p.get("description")))
                        );
                    }
                    h.push_str("</table>");
                }
                if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                    let _ = write!(
                        h,
                        "<div>Body: <code>{}</code></div>",
                        esc(&schema_summary(schema))
                    );
                }
                if let Some(resps) = op.get("responses").and_then(Value::as_object) {
                    h.push_str("<div>Responses: ");
                    let parts: Vec<String> = resps
                        .iter()
                        .map(|(code, r)| {
                            format!(
                                "<code>{}</code> {}",
                                esc(code),
                                esc(text(r.get("description")))
                            )
                        })
                        .collect();
                    h.push_str(&parts.join("; "));
                    h.push_str("</div>");
                }
                h.push_str("</div>");
            }
        }
    }
    if let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        h.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            let _ = write!(h, "<h3 id=\"{n}\">{n}</h3>", n = esc(name));
            let desc = text(schema.get("description"));
            if !desc.is_empty() {
                let _ = write!(h, "<p class=\"d\">{}</p>", esc(desc));
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                h.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
                for (field, p) in props {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        if required.contains(&field.as_str()) {
                            " *"
                        } else {
                            ""
                        },
                        esc(&schema_summary(p)),
                        esc(text(p.get("description")))
                    );
                }
                h.push_str("</table>");
            }
        }
    }
    h.push_str("<p class=\"d\">* required</p></body></html>");
    h
}

/// Request counter and latency histogram by matched route and status.
pub async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let resp = next.run(req).await;
    state.metrics.http_request(
        &route,
        &method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// A panic in a handler becomes a 500 envelope (logged; the payload is not
/// returned).
pub fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    ApiError::internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the server serves, as OpenAPI paths.
    const ROUTES: &[(&str, &str)] = &[
        ("post", "/api/cashier-desk/unified/orders"),
        ("get", "/api/cashier-desk/payment/list"),
        ("post", "/api/cashier-desk/payment"),
        (
            "get",
            "/api/cashier-desk/out-trade-no/query-pay-result/{outTradeNo}",
        ),
        ("post", "/api/cashier-desk/out-trade-no/{outTradeNo}/close"),
        ("get", "/api/cashier-desk/platform-keys"),
        ("post", "/api/cashier-desk-sa/register"),
        ("post", "/api/cashier-desk-sa/apply/binding-channel"),
        ("get", "/api/admin/apps"),
        ("post", "/api/admin/apps"),
        ("get", "/api/admin/apps/{appId}"),
        ("post", "/api/admin/apps/{appId}/disable"),
        ("post", "/api/admin/apps/{appId}/enable"),
        ("get", "/api/admin/channel-configs"),
        ("post", "/api/admin/channel-configs"),
        ("get", "/api/admin/channel-configs/{configId}"),
        ("post", "/api/admin/channel-configs/{configId}/disable"),
        ("post", "/api/admin/channel-configs/{configId}/enable"),
        ("get", "/api/admin/channels"),
        ("post", "/api/admin/channels"),
        ("get", "/api/admin/channels/{channelId}"),
        ("post", "/api/admin/channels/{channelId}/disable"),
        ("post", "/api/admin/channels/{channelId}/enable"),
        ("get", "/api/admin/bindings"),
        ("post", "/api/admin/bindings/{bindingId}/approve"),
        ("post", "/api/admin/bindings/{bindingId}/reject"),
        ("get", "/api/admin/orders"),
        ("get", "/api/admin/orders/{orderId}"),
        ("post", "/api/admin/apps/{appId}/settings"),
        ("get", "/api/admin/refunds"),
        ("get", "/api/admin/refunds/{refundId}"),
        ("post", "/api/admin/refunds/{refundId}/approve"),
        ("post", "/api/admin/refunds/{refundId}/reject"),
        ("post", "/api/cashier-desk/refunds"),
        ("get", "/api/cashier-desk/refunds/{outRefundNo}"),
        ("get", "/api/admin/notifications"),
        ("get", "/api/admin/notifications/{notifyId}"),
        ("post", "/api/admin/notifications/{notifyId}/resend"),
        ("get", "/api/admin/stores"),
        ("post", "/api/admin/stores"),
        ("get", "/api/admin/stores/{appId}/{storeId}"),
        ("put", "/api/admin/stores/{appId}/{storeId}"),
        ("post", "/api/admin/stores/{appId}/{storeId}/disable"),
        ("post", "/api/admin/stores/{appId}/{storeId}/enable"),
        ("get", "/api/admin/stores/{appId}/{storeId}/identities"),
        (
            "put",
            "/api/admin/stores/{appId}/{storeId}/identities/{configId}",
        ),
        (
            "delete",
            "/api/admin/stores/{appId}/{storeId}/identities/{configId}",
        ),
        ("get", "/api/admin/audit"),
        ("get", "/api/admin/reconciliations"),
        ("post", "/api/admin/reconciliations/run"),
        ("get", "/api/admin/reconciliations/findings"),
        ("get", "/api/admin/reconciliations/findings/{findingId}"),
        (
            "post",
            "/api/admin/reconciliations/findings/{findingId}/resolve",
        ),
        ("get", "/api/admin/reconciliations/statement"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/api/openapi.json"),
        ("get", "/api/docs"),
    ];

    #[test]
    fn openapi_covers_every_route_and_refs_resolve() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json parses");
        assert_eq!(
            doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
            Some(true)
        );
        for (method, path) in ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "openapi.json lacks {method} {path}"
            );
        }
        // Every $ref points at a schema that exists.
        fn walk(v: &Value, doc: &Value) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        let ptr = r.trim_start_matches('#');
                        assert!(doc.pointer(ptr).is_some(), "dangling $ref {r}");
                    }
                    m.values().for_each(|v| walk(v, doc));
                }
                Value::Array(a) => a.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
        // The merchant notification is described as a webhook.
        assert!(doc["webhooks"]["merchantNotification"]["post"].is_object());
    }

    #[test]
    fn docs_page_is_self_contained() {
        let page = render_docs(OPENAPI_JSON);
        assert!(page.contains("/api/cashier-desk/unified/orders"));
        assert!(page.contains("CreateOrderRequest"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("src=\"http"));
        assert!(!page.contains("href=\"http"));
        assert_eq!(esc("<a&\"'>"), "&lt;a&amp;&quot;&#39;&gt;");
    }
}
