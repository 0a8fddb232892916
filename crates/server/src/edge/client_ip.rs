//! The client's address. A request's peer is the client unless the peer
//! is a trusted proxy (`trusted_proxies`); then the proxy's header
//! (`proxy_header`: `X-Forwarded-For`, or RFC 7239 `Forwarded`) is read
//! from the right, each proxy having appended the address it saw: the
//! right-most address that is not itself a trusted proxy is the client.
//! Everything left of it was written by the client and is not believed.
//!
//! Only the configured header is read: a proxy appends to one of them and
//! passes the other through as the client sent it, so reading both would
//! let a client choose its own address.
//!
//! [`resolve`] runs first for every request and stores [`ClientIp`] in
//! its extensions: the rate limits, the logs and the payer IP that WeChat
//! H5 payments need (`spbill_create_ip` / `payer_client_ip`) all read it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{Config, ProxyHeader};
use crate::state::AppState;

/// The client's address, as [`resolve`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

pub struct TrustedProxies {
    nets: Vec<ipnet::IpNet>,
    header: ProxyHeader,
}

impl TrustedProxies {
    pub fn new(config: &Config) -> TrustedProxies {
        TrustedProxies {
            nets: config.trusted_proxies.clone(),
            header: config.proxy_header,
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ProxyHeader::XForwardedFor => x_forwarded_for(headers),
            ProxyHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // An entry that is no address ("unknown", an obfuscated
                // name, garbage): the last address known is as far as the
                // chain can be followed.
                None => return client,
            }
        }
        // Every hop is a trusted proxy: the left-most is the client.
        client
    }
}

/// Middleware: stores [`ClientIp`] (when the peer address is known).
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let ip = state.edge.proxies.client_ip(peer.ip(), req.headers());
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

/// The client address of a request that went through [`resolve`].
pub fn of<B>(req: &axum::http::Request<B>) -> Option<IpAddr> {
    req.extensions().get::<ClientIp>().map(|c| c.0)
}

/// One address as proxies write it: `203.0.113.7`, `203.0.113.7:4711`,
/// `2001:db8::1`, `[2001:db8::1]:4711`, possibly quoted.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    // `[v6]` without a port.
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|v6| v6.parse().ok())
}

/// Every `X-Forwarded-For` address, left to right across header lines.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

/// Every `for=` of `Forwarded`, left to right across elements and lines;
/// an element without `for=` is a hop whose address is unknown.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s
                .split(',')
                .map(|element| {
                    element.split(';').find_map(|pair| {
                        let (k, v) = pair.split_once('=')?;
                        k.trim().eq_ignore_ascii_case("for").then(|| parse_hop(v))?
                    })
                })
                .collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str], header: ProxyHeader) -> TrustedProxies {
        TrustedProxies {
            nets: nets.iter().map(|n| n.parse().expect("cidr")).collect(),
            header,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::XForwardedFor);
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        let none = proxies(&[], ProxyHeader::XForwardedFor);
        assert_eq!(none.client_ip(ip("10.1.1.1"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(
            &["10.0.0.0/8", "192.168.1.1/32"],
            ProxyHeader::XForwardedFor,
        );
        // The client forged "6.6.6.6"; the first proxy saw 203.0.113.7 and
        // the second the first proxy.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 192.168.1.1")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        // Split over two header lines, with a port.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.7:5555"),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        // Only proxies: the left-most.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.3")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // Garbage right of the proxies stops the walk at the last proxy.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, unknown")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // The Forwarded header is not read in this setting.
        let h = headers(&[("forwarded", "for=203.0.113.8")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_rfc7239() {
        let p = proxies(&["10.0.0.0/8"], ProxyHeader::Forwarded);
        let h = headers(&[(
            "forwarded",
            r#"for=6.6.6.6;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.1"#,
        )]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.43:47011, for=10.0.0.5")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("192.0.2.43"));
        // X-Forwarded-For is not read in this setting.
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
        // An element without for= is an unknown hop.
        let h = headers(&[("forwarded", "for=1.1.1.1, proto=http")]);
        assert_eq!(p.client_ip(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let p = proxies(&["127.0.0.1/32"], ProxyHeader::XForwardedFor);
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(p.client_ip(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.7"));
    }
}
