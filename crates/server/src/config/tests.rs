//! Unit tests of the configuration: defaults, the file, the sample file,
//! unknown keys and variables, postures, value parsing and validation.

use super::*;

#[test]
fn defaults_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "listen = \"0.0.0.0:9000\"\nadmin_token = 1234567890123456\nbinding_auto_approve_secs = 5\nlog_format = \"json\"\n",
    )
    .expect("write");
    let figment = Figment::from(Serialized::defaults(Config::default())).merge(Toml::file(&file));
    let c: Config = figment.extract().expect("config");
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.admin_token.as_deref(), Some("1234567890123456"));
    assert_eq!(c.binding_auto_approve_secs, Some(5));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.sandbox, None);
    assert_eq!(c.mode().0, Mode::Production, "0.0.0.0 is not loopback");
    assert!(!c.sandbox_enabled());
    assert_eq!(c.body_limit_bytes, 65_536);
    assert!(!format!("{c:?}").contains("1234567890"));
    assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
}

/// `deploy/cashdesk.toml` parses as it is, and with every commented
/// `# key = value` line uncommented it sets every field of Config,
/// each of which the environment can set too.
#[test]
fn the_sample_file_names_every_setting() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cashdesk.toml");
    let text = std::fs::read_to_string(&path).expect("deploy/cashdesk.toml");
    let as_is: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(&text))
        .extract()
        .expect("the sample parses");
    assert_eq!(
        as_is,
        Config::default(),
        "everything in it is commented out"
    );

    let mut keys = Vec::new();
    let uncommented: String = text
        .lines()
        .filter_map(|l| {
            let setting = l.strip_prefix("# ")?;
            let (key, _) = setting.split_once(" = ")?;
            key.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| {
                    keys.push(key.to_owned());
                    format!("{setting}\n")
                })
        })
        .collect();
    let all: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(&uncommented))
        .extract()
        .unwrap_or_else(|e| panic!("the uncommented sample parses: {e}"));
    all.validate().expect("the sample's values are valid");

    let fields = serde_json::to_value(Config::default()).expect("json");
    let mut fields: Vec<String> = fields
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    fields.sort();
    keys.sort();
    assert_eq!(keys, fields, "the sample names every field, once");
    let mut env: Vec<String> = ENV_KEYS.iter().map(|k| (*k).to_owned()).collect();
    env.sort();
    assert_eq!(env, fields, "ENV_KEYS lists every field");
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "sanbox = false\n").expect("write");
    let err = Config::load(Some(&file)).expect_err("refused");
    assert!(format!("{err:#}").contains("sanbox"), "{err:#}");
}

#[test]
fn unknown_environment_variables_are_named() {
    let vars = [
        "CASHDESK_SANBOX",
        "CASHDESK_SANDBOX",
        "CASHDESK_LOG",
        "CASHDESK_TEST_POSTGRES_URL",
        "CASHDESK_TEST_ANYTHING",
        "CASHDESK_RATE_LIMIT_API",
        "PATH",
    ]
    .map(String::from);
    assert_eq!(unknown_env_vars(vars), vec!["CASHDESK_SANBOX".to_owned()]);
}

#[test]
fn postures() {
    let mut c = Config::default();
    assert_eq!(c.mode().0, Mode::Development);
    assert!(
        c.mode().1.contains("127.0.0.1:8080 is loopback"),
        "{}",
        c.mode().1
    );
    assert!(c.sandbox_enabled());
    assert_eq!(c.sandbox_own_listener(), None, "on the public listener");

    c.listen = "0.0.0.0:8080".parse().expect("addr");
    assert_eq!(c.mode().0, Mode::Production);
    assert!(
        c.mode().1.contains("0.0.0.0:8080 is not loopback"),
        "{}",
        c.mode().1
    );
    assert!(!c.sandbox_enabled(), "off by default in production");
    assert_eq!(c.sandbox_own_listener(), None);
    c.sandbox = Some(true);
    assert_eq!(
        c.sandbox_own_listener(),
        Some("127.0.0.1:0".parse().expect("addr")),
        "an enabled sandbox gets its own loopback listener"
    );

    c.mode = Some(Mode::Development);
    assert_eq!(c.mode().0, Mode::Development, "allowed, but said");
    assert!(c.mode().1.contains("reachable from the network"));

    c.sandbox_listen = Some("0.0.0.0:8090".parse().expect("addr"));
    assert!(
        c.validate().is_err(),
        "the sandbox listener must be loopback"
    );
    c.sandbox_listen = Some("[::1]:8090".parse().expect("addr"));
    assert!(c.validate().is_ok());
    assert_eq!(c.sandbox_own_listener(), c.sandbox_listen);
}

#[test]
fn trusted_proxies_from_a_list_or_a_string() {
    let from_toml: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(
            r#"trusted_proxies = ["10.0.0.0/8", "127.0.0.1", "::1"]"#,
        ))
        .extract()
        .expect("list");
    let from_string: Config = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(
            r#"trusted_proxies = "10.0.0.0/8, 127.0.0.1 ::1""#,
        ))
        .extract()
        .expect("string");
    assert_eq!(from_toml.trusted_proxies, from_string.trusted_proxies);
    assert_eq!(
        from_toml
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
    );
    let bad = Figment::from(Serialized::defaults(Config::default()))
        .merge(Toml::string(r#"trusted_proxies = ["10.0.0.0/33"]"#))
        .extract::<Config>();
    assert!(bad.is_err());
}

#[test]
fn database_url_defaults_to_sqlite_in_data_dir() {
    let c = Config::for_tests("/tmp/x");
    assert_eq!(c.effective_database_url(), "sqlite:///tmp/x/cashdesk.db");
    assert_eq!(
        redact_url("postgres://u:secret@h/db"),
        "postgres://u:***@h/db"
    );
}

#[test]
fn schedules() {
    assert_eq!(
        parse_schedule("15s, 100ms,3m,1h").unwrap(),
        vec![
            std::time::Duration::from_secs(15),
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(180),
            std::time::Duration::from_secs(3600)
        ]
    );
    for bad in ["", "15", "s", "1d", "25h", "1.5s"] {
        assert!(parse_schedule(bad).is_err(), "{bad}");
    }
    let default = Config::default().notify_schedule();
    assert_eq!(default.len(), 15);
    assert_eq!(
        default.iter().sum::<std::time::Duration>(),
        std::time::Duration::from_secs(24 * 3600 + 4 * 60),
        "24h4m in all"
    );
    let mut c = Config {
        notify_schedule: Some("100ms,1s".into()),
        ..Config::default()
    };
    assert_eq!(
        c.notify_schedule(),
        vec![
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(1)
        ]
    );
    c.notify_schedule = Some("soon".into());
    assert!(c.validate().is_err());
}

#[test]
fn validation() {
    let mut c = Config::for_tests("/tmp/x");
    c.public_url = Some("ftp://x".into());
    assert!(c.validate().is_err());
    c.public_url = Some("https://pay.example.com".into());
    assert!(c.validate().is_ok());
    c.admin_token = Some("short".into());
    assert!(c.validate().is_err());
}
