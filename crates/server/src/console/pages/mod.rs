//! The console's pages behind the session ([`super::ConsoleSession`]):
//! each takes the session as an extractor and checks its permission.

use axum::Router;

use crate::state::AppState;

/// Every page behind the session middleware.
pub fn router() -> Router<AppState> {
    Router::new()
}
