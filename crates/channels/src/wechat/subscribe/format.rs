//! Template values cut and formatted to WeChat's limits, so a message made
//! from order fields or a merchant's text never earns `47003 argument
//! invalid! data.<key>.value invalid`.
//!
//! A template key is a type word and a number (`thing1`,
//! `character_string4`); the word decides the value's rules
//! (PROTOCOLS-2.md §2, developers.weixin.qq.com "订阅消息参数值内容限制"):
//!
//! | type | value |
//! |---|---|
//! | `thing` | ≤ 20 characters of any kind |
//! | `number` | ≤ 32 digits, one decimal point allowed |
//! | `letter` | ≤ 32 ASCII letters |
//! | `symbol` | ≤ 5 ASCII punctuation marks |
//! | `character_string` | ≤ 32 ASCII digits, letters or punctuation |
//! | `time` | `2019年10月1日 15:01` (a time of day, the date optional) |
//! | `date` | `2019年10月1日` (a date, a time of day optional) |
//! | `amount` | one currency sign and ≤ 10 digits, `¥12.34` |
//! | `phone_number` | ≤ 17 digits and `+-()` |
//! | `car_number` | ≤ 8: the first and the last may be CJK, the rest letters or digits |
//! | `name` | ≤ 10 characters with any CJK in it, else ≤ 20 ASCII letters, spaces and punctuation |
//! | `phrase` | ≤ 5 CJK characters |
//!
//! [`format_value`] takes the value as text; [`format_amount`] and
//! [`format_time`] / [`format_date`] take money in fen and an instant, the
//! shapes order fields have. Lengths count characters (Unicode scalar
//! values), so a cut never splits one. A value nothing usable is left of
//! (an amount that is not one, a time that cannot be read, a `phrase` with
//! no CJK) comes back empty: WeChat refuses an empty value, so the caller
//! records the message as not sendable instead of sending a wrong value.
//! [`value_fits`] says whether a value (a merchant's own, say) already
//! keeps its key's rules.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The type word of a template key (`thing1` → [`KeyType::Thing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Thing,
    Number,
    Letter,
    Symbol,
    CharacterString,
    Time,
    Date,
    Amount,
    PhoneNumber,
    CarNumber,
    Name,
    Phrase,
}

impl KeyType {
    /// The type of `key`: its word without the trailing digits; `None` for
    /// a word WeChat has no rules for.
    pub fn of_key(key: &str) -> Option<Self> {
        Some(match key.trim_end_matches(|c: char| c.is_ascii_digit()) {
            "thing" => Self::Thing,
            "number" => Self::Number,
            "letter" => Self::Letter,
            "symbol" => Self::Symbol,
            "character_string" => Self::CharacterString,
            "time" => Self::Time,
            "date" => Self::Date,
            "amount" => Self::Amount,
            "phone_number" => Self::PhoneNumber,
            "car_number" => Self::CarNumber,
            "name" => Self::Name,
            "phrase" => Self::Phrase,
            _ => return None,
        })
    }
}

/// CJK ideographs (the unified blocks, extension A and B, compatibility).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{20000}'..='\u{2A6DF}'
        | '\u{F900}'..='\u{FAFF}')
}

/// The first `max` characters of `s`.
fn take_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Control characters (newlines, tabs) become spaces, runs of white space
/// one space, and the ends are trimmed.
fn one_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_owned()
}

/// `raw` cut and formatted to the rules of `key`'s type (module comment).
///
/// - `thing`: one line; longer than 20 characters → the first 19 and `…`.
/// - `number`: the digits and the first decimal point, the first 32.
/// - `letter`, `symbol`, `character_string`, `phone_number`: the allowed
///   characters only, the first 32 / 5 / 32 / 17.
/// - `time`, `date`: `raw` read as RFC 3339, `YYYY-MM-DD[ HH:MM[:SS]]` or
///   `YYYY/MM/DD…` (China time), 10-digit Unix seconds, 13-digit Unix
///   milliseconds, or WeChat's own `2019年10月1日[ 15:01]`; written as
///   [`format_time`] / [`format_date`] do. A `time` needs a time of day.
/// - `amount`: `raw` in yuan (`12.3`, `¥12.30`, `12.30元`, at most two
///   decimals), written as [`format_amount`] does.
/// - `car_number`: separators (`·`, `-`, spaces) dropped, letters upper
///   case, CJK only first or last, the first 8.
/// - `name`: one line; with any non-ASCII character CJK, letters and `·`,
///   the first 10; else ASCII letters, spaces and punctuation, the first 20.
/// - `phrase`: the CJK characters, the first 5.
/// - a key of no known type: as `thing`.
pub fn format_value(key: &str, raw: &str) -> String {
    let Some(t) = KeyType::of_key(key) else {
        return format_thing(raw);
    };
    match t {
        KeyType::Thing => format_thing(raw),
        KeyType::Number => format_number(raw),
        KeyType::Letter => take_chars(
            &raw.chars()
                .filter(char::is_ascii_alphabetic)
                .collect::<String>(),
            32,
        ),
        KeyType::Symbol => take_chars(
            &raw.chars()
                .filter(char::is_ascii_punctuation)
                .collect::<String>(),
            5,
        ),
        KeyType::CharacterString => take_chars(
            &raw.chars()
                .filter(char::is_ascii_graphic)
                .collect::<String>(),
            32,
        ),
        KeyType::Time => match parse_instant(raw) {
            Some((at, true)) => format_time(at),
            _ => String::new(),
        },
        KeyType::Date => parse_instant(raw)
            .map(|(at, _)| format_date(at))
            .unwrap_or_default(),
        KeyType::Amount => parse_yuan(raw).map(format_amount).unwrap_or_default(),
        KeyType::PhoneNumber => take_chars(
            &raw.chars()
                .filter(|c| c.is_ascii_digit() || "+-()".contains(*c))
                .collect::<String>(),
            17,
        ),
        KeyType::CarNumber => format_car_number(raw),
        KeyType::Name => format_name(raw),
        KeyType::Phrase => take_chars(&raw.chars().filter(|c| is_cjk(*c)).collect::<String>(), 5),
    }
}

