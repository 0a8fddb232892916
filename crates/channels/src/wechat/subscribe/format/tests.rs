use chrono::TimeZone as _;
use proptest::prelude::*;

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    cashdesk_core::time::shanghai()
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn key_types_by_word() {
    assert_eq!(KeyType::of_key("thing1"), Some(KeyType::Thing));
    assert_eq!(KeyType::of_key("number12"), Some(KeyType::Number));
    assert_eq!(
        KeyType::of_key("character_string4"),
        Some(KeyType::CharacterString)
    );
    assert_eq!(KeyType::of_key("phone_number9"), Some(KeyType::PhoneNumber));
    assert_eq!(KeyType::of_key("car_number10"), Some(KeyType::CarNumber));
    assert_eq!(KeyType::of_key("amount"), Some(KeyType::Amount));
    assert_eq!(KeyType::of_key("things1"), None);
    assert_eq!(KeyType::of_key("1thing"), None);
}

#[test]
fn thing_is_one_line_of_at_most_20_characters() {
    assert_eq!(
        format_value("thing1", "  Coffee\n\tbeans  "),
        "Coffee beans"
    );
    let twenty = "一二三四五六七八九十一二三四五六七八九十";
    assert_eq!(format_value("thing1", twenty), twenty);
    let cut = format_value("thing1", &format!("{twenty}多"));
    assert_eq!(cut, "一二三四五六七八九十一二三四五六七八九…");
    assert_eq!(cut.chars().count(), 20);
    // Four-byte characters are cut whole.
    let emoji = "😀".repeat(25);
    let cut = format_value("thing2", &emoji);
    assert_eq!(cut, format!("{}…", "😀".repeat(19)));
    assert!(value_fits("thing2", &cut));
    assert!(!value_fits("thing2", &emoji));
    assert!(!value_fits("thing2", "a\nb"));
    // A key of no known type is treated as a thing.
    assert_eq!(
        format_value("unknown3", &"x".repeat(30)).chars().count(),
        20
    );
}

#[test]
fn number_letter_symbol_character_string() {
    assert_eq!(format_value("number1", "1,234.50 kg"), "1234.50");
    assert_eq!(format_value("number1", "v1.2.3"), "1.23");
    assert_eq!(format_value("number1", ".5"), "5");
    assert_eq!(format_value("number1", &"9".repeat(40)), "9".repeat(32));
    assert_eq!(
        format_value("number1", &format!("{}.5", "1".repeat(31))),
        "1".repeat(31)
    );
    assert!(!value_fits("number1", "1.2.3") && !value_fits("number1", "-1"));
    assert_eq!(format_value("letter2", "abc-DEF 中 g"), "abcDEFg");
    assert_eq!(format_value("letter2", &"ab".repeat(20)).len(), 32);
    assert_eq!(format_value("symbol3", "a+b-c*d/e=f"), "+-*/=");
    assert!(!value_fits("symbol3", "+-*/=!"));
    assert_eq!(
        format_value("character_string4", "P2026-12 07/订单#1"),
        "P2026-1207/#1"
    );
    let long = "P".repeat(40);
    assert_eq!(format_value("character_string4", &long), "P".repeat(32));
    assert!(!value_fits("character_string4", "a b"));
    assert_eq!(format_value("letter2", "中文"), "");
}

#[test]
fn time_and_date_in_wechats_shape() {
    let t = at(2019, 10, 1, 15, 1);
    assert_eq!(format_time(t), "2019年10月1日 15:01");
    assert_eq!(format_date(t), "2019年10月1日");
    for raw in [
        "2019-10-01T07:01:30Z",
        "2019-10-01T15:01:30+08:00",
        "2019-10-01 15:01:30",
        "2019/10/01 15:01",
        "1569913260",
        "1569913260000",
        "2019年10月1日 15:01",
    ] {
        assert_eq!(format_value("time3", raw), "2019年10月1日 15:01", "{raw}");
        assert_eq!(format_value("date5", raw), "2019年10月1日", "{raw}");
    }
    // A date without a time of day is a date, not a time.
    assert_eq!(format_value("date5", "2019-10-01"), "2019年10月1日");
    assert_eq!(format_value("time3", "2019-10-01"), "");
    for bad in ["", "yesterday", "2019-13-01 10:00", "123"] {
        assert_eq!(format_value("time3", bad), "", "{bad}");
    }
    assert!(value_fits("time3", "15:01"));
    assert!(value_fits(
        "time3",
        "2019年10月1日 15:01~2019年10月1日 16:00"
    ));
    assert!(value_fits("date5", "2019-10-01"));
    assert!(!value_fits("time3", "2019年10月1日"));
    assert!(!value_fits("time3", "1569913260"));
    // Midnight in Beijing is still the same day there.
    assert_eq!(format_date(at(2026, 1, 2, 0, 0)), "2026年1月2日");
}

