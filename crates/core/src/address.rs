//! Which addresses cashdesk may call on a stranger's say-so: the notify
//! URLs merchants give (unless the server's `allow_private_notify_urls` is
//! on). One rule, [`is_public_ip`], used when a URL is accepted and again
//! when each notification is sent (the server's `service::delivery`); it
//! lives here, with no I/O, so any crate that sends to a URL it was given
//! can apply the same rule.
//!
//! # The rule
//!
//! An address is public when the IANA special-purpose registries do not
//! say otherwise:
//!
//! - IPv4: <https://www.iana.org/assignments/iana-ipv4-special-registry/>
//!   (checked 2026-12; its newest entries are 192.0.0.9 and 192.0.0.10,
//!   RFC 7723 and RFC 8155). Every block whose
//!   "Globally Reachable" is False is refused, except the /32s inside it
//!   that the registry marks True (192.0.0.9, 192.0.0.10). The deprecated
//!   6to4 relay anycast block 192.88.99.0/24 (RFC 7526) is refused, and so
//!   is multicast 224.0.0.0/4 (not in that registry, and never a unicast
//!   destination).
//! - IPv6: <https://www.iana.org/assignments/iana-ipv6-special-registry/>
//!   (version of 2025-10-09, checked 2026-12; its newest entries are
//!   5f00::/16, RFC 9602, 3fff::/20, RFC 9637, and 100:0:0:1::/64,
//!   RFC 9780), the same way, with
//!   its True entries inside 2001::/23 as exceptions. Beyond the registry,
//!   only the global unicast space 2000::/3 of the IPv6 Address Space
//!   registry (<https://www.iana.org/assignments/ipv6-address-space/>) can
//!   be public: that refuses multicast ff00::/8, the deprecated site-local
//!   fec0::/10 (RFC 3879), and everything IETF-reserved.
//!
//! # Embedded IPv4 (registry entries marked N/A)
//!
//! An IPv6 address that carries an IPv4 address is judged by that IPv4
//! address, whatever the IPv6 prefix would say:
//!
//! - IPv4-mapped `::ffff:a.b.c.d` (how a dual-stack socket writes IPv4);
//! - NAT64 well-known prefix `64:ff9b::a.b.c.d` (RFC 6052): a DNS64
//!   resolver on an IPv6-only network answers with these for IPv4-only
//!   hosts, so refusing them outright would refuse those merchants;
//! - 6to4 `2002:AABB:CCDD::/48` (RFC 3056), the IPv4 address in bits 16–48.
//!
//! Refused whatever they carry: IPv4-compatible `::a.b.c.d` (deprecated by
//! RFC 4291 and routed nowhere; it lies outside 2000::/3), the local-use
//! NAT64 prefix 64:ff9b:1::/48 (Globally Reachable False; where its IPv4
//! sits depends on the operator's prefix length) and Teredo 2001::/32
//! (inside 2001::/23; its client address is obfuscated and the service is
//! retired: no merchant endpoint has one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 block: first address and prefix length.
type V4Block = (Ipv4Addr, u8);
/// An IPv6 block: first address and prefix length.
type V6Block = (Ipv6Addr, u8);

const fn v6(s: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

/// IPv4 registry entries with Globally Reachable = False (and the two
/// refusals beyond it, noted).
const V4_NOT_GLOBAL: &[V4Block] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network" (RFC 791)
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private-use (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback (RFC 1122)
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link local (RFC 3927)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private-use (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments (RFC 6890), incl. 192.0.0.0/29, .8, .170, .171
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation TEST-NET-1 (RFC 5737)
    (Ipv4Addr::new(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast (RFC 7526)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private-use (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2 (RFC 5737)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation TEST-NET-3 (RFC 5737)
    (Ipv4Addr::new(224, 0, 0, 0), 4),  // multicast (RFC 5771; not in the registry)
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved (RFC 1112), incl. 255.255.255.255 limited broadcast
];

/// IPv4 registry entries with Globally Reachable = True that sit inside a
/// block above.
const V4_GLOBAL: &[V4Block] = &[
    (Ipv4Addr::new(192, 0, 0, 9), 32), // Port Control Protocol anycast (RFC 7723)
    (Ipv4Addr::new(192, 0, 0, 10), 32), // TURN anycast (RFC 8155)
];

/// IPv6 registry entries with Globally Reachable = False inside 2000::/3
/// (those outside it are refused by the 2000::/3 rule: ::1, ::, ::ffff:0:0/96
/// unless it carries a public IPv4, 64:ff9b:1::/48, 100::/64,
/// 100:0:0:1::/64, 5f00::/16, fc00::/7, fe80::/10).
const V6_NOT_GLOBAL: &[V6Block] = &[
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23), // IETF protocol assignments (RFC 2928), incl. Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32), // documentation (RFC 3849)
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20), // documentation (RFC 9637)
];

/// IPv6 registry entries with Globally Reachable = True inside a block
/// above.
const V6_GLOBAL: &[V6Block] = &[
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 1]), 128), // Port Control Protocol anycast (RFC 7723)
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 2]), 128), // TURN anycast (RFC 8155)
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 3]), 128), // DNS-SD SRP anycast (RFC 9665)
    (v6([0x2001, 3, 0, 0, 0, 0, 0, 0]), 32),  // AMT (RFC 7450)
    (v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0]), 48), // AS112-v6 (RFC 7535)
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0]), 28), // ORCHIDv2 (RFC 7343)
    (v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0]), 28), // drone remote ID (RFC 9374)
];