fn format_thing(raw: &str) -> String {
    let line = one_line(raw);
    if line.chars().count() <= 20 {
        return line;
    }
    let mut cut = take_chars(&line, 19).trim_end().to_owned();
    cut.push('…');
    cut
}

fn format_number(raw: &str) -> String {
    let mut out = String::new();
    let mut dot = false;
    for c in raw.chars() {
        if c.is_ascii_digit() {
            out.push(c);
        } else if c == '.' && !dot && !out.is_empty() {
            dot = true;
            out.push(c);
        }
    }
    let mut out = take_chars(&out, 32);
    if out.ends_with('.') {
        out.pop();
    }
    out
}

fn format_car_number(raw: &str) -> String {
    let kept: Vec<char> = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || is_cjk(*c))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let last = kept.len().saturating_sub(1);
    let plate: Vec<char> = kept
        .iter()
        .enumerate()
        .filter(|(i, c)| c.is_ascii_alphanumeric() || *i == 0 || *i == last)
        .map(|(_, c)| *c)
        .collect();
    if plate.len() <= 8 {
        return plate.into_iter().collect();
    }
    // Cut: the new last character is kept only if it may stand there
    // (it is in the middle of the plate, so it is a letter or a digit).
    plate.into_iter().take(8).collect()
}

fn format_name(raw: &str) -> String {
    let line = one_line(raw);
    if line.is_ascii() {
        let kept: String = line
            .chars()
            .filter(|c| c.is_ascii_alphabetic() || c.is_ascii_punctuation() || *c == ' ')
            .collect();
        return take_chars(kept.trim(), 20).trim_end().to_owned();
    }
    let kept: String = line
        .chars()
        .filter(|c| is_cjk(*c) || c.is_ascii_alphabetic() || *c == '·')
        .collect();
    take_chars(&kept, 10)
}

/// `¥12.34` from 1234 fen: yuan with two decimals after one currency sign.
/// WeChat allows ten digits; an amount of more (¥100,000,000.00 and up,
/// the top of cashdesk's range) is written without its decimals when they
/// are `.00`, else is empty (not representable). A negative amount is
/// empty too (the amount type has no sign).
pub fn format_amount(fen: i64) -> String {
    if fen < 0 {
        return String::new();
    }
    let (yuan, cents) = (fen / 100, fen % 100);
    let full = format!("{yuan}.{cents:02}");
    if full.len() - 1 <= 10 {
        return format!("¥{full}");
    }
    let whole = yuan.to_string();
    if cents == 0 && whole.len() <= 10 {
        format!("¥{whole}")
    } else {
        String::new()
    }
}

/// `2019年10月1日 15:01`: the instant in China time (UTC+8), to the minute.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&cashdesk_core::time::shanghai())
        .format("%Y年%-m月%-d日 %H:%M")
        .to_string()
}

/// `2019年10月1日`: the instant's day in China time.
pub fn format_date(at: DateTime<Utc>) -> String {
    at.with_timezone(&cashdesk_core::time::shanghai())
        .format("%Y年%-m月%-d日")
        .to_string()
}

/// An instant from text, and whether the text had a time of day.
fn parse_instant(raw: &str) -> Option<(DateTime<Utc>, bool)> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some((t.with_timezone(&Utc), true));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return match s.len() {
            10 => DateTime::from_timestamp(n, 0).map(|t| (t, true)),
            13 => DateTime::from_timestamp_millis(n).map(|t| (t, true)),
            _ => None,
        };
    }
    let china = |naive: NaiveDateTime| {
        cashdesk_core::time::shanghai()
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y/%m/%d %H:%M:%S",
        "%Y/%m/%d %H:%M",
        "%Y年%m月%d日 %H:%M:%S",
        "%Y年%m月%d日 %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return china(n).map(|t| (t, true));
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return china(d.and_hms_opt(0, 0, 0)?).map(|t| (t, false));
        }
    }
    None
}

