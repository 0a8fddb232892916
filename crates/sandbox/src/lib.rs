//! The channel sandbox: simulators of WeChat Pay, Alipay and Lakala servers
//! with real signatures and sandbox keys. Mounted by `cashdesk serve` under
//! `/sandbox` and runnable alone as `cashdesk sandbox`.

use axum::Router;

/// The sandbox's routes, to be nested under `/sandbox`. Empty until the
/// channel issues add the simulators.
pub fn router() -> Router {
    Router::new()
}
