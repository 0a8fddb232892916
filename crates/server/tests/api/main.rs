//! Integration tests of cashdesk-server over real HTTP, one binary with a
//! module per area. Every test runs on SQLite and on PostgreSQL (the
//! `backend_tests!` macro makes a `sqlite` and a `postgres` variant; the
//! latter skips with a message when CASHDESK_TEST_POSTGRES_URL is unset).

mod helpers;
mod receiver;

mod admin;
mod alipay;
mod applications;
mod bad_input;
mod binding_applications;
mod bindings;
mod browser;
mod cashier;
mod channel_probe;
mod console_auth;
mod console_browser;
mod console_order_actions;
mod console_pages;
mod console_pages_admin;
mod console_rbac;
mod contract;
mod edge;
mod lakala;
mod mp_tokens;
mod notify;
mod ops;
mod order_actions;
mod orders;
mod outbox;
mod qr;
mod rbac;
mod recon;
mod recon_lakala;
mod refunds;
mod register;
mod rotation;
mod seam;
mod settlement;
mod signing;
mod stores;
mod timeline;
mod wechat;
