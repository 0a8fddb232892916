//! Fuzz targets for every parser that takes bytes from outside cashdesk
//! (issue 13), written once and driven two ways:
//!
//! - coverage-guided, by libFuzzer: the binaries in `fuzz/` (a workspace of
//!   their own, built with the sanitizer-coverage flags; DEVELOPERS.md,
//!   "Fuzzing");
//! - on every test run, on the stable toolchain with no special flags:
//!   `tests/replay.rs` replays the committed corpus `fuzz/corpus/<target>/`
//!   and a bounded number of seeded mutations of it.
//!
//! A target takes any bytes and panics only on a defect: a panic in the
//! code under test, or a broken property (a writer that does not round-trip
//! its reader, a verified notification that decodes to other values than
//! were signed, a 500 from a server). It returns whether the input was
//! accepted, so the replay test can prove that the corpus reaches the code
//! behind each signature check.
//!
//! Inputs are HTTP-like text ([`message`]) so seeds can be written by hand
//! and mutations stay meaningful; mode `S` signs them with the fixture keys
//! ([`fixtures`]).
//!
//! Bill parsers (statement downloads) do not exist yet: when they do, each
//! gets a target here and a row in [`TARGETS`] (the replay test and the
//! `fuzz/` binaries pick it up by name).

pub mod channels;
pub mod crypto;
pub mod fixtures;
pub mod message;
pub mod sandbox;
pub mod server;

/// What a target did with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Refused (the usual fate of a fuzzed input).
    Refused,
    /// Accepted: parsed, verified, answered with success.
    Accepted,
}

impl From<bool> for Outcome {
    fn from(accepted: bool) -> Self {
        if accepted {
            Self::Accepted
        } else {
            Self::Refused
        }
    }
}

/// One fuzz target.
pub struct Target {
    /// Also the libFuzzer binary's name and the corpus folder's.
    pub name: &'static str,
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "wechat_v2_xml",
        run: channels::wechat_v2_xml,
    },
    Target {
        name: "wechat_v2_notify",
        run: channels::wechat_v2_notify,
    },
    Target {
        name: "wechat_v3_notify",
        run: channels::wechat_v3_notify,
    },
    Target {
        name: "alipay_notify",
        run: channels::alipay_notify,
    },
    Target {
        name: "lakala_notify",
        run: channels::lakala_notify,
    },
    Target {
        name: "apisig",
        run: crypto::apisig,
    },
    Target {
        name: "server_input",
        run: server::server_input,
    },
    Target {
        name: "server_api",
        run: server::server_api,
    },
    Target {
        name: "sandbox_wechat_v2",
        run: sandbox::wechat_v2,
    },
    Target {
        name: "sandbox_wechat_v3",
        run: sandbox::wechat_v3,
    },
    Target {
        name: "sandbox_alipay",
        run: sandbox::alipay,
    },
    Target {
        name: "sandbox_lakala",
        run: sandbox::lakala,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Run the target called `name` on `data` (the libFuzzer binaries' body).
///
/// # Panics
/// On a defect the input reveals — and on an unknown `name`, a mistake in
/// the `fuzz/` binaries.
pub fn fuzz(name: &str, data: &[u8]) {
    match target(name) {
        Some(t) => {
            let _ = (t.run)(data);
        }
        None => panic!("no fuzz target called {name}"),
    }
}
