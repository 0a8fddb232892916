//! Where the sandbox may send notifications: an explicit allow policy,
//! because anyone can open a sandbox merchant and name any `notify_url`,
//! and a notifier that posts wherever a stranger says is an SSRF.
//!
//! A notify URL is allowed when, after parsing and normalising it the way
//! the HTTP client will (WHATWG URL: lower-case scheme and host, IPv4 in
//! any notation turned into dotted quads, default port dropped, `.`/`..`
//! and `%2e` segments resolved), it has no user name or password and
//!
//! - it lies under one of the allowed **prefixes**: same scheme, same host,
//!   same port, and a path that starts with the prefix's path at a segment
//!   boundary (`/a/b` matches `/a/b` and `/a/b/…`, not `/a/bc`; a prefix
//!   ending in `/` matches what lies under it). The default prefix is the
//!   hosting cashdesk's own notify endpoint,
//!   `<public_url>/api/cashier-desk/notify/` ([`NotifyTargets::new`]); the
//!   operator adds more (`sandbox_notify_allow`, `--notify-allow`);
//! - or, when [`NotifyTargets::loopback_path`] is set (standalone
//!   `cashdesk sandbox`, `cashdesk bench`: any cashdesk on this machine),
//!   its host is a loopback address — `127.0.0.0/8`, `[::1]` or
//!   `localhost` — on any port, and its path starts with that path.
//!
//! The comparison is on hosts as written, never on what DNS says: the
//! allowed hosts are the operator's own. `localhost` is pinned to
//! 127.0.0.1 in the notifier's client ([`pinned_localhost`]), so even that
//! name cannot resolve elsewhere. The notifier follows no redirects.
//!
//! A URL outside the policy is refused when the order or refund is made
//! (in the channel's own error shape, see [`crate::Shared::check_notify_url`])
//! and checked again before every delivery attempt (the policy may have
//! changed since, e.g. across a restart).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::{Host, Url};

/// The path under which a cashdesk receives channel notifications.
pub const CASHDESK_NOTIFY_PATH: &str = "/api/cashier-desk/notify/";

/// The allow policy for notification targets ([`crate::SandboxConfig::notify_targets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTargets {
    /// Allowed URL prefixes (absolute http(s) URLs).
    pub prefixes: Vec<String>,
    /// Also allow loopback hosts (any port) whose path starts with this
    /// (e.g. [`CASHDESK_NOTIFY_PATH`]; `/` for every loopback URL, as tests
    /// with local receivers use). `None`: no loopback rule.
    pub loopback_path: Option<String>,
}

impl NotifyTargets {
    /// Only the notify endpoint of the cashdesk at `public_url`.
    pub fn new(public_url: &str) -> Self {
        Self {
            prefixes: vec![own_notify_prefix(public_url)],
            loopback_path: None,
        }
    }

    /// The notify endpoint of any cashdesk on this machine
    /// (`http://127.0.0.1:<any port>/api/cashier-desk/notify/…`), plus `prefixes`.
    pub fn loopback_cashdesks(prefixes: Vec<String>) -> Self {
        Self {
            prefixes,
            loopback_path: Some(CASHDESK_NOTIFY_PATH.to_owned()),
        }
    }

    /// Also allow `prefix`.
    pub fn allow(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// The policy in force, with every prefix parsed; an error names the
    /// prefix that is not an http(s) URL.
    pub fn compile(&self) -> anyhow::Result<Policy> {
        let prefixes = self
            .prefixes
            .iter()
            .map(|p| Prefix::parse(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let loopback_path = match &self.loopback_path {
            None => None,
            Some(p) => {
                anyhow::ensure!(
                    p.starts_with('/'),
                    "the loopback notify path `{p}` must start with /"
                );
                // Normalise it as a URL path would be.
                let u = Url::parse(&format!("http://127.0.0.1{p}"))
                    .map_err(|e| anyhow::anyhow!("loopback notify path `{p}`: {e}"))?;
                Some(u.path().to_owned())
            }
        };
        Ok(Policy {
            prefixes,
            loopback_path,
        })
    }
}

/// `<public_url>/api/cashier-desk/notify/`.
pub fn own_notify_prefix(public_url: &str) -> String {
    format!("{}{CASHDESK_NOTIFY_PATH}", public_url.trim_end_matches('/'))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: Host<String>,
    port: u16,
    path: String,
}

impl Prefix {
    fn parse(s: &str) -> anyhow::Result<Prefix> {
        let u = Url::parse(s.trim())
            .map_err(|e| anyhow::anyhow!("notify allow prefix `{s}` is not a URL: {e}"))?;
        anyhow::ensure!(
            matches!(u.scheme(), "http" | "https"),
            "notify allow prefix `{s}` must be an http(s) URL"
        );
        anyhow::ensure!(
            u.username().is_empty() && u.password().is_none(),
            "notify allow prefix `{s}` must not carry a user name or password"
        );
        anyhow::ensure!(
            u.query().is_none() && u.fragment().is_none(),
            "notify allow prefix `{s}` must not have a query or fragment"
        );
        let (Some(host), Some(port)) = (u.host(), u.port_or_known_default()) else {
            anyhow::bail!("notify allow prefix `{s}` has no host");
        };
        Ok(Prefix {
            scheme: u.scheme().to_owned(),
            host: host.to_owned(),
            port,
            path: u.path().to_owned(),
        })
    }

    fn matches(&self, u: &Url) -> bool {
        u.scheme() == self.scheme
            && u.host().map(|h| h.to_owned()).as_ref() == Some(&self.host)
            && u.port_or_known_default() == Some(self.port)
            && path_under(u.path(), &self.path)
    }
}

/// Whether `path` is `prefix` or lies under it at a segment boundary.
fn path_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A compiled [`NotifyTargets`].
#[derive(Debug, Clone)]
pub struct Policy {
    prefixes: Vec<Prefix>,
    loopback_path: Option<String>,
}

impl Policy {
    /// Whether the notifier may post to `url`.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(u) = Url::parse(url) else {
            return false;
        };
        if !matches!(u.scheme(), "http" | "https")
            || !u.username().is_empty()
            || u.password().is_some()
        {
            return false;
        }
        if self.prefixes.iter().any(|p| p.matches(&u)) {
            return true;
        }
        match (&self.loopback_path, u.host()) {
            (Some(path), Some(host)) => is_loopback(&host) && path_under(u.path(), path),
            _ => false,
        }
    }

    /// What a refused caller is told (without the operator's own
    /// prefixes, which may name internal hosts).
    pub fn explain(&self, own_prefix: &str) -> String {
        let mut s = format!(
            "notify_url不在沙箱允许的通知地址内 (this sandbox only notifies URLs under {own_prefix}"
        );
        if let Some(path) = &self.loopback_path {
            s.push_str(&format!(
                ", loopback URLs (127.0.0.1, [::1], localhost) whose path starts with {path}"
            ));
        }
        s.push_str(" and the prefixes its operator allows)");
        s
    }
}

/// The address `localhost` is pinned to in the notifier's HTTP client
/// (reqwest uses the URL's port, not this one).
pub fn pinned_localhost() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(t: NotifyTargets) -> Policy {
        t.compile().expect("policy")
    }