/// `raw` without one currency sign first and one `元` last.
fn amount_body(raw: &str) -> &str {
    let s = raw.trim();
    let s = s
        .strip_prefix(['¥', '￥'])
        .map(str::trim_start)
        .unwrap_or(s);
    s.strip_suffix('元').map(str::trim_end).unwrap_or(s)
}

/// Fen from yuan text: an optional currency sign first, an optional `元`
/// last, at most two decimals.
fn parse_yuan(raw: &str) -> Option<i64> {
    cashdesk_core::Fen::from_yuan("amount", amount_body(raw))
        .ok()
        .map(|f| f.get())
}

/// Whether `value` is in one of WeChat's time shapes: one point or two
/// joined by `~`, each `[date ]HH:MM[:SS]` or `date`, the date
/// `YYYY年M月D日`, `YYYY-MM-DD` or `YYYY/MM/DD`; `need` says which part
/// every point must have (a `time` its time of day, a `date` its date).
fn wechat_time(value: &str, need_time: bool) -> bool {
    let point = |p: &str| -> Option<(bool, bool)> {
        let tokens: Vec<&str> = p.split_whitespace().collect();
        let date = |t: &str| {
            ["%Y年%m月%d日", "%Y-%m-%d", "%Y/%m/%d"]
                .iter()
                .any(|f| NaiveDate::parse_from_str(t, f).is_ok())
        };
        let time = |t: &str| {
            ["%H:%M", "%H:%M:%S"]
                .iter()
                .any(|f| chrono::NaiveTime::parse_from_str(t, f).is_ok())
        };
        match tokens.as_slice() {
            [d, t] if date(d) && time(t) => Some((true, true)),
            [t] if time(t) => Some((false, true)),
            [d] if date(d) => Some((true, false)),
            _ => None,
        }
    };
    let parts: Vec<&str> = value.split('~').collect();
    value.len() <= 64
        && parts.len() <= 2
        && parts.iter().all(|p| {
            point(p.trim()).is_some_and(|(date, time)| if need_time { time } else { date })
        })
}

/// Whether `value` keeps the rules of `key`'s type (a key of no known
/// type: `thing`'s). Empty values never do: WeChat refuses them.
pub fn value_fits(key: &str, value: &str) -> bool {
    let n = value.chars().count();
    if n == 0 {
        return false;
    }
    let all = |f: fn(char) -> bool| value.chars().all(f);
    match KeyType::of_key(key).unwrap_or(KeyType::Thing) {
        KeyType::Thing => n <= 20 && !value.chars().any(char::is_control),
        KeyType::Number => {
            n <= 32
                && all(|c| c.is_ascii_digit() || c == '.')
                && value.matches('.').count() <= 1
                && !value.starts_with('.')
                && !value.ends_with('.')
        }
        KeyType::Letter => n <= 32 && all(|c| c.is_ascii_alphabetic()),
        KeyType::Symbol => n <= 5 && all(|c| c.is_ascii_punctuation()),
        KeyType::CharacterString => n <= 32 && all(|c| c.is_ascii_graphic()),
        KeyType::Time => wechat_time(value, true),
        KeyType::Date => wechat_time(value, false),
        KeyType::Amount => {
            let body = value.strip_prefix(['¥', '￥']).unwrap_or(value);
            let body = body.strip_suffix('元').unwrap_or(body);
            let digits = body.chars().filter(char::is_ascii_digit).count();
            (1..=10).contains(&digits)
                && body.matches('.').count() <= 1
                && !body.starts_with('.')
                && !body.ends_with('.')
                && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        }
        KeyType::PhoneNumber => n <= 17 && all(|c| c.is_ascii_digit() || "+-()".contains(c)),
        KeyType::CarNumber => {
            let chars: Vec<char> = value.chars().collect();
            n <= 8
                && chars.iter().enumerate().all(|(i, c)| {
                    c.is_ascii_alphanumeric() || ((i == 0 || i == n - 1) && is_cjk(*c))
                })
        }
        KeyType::Name => {
            if value.is_ascii() {
                n <= 20 && all(|c| c.is_ascii_alphabetic() || c.is_ascii_punctuation() || c == ' ')
            } else {
                n <= 10 && all(|c| is_cjk(c) || c.is_ascii_alphabetic() || c == '·')
            }
        }
        KeyType::Phrase => n <= 5 && all(is_cjk),
    }
}

#[cfg(test)]
mod tests;