fn in_v4(ip: Ipv4Addr, blocks: &[V4Block]) -> bool {
    let ip = u32::from(ip);
    blocks.iter().any(|&(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        ip & mask == u32::from(net) & mask
    })
}

fn in_v6(ip: Ipv6Addr, blocks: &[V6Block]) -> bool {
    let ip = u128::from(ip);
    blocks.iter().any(|&(net, len)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        ip & mask == u128::from(net) & mask
    })
}

/// The IPv4 address an IPv6 address stands for, when it is one of the
/// forms judged by their IPv4 address (module comment).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = || Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    in_v4(ip, V4_GLOBAL) || !in_v4(ip, V4_NOT_GLOBAL)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_public_v4(v4);
    }
    // Global unicast 2000::/3 only.
    if ip.segments()[0] & 0xe000 != 0x2000 {
        return false;
    }
    in_v6(ip, V6_GLOBAL) || !in_v6(ip, V6_NOT_GLOBAL)
}

/// Whether cashdesk may send a notification to `ip` when private
/// addresses are not allowed (module comment).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// Host names that name this machine or its local network whatever DNS
/// says: `localhost` and `*.localhost` (RFC 6761), `*.local` (mDNS, RFC
/// 6762), `*.home.arpa` (RFC 8375) and `*.internal` (ICANN's private-use
/// TLD). Other names are judged by the addresses they resolve to, when a
/// notification is sent.
pub fn is_local_name(name: &str) -> bool {
    let d = name.trim_end_matches('.').to_ascii_lowercase();
    ["localhost", "local", "home.arpa", "internal"]
        .iter()
        .any(|tld| d == *tld || d.strip_suffix(tld).is_some_and(|p| p.ends_with('.')))
}

/// Whether a URL host is refused as it is written: a local name, or an IP
/// literal that is not public.
pub fn is_refused_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => is_local_name(d),
        url::Host::Ipv4(ip) => !is_public_v4(*ip),
        url::Host::Ipv6(ip) => !is_public_v6(*ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public_ip(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn ipv4_registry() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.5.4",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(s), "{s} is not public");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.1.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert!(public(s), "{s} is public");
        }
    }

    #[test]
    fn ipv6_registry_and_beyond() {
        for s in [
            "::",
            "::1",
            "fe80::1",
            "fd00::1",
            "fc00::1",
            "fec0::1",                              // site-local (deprecated)
            "feff::1",                              // site-local, end of the block
            "ff02::1",                              // multicast
            "ff0e::1",                              // global-scope multicast
            "100::1",                               // discard-only
            "5f00::1",                              // SRv6 SIDs
            "2001::1",                              // Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo with a public server
            "2001:2::1",                            // benchmarking
            "2001:10::1",                           // ORCHID (deprecated)
            "2001:db8::1",
            "3fff::1",
            "64:ff9b:1::808:808", // local-use NAT64
            "::808:808",          // IPv4-compatible, even of a public address
            "1000::1",            // outside 2000::/3
            "4000::1",
        ] {
            assert!(!public(s), "{s} is not public");
        }
        for s in [
            "2001:4860:4860::8888",
            "2400:cb00::1",
            "2a00:1450:4001::1",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:30::1",
            "2620:4f:8000::1",
            "3ffe::1",
        ] {
            assert!(public(s), "{s} is public");
        }
    }

    /// The forms named in issue 13, each judged by the IPv4 address it
    /// carries (and the same forms of a public address accepted).
    #[test]
    fn embedded_ipv4_is_judged_by_the_ipv4_address() {
        for s in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1", // IPv4-compatible
            "64:ff9b::7f00:1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::169.254.169.254",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:c0a8:101::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!public(s), "{s} is not public");
        }
        for s in [
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "64:ff9b::101:101",
            "2002:808:808::1",
        ] {
            assert!(public(s), "{s} is public");
        }
        assert_eq!(
            embedded_ipv4("2002:7f00:1::".parse().expect("ip")),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            embedded_ipv4("64:ff9b::7f00:1".parse().expect("ip")),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(embedded_ipv4("::127.0.0.1".parse().expect("ip")), None);
    }

    #[test]
    fn hosts_as_written() {
        let refused = |s: &str| {
            let url = url::Url::parse(s).expect("url");
            url.host().is_some_and(|h| is_refused_host(&h))
        };
        for s in [
            "http://localhost/",
            "http://LOCALHOST./",
            "http://a.localhost/",
            "http://printer.local/",
            "http://nas.home.arpa/",
            "http://db.internal/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[2002:7f00:1::]/",
            "http://[fec0::1]/",
            "http://[ff02::1]/",
            "http://198.18.0.1/",
            "http://192.0.0.8/",
            "http://224.0.0.251/",
        ] {
            assert!(refused(s), "{s}");
        }
        for s in [
            "https://shop.example.com/",
            "https://local.example.com/",
            "https://notlocalhost.com/",
            "https://internalshop.cn/",
            "http://8.8.8.8/",
            "http://[2001:4860:4860::8888]/",
        ] {
            assert!(!refused(s), "{s}");
        }
    }
}