    #[test]
    fn the_default_allows_only_the_own_notify_endpoint() {
        let p = policy(NotifyTargets::new("http://127.0.0.1:8080/"));
        for ok in [
            "http://127.0.0.1:8080/api/cashier-desk/notify/C01",
            "http://127.0.0.1:8080/api/cashier-desk/notify/C01?x=1",
            "HTTP://127.0.0.1:8080/api/cashier-desk/notify/C01",
            // Other spellings of the same address normalise to it.
            "http://0x7f.0.0.1:8080/api/cashier-desk/notify/C01",
            "http://2130706433:8080/api/cashier-desk/notify/C01",
            "http://127.0.0.1:8080/api/x/../cashier-desk/notify/C01",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for refused in [
            "http://127.0.0.1:8081/api/cashier-desk/notify/C01",
            "https://127.0.0.1:8080/api/cashier-desk/notify/C01",
            "http://127.0.0.2:8080/api/cashier-desk/notify/C01",
            "http://localhost:8080/api/cashier-desk/notify/C01",
            "http://127.0.0.1:8080/api/cashier-desk/notifyX",
            "http://127.0.0.1:8080/api/cashier-desk/notify",
            "http://127.0.0.1:8080/api/cashier-desk/notify/../../admin/apps",
            "http://127.0.0.1:8080/api/cashier-desk/notify/%2e%2e/%2e%2e/admin",
            "http://127.0.0.1:8080@169.254.169.254/api/cashier-desk/notify/C01",
            "http://u:p@127.0.0.1:8080/api/cashier-desk/notify/C01",
            "http://169.254.169.254/latest/meta-data/",
            "ftp://127.0.0.1:8080/api/cashier-desk/notify/C01",
            "not a url",
        ] {
            assert!(!p.allows(refused), "{refused}");
        }
    }

    #[test]
    fn prefixes_match_at_segment_boundaries_and_default_ports() {
        let p = policy(
            NotifyTargets::new("https://pay.example.com")
                .allow("https://shop.example.com:443/hooks")
                .allow("http://10.0.0.5:9000/"),
        );
        assert!(p.allows("https://pay.example.com/api/cashier-desk/notify/C1"));
        assert!(p.allows("https://pay.example.com:443/api/cashier-desk/notify/C1"));
        assert!(p.allows("https://SHOP.example.com/hooks"));
        assert!(p.allows("https://shop.example.com/hooks/wx"));
        assert!(!p.allows("https://shop.example.com/hooksX"));
        assert!(!p.allows("https://shop.example.com.evil.com/hooks"));
        assert!(p.allows("http://10.0.0.5:9000/anything"));
        assert!(!p.allows("http://10.0.0.5:9001/anything"));
    }

    #[test]
    fn loopback_rule_takes_any_port_but_only_loopback_hosts() {
        let p = policy(NotifyTargets::loopback_cashdesks(Vec::new()));
        assert!(p.allows("http://127.0.0.1:39211/api/cashier-desk/notify/C1"));
        assert!(p.allows("http://127.1.2.3/api/cashier-desk/notify/C1"));
        assert!(p.allows("http://[::1]:8080/api/cashier-desk/notify/C1"));
        assert!(p.allows("http://localhost:8080/api/cashier-desk/notify/C1"));
        assert!(!p.allows("http://127.0.0.1:8080/admin"));
        assert!(!p.allows("http://10.0.0.1:8080/api/cashier-desk/notify/C1"));
        assert!(!p.allows("http://localhost.evil.com/api/cashier-desk/notify/C1"));
        assert!(!p.allows("http://[::ffff:a00:1]/api/cashier-desk/notify/C1"));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in [
            "notaurl",
            "ftp://x/",
            "http://u@x/",
            "http://x/?q=1",
            "mailto:a@b",
        ] {
            assert!(
                NotifyTargets::new("http://127.0.0.1:8080")
                    .allow(bad)
                    .compile()
                    .is_err(),
                "{bad}"
            );
        }
    }
}