#[test]
fn amount_is_yuan_after_one_sign() {
    assert_eq!(format_amount(1234), "¥12.34");
    assert_eq!(format_amount(5), "¥0.05");
    assert_eq!(format_amount(0), "¥0.00");
    // Ten digits is the most: ¥99,999,999.99.
    assert_eq!(format_amount(9_999_999_999), "¥99999999.99");
    assert_eq!(format_amount(10_000_000_000), "¥100000000");
    assert_eq!(format_amount(10_000_000_001), "");
    assert_eq!(format_amount(-1), "");
    for raw in ["12.34", "¥12.34", "￥ 12.34", "12.34元", "12.340"] {
        let want = if raw == "12.340" { "" } else { "¥12.34" };
        assert_eq!(format_value("amount2", raw), want, "{raw}");
    }
    assert_eq!(format_value("amount2", "12"), "¥12.00");
    assert_eq!(format_value("amount2", "-3"), "");
    assert!(value_fits("amount2", "¥9.90") && value_fits("amount2", "9.90元"));
    assert!(!value_fits("amount2", "¥12345678901") && !value_fits("amount2", "¥"));
    assert!(!value_fits("amount2", "$$1"));
}

#[test]
fn phone_car_name_phrase() {
    assert_eq!(
        format_value("phone_number5", "+86 0766-6688 8866"),
        "+860766-66888866"
    );
    assert_eq!(
        format_value("phone_number5", &"1".repeat(20)),
        "1".repeat(17)
    );
    assert_eq!(format_value("car_number6", "粤B·12345"), "粤B12345");
    assert_eq!(format_value("car_number6", "粤b-1234学"), "粤B1234学");
    assert_eq!(format_value("car_number6", "京A中1234"), "京A1234");
    let cut = format_value("car_number6", "粤B123456789");
    assert_eq!(cut, "粤B123456");
    assert!(value_fits("car_number6", &cut));
    assert!(!value_fits("car_number6", "粤B12中34"));
    assert_eq!(format_value("name7", "张三"), "张三");
    assert_eq!(
        format_value("name7", "阿卜杜拉·买买提·艾力江·玉素甫"),
        "阿卜杜拉·买买提·艾"
    );
    assert_eq!(format_value("name7", "Zhang San 3rd"), "Zhang San rd");
    assert_eq!(
        format_value("name7", "Alexander Maximilian Smith"),
        "Alexander Maximilian"
    );
    assert!(!value_fits("name7", "张三Zhang San Junior"));
    assert_eq!(format_value("phrase8", "配送中"), "配送中");
    assert_eq!(format_value("phrase8", "已发货，请查收！"), "已发货请查");
    assert_eq!(format_value("phrase8", "shipped"), "");
    assert!(!value_fits("phrase8", "ok"));
}

const KEYS: [&str; 13] = [
    "thing1",
    "number2",
    "letter3",
    "symbol4",
    "character_string5",
    "time6",
    "date7",
    "amount8",
    "phone_number9",
    "car_number10",
    "name11",
    "phrase12",
    "other13",
];

proptest! {
    /// Whatever comes in, what comes out is empty or keeps the key's rules.
    #[test]
    fn formatted_values_fit(raw in "\\PC{0,60}|[0-9 .:/年月日-]{0,30}") {
        for key in KEYS {
            let v = format_value(key, &raw);
            prop_assert!(v.is_empty() || value_fits(key, &v), "{key}: {raw:?} -> {v:?}");
        }
    }

    #[test]
    fn amounts_in_range_fit(fen in 0i64..=cashdesk_core::money::MAX_FEN) {
        let v = format_amount(fen);
        prop_assert!(value_fits("amount1", &v), "{v}");
        // Exact: back to the same fen.
        let yuan = v.trim_start_matches('¥');
        prop_assert_eq!(cashdesk_core::Fen::from_yuan("a", yuan).unwrap().get(), fen);
    }

    #[test]
    fn times_fit(secs in 0i64..4_102_444_800) {
        let t = DateTime::from_timestamp(secs, 0).unwrap();
        prop_assert!(value_fits("time1", &format_time(t)));
        prop_assert!(value_fits("date1", &format_date(t)));
        prop_assert_eq!(!format_value("time1", &secs.to_string()).is_empty(), secs.to_string().len() == 10);
    }
}
