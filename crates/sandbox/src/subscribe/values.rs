//! The sandbox's message templates and WeChat's value rules per key type.
//!
//! Templates: at WeChat a mini-program picks templates from the public
//! library into "my templates" in its admin console, each with its own
//! id. The sandbox has no console, so every sandbox mini-program has the
//! same fixed set ([`TEMPLATES`]), covering what cashdesk sends (payment,
//! refund, refund decision) and one template with a key of every type, to
//! try values against. Any other `template_id` is 40037.
//!
//! Values (PROTOCOLS-2.md §2): a key's type is its word without the
//! number; [`check`] says whether a value keeps that type's rules. This is
//! written apart from the client's formatter (`cashdesk-channels`
//! `wechat::subscribe`) on purpose: the tests that send its output here
//! are two readings of WeChat's rules checking each other.

use chrono::{NaiveDate, NaiveTime};
use serde::Serialize;

/// One template: its id, its title and its keys with their labels.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub id: &'static str,
    pub title: &'static str,
    pub keys: &'static [(&'static str, &'static str)],
}

/// Every sandbox mini-program's templates.
pub const TEMPLATES: &[Template] = &[
    Template {
        id: "sbx_pay_success",
        title: "支付成功通知",
        keys: &[
            ("character_string1", "订单号"),
            ("amount2", "支付金额"),
            ("thing3", "商品名称"),
            ("time4", "支付时间"),
        ],
    },
    Template {
        id: "sbx_refund_success",
        title: "退款成功通知",
        keys: &[
            ("character_string1", "订单号"),
            ("amount2", "退款金额"),
            ("thing3", "退款原因"),
            ("time4", "退款时间"),
        ],
    },
    Template {
        id: "sbx_refund_decision",
        title: "退款审核结果通知",
        keys: &[
            ("character_string1", "订单号"),
            ("phrase2", "审核结果"),
            ("amount3", "退款金额"),
            ("thing4", "备注"),
            ("date5", "审核日期"),
        ],
    },
    Template {
        id: "sbx_all_keys",
        title: "全部类型（测试）",
        keys: &[
            ("thing1", "事物"),
            ("number2", "数字"),
            ("letter3", "字母"),
            ("symbol4", "符号"),
            ("character_string5", "字符串"),
            ("time6", "时间"),
            ("date7", "日期"),
            ("amount8", "金额"),
            ("phone_number9", "电话"),
            ("car_number10", "车牌"),
            ("name11", "姓名"),
            ("phrase12", "汉字"),
        ],
    },
];

pub fn template(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.id == id)
}

fn cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
        || ('\u{3400}'..='\u{4DBF}').contains(&c)
        || ('\u{20000}'..='\u{2A6DF}').contains(&c)
        || ('\u{F900}'..='\u{FAFF}').contains(&c)
}

/// `[date ]time`, `date` or two of them joined by `~`; the date
/// `YYYY年M月D日`, `YYYY-MM-DD` or `YYYY/MM/DD`, the time `HH:MM[:SS]`.
/// `need_time`: each point needs a time of day (`time`), else a date (`date`).
fn time_like(v: &str, need_time: bool) -> bool {
    fn is_date(s: &str) -> bool {
        ["%Y年%m月%d日", "%Y-%m-%d", "%Y/%m/%d"]
            .into_iter()
            .any(|f| NaiveDate::parse_from_str(s, f).is_ok())
    }
    fn is_time(s: &str) -> bool {
        ["%H:%M", "%H:%M:%S"]
            .into_iter()
            .any(|f| NaiveTime::parse_from_str(s, f).is_ok())
    }
    if v.len() > 64 {
        return false;
    }
    let mut points = 0;
    for point in v.split('~') {
        points += 1;
        let words: Vec<&str> = point.split_whitespace().collect();
        let (date, time) = match words[..] {
            [d, t] if is_date(d) && is_time(t) => (true, true),
            [x] if is_date(x) => (true, false),
            [x] if is_time(x) => (false, true),
            _ => return false,
        };
        if (need_time && !time) || (!need_time && !date) {
            return false;
        }
    }
    points <= 2
}

