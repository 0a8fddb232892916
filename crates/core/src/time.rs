//! Wire time formats. Stored times are UTC; seed-compatible fields such as
//! `payTime` are `yyyy-MM-dd HH:mm:ss` in Asia/Shanghai (UTC+8, no DST).

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// `2024-01-02 03:04:05` in Asia/Shanghai.
pub fn to_cn_datetime(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Parse `yyyy-MM-dd HH:mm:ss` (Asia/Shanghai) to UTC.
pub fn parse_cn_datetime(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()?;
    shanghai()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// `yyyyMMddHHmmss` in Asia/Shanghai, as WeChat v2 and Lakala send it.
pub fn to_compact(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .format("%Y%m%d%H%M%S")
        .to_string()
}

/// Parse `yyyyMMddHHmmss` (Asia/Shanghai) to UTC.
pub fn parse_compact(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    shanghai()
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// RFC 3339 with the +08:00 offset, as WeChat v3 sends it.
pub fn to_rfc3339_cn(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(to_cn_datetime(t), "2024-01-02 11:04:05");
        assert_eq!(parse_cn_datetime("2024-01-02 11:04:05"), Some(t));
        assert_eq!(to_compact(t), "20240102110405");
        assert_eq!(parse_compact("20240102110405"), Some(t));
        assert_eq!(to_rfc3339_cn(t), "2024-01-02T11:04:05+08:00");
        assert_eq!(parse_compact("2024-01-02"), None);
    }
}
