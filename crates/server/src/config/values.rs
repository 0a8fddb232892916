//! Settings written as text and what they mean: retry schedules
//! (`15s,30s,3m`), trusted proxy lists (a list or one string of CIDRs),
//! strings the environment typed as numbers, and database URLs with the
//! password hidden for logs.

use std::net::IpAddr;

use anyhow::Context as _;
use serde::{Deserialize, Deserializer};

/// `15s,30s,3m` → durations. Units: `ms`, `s`, `m`, `h`; at least one
/// entry, each at most a day.
pub fn parse_schedule(s: &str) -> anyhow::Result<Vec<std::time::Duration>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (num, unit) = part
            .find(|c: char| !c.is_ascii_digit())
            .map(|i| part.split_at(i))
            .with_context(|| format!("`{part}` has no unit (ms, s, m or h)"))?;
        let n: u64 = num
            .parse()
            .with_context(|| format!("`{part}` does not start with a number"))?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => anyhow::bail!("`{part}`: unit must be ms, s, m or h"),
        }
        .filter(|ms| *ms <= 86_400_000)
        .with_context(|| format!("`{part}` is longer than a day"))?;
        out.push(std::time::Duration::from_millis(ms));
    }
    Ok(out)
}

/// `trusted_proxies`: a list, or one string of CIDRs / addresses separated
/// by commas or spaces (the environment's form). A bare address is a /32
/// (or /128).
pub(super) fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    let items = match Form::deserialize(d)? {
        Form::One(s) => s
            .split([',', ' '])
            .filter(|p| !p.trim().is_empty())
            .map(|p| p.trim().to_owned())
            .collect(),
        Form::Many(v) => v,
    };
    items
        .iter()
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{item}` is not a CIDR (10.0.0.0/8) or an IP address"
                    ))
                })
        })
        .collect()
}

pub(super) fn cidr_strings<S: serde::Serializer>(
    v: &[ipnet::IpNet],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

/// `postgres://user:pass@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Environment values are typed by figment (`CASHDESK_ADMIN_TOKEN=1234…`
/// would become a number); string settings take them back as text.
pub(super) fn lossy_opt_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_option(V)
}