/// Whether `value` keeps the rules of `key`'s type. `None`: the key has no
/// known type (no sandbox template has one).
pub fn check(key: &str, value: &str) -> Option<bool> {
    let n = value.chars().count();
    let only = |f: &dyn Fn(char) -> bool| value.chars().all(f);
    let word = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let ok = match word {
        "thing" => n <= 20 && !value.chars().any(char::is_control),
        "number" => {
            n <= 32
                && only(&|c| c.is_ascii_digit() || c == '.')
                && value.split('.').count() <= 2
                && value.split('.').all(|part| !part.is_empty())
        }
        "letter" => n <= 32 && only(&|c| c.is_ascii_alphabetic()),
        "symbol" => n <= 5 && only(&|c| c.is_ascii_punctuation()),
        "character_string" => n <= 32 && only(&|c| c.is_ascii_graphic()),
        "time" => time_like(value, true),
        "date" => time_like(value, false),
        "amount" => {
            let v = value.strip_prefix(['¥', '￥']).unwrap_or(value);
            let v = v.strip_suffix('元').unwrap_or(v);
            let digits = v.chars().filter(char::is_ascii_digit).count();
            (1..=10).contains(&digits)
                && v.chars().all(|c| c.is_ascii_digit() || c == '.')
                && v.split('.').count() <= 2
                && v.split('.').all(|part| !part.is_empty())
        }
        "phone_number" => n <= 17 && only(&|c| c.is_ascii_digit() || "+-()".contains(c)),
        "car_number" => {
            n <= 8
                && value
                    .chars()
                    .enumerate()
                    .all(|(i, c)| c.is_ascii_alphanumeric() || ((i == 0 || i + 1 == n) && cjk(c)))
        }
        "name" if value.is_ascii() => {
            n <= 20 && only(&|c| c.is_ascii_alphabetic() || c.is_ascii_punctuation() || c == ' ')
        }
        "name" => n <= 10 && only(&|c| cjk(c) || c.is_ascii_alphabetic() || c == '·'),
        "phrase" => n <= 5 && only(&cjk),
        _ => return None,
    };
    Some(ok && n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_key_has_a_type() {
        for t in TEMPLATES {
            for (key, _) in t.keys {
                assert!(check(key, "x").is_some(), "{}.{key}", t.id);
            }
        }
        assert_eq!(check("thingy1", "x"), None);
    }

    #[test]
    fn limits_per_type() {
        let yes = |k: &str, v: &str| assert_eq!(check(k, v), Some(true), "{k}={v:?}");
        let no = |k: &str, v: &str| assert_eq!(check(k, v), Some(false), "{k}={v:?}");
        yes("thing1", &"中".repeat(20));
        no("thing1", &"中".repeat(21));
        no("thing1", "");
        no("thing1", "a\nb");
        yes("number2", "1234.5");
        no("number2", "1.2.3");
        no("number2", "12.");
        no("number2", &"1".repeat(33));
        yes("letter3", "abcXYZ");
        no("letter3", "abc1");
        yes("symbol4", "+-*/=");
        no("symbol4", "+-*/=!");
        yes("character_string5", "P2026-1207/#1");
        no("character_string5", "订单1");
        no("character_string5", &"a".repeat(33));
        yes("time6", "2019年10月1日 15:01");
        yes("time6", "15:01");
        yes("time6", "2019-10-01 15:01:00~2019-10-01 16:00");
        no("time6", "2019年10月1日");
        no("time6", "tomorrow");
        yes("date7", "2019年10月1日");
        yes("date7", "2019年10月1日 15:01");
        no("date7", "15:01");
        yes("amount8", "¥12.34");
        yes("amount8", "12.34元");
        yes("amount8", "¥99999999.99");
        no("amount8", "¥100000000.00");
        no("amount8", "¥");
        no("amount8", "USD 1");
        yes("phone_number9", "+86-0766-66888866");
        no("phone_number9", "+86-0766-668888661");
        yes("car_number10", "粤B12345");
        yes("car_number10", "粤B1234学");
        no("car_number10", "粤B12中45");
        no("car_number10", "粤B1234567");
        yes("name11", "张三");
        yes("name11", "Zhang San");
        no("name11", "一二三四五六七八九十一");
        no("name11", &"a".repeat(21));
        yes("phrase12", "配送中");
        no("phrase12", "配送中了吗啊");
        no("phrase12", "ok");
    }
}
