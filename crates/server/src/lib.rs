//! cashdesk-server: the axum application — the signed merchant API
//! (`api/`), channel notifications (`notify`), the cashier web surface
//! (`cashier`), the seed registration and binding flow (`sa/`), the operator
//! API (`admin/`), operations endpoints (`ops`), the mounted channel
//! sandbox — and its background workers.
//!
//! Data flows one way: HTTP edge (handlers, thin) → `service` → store.
//! Request signatures are checked and responses signed in `auth`, with
//! `cashdesk_crypto::apisig`, the implementation the SDK uses too.

pub mod access;
pub mod admin;
pub mod api;
pub mod auth;
pub mod cashier;
pub mod channel_cache;
pub mod charts;
pub mod config;
pub mod console;
pub mod data_dir;
pub mod edge;
pub mod envelope;
pub mod error;
pub mod input;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod recon;
pub mod sa;
pub mod service;
pub mod settlement;
pub mod single_flight;
pub mod slots;
pub mod startup;
pub mod state;
pub mod wire;
pub mod workers;

pub use config::{Config, LogFormat, Mode};
pub use error::{ApiError, ErrorCode};
pub use startup::{Application, DemoApp, StartupReport, shutdown_signal};
