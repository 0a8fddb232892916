//! Console sign-in: the login page, sessions, CSRF, logout.

use axum::Router;

use crate::state::AppState;

pub fn router(_state: AppState, pages: Router<AppState>) -> Router<AppState> {
    Router::new().merge(pages)
}
