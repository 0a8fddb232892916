//! `GET /api/cashier-desk/platform-keys` (public): cashdesk's RSA and SM2
//! public keys, which verify responses and notifications for RSA2/SM2 apps.

use axum::extract::State;

use crate::envelope;
use crate::state::AppState;
use crate::wire::PlatformKeys;

pub async fn platform_keys(State(state): State<AppState>) -> envelope::Success<PlatformKeys> {
    envelope::Success(PlatformKeys {
        rsa_public_key_pem: state.platform.rsa_public_pem.clone(),
        sm2_public_key_pem: state.platform.sm2_public_pem.clone(),
    })
}
