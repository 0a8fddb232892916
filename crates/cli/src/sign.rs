//! `cashdesk sign`: the five `Cashdesk-*` headers for one request, so a
//! person can call the signed API with curl. Signing is the SDK's
//! [`RequestSigner`] (the same code the server verifies with), never a copy.
//!
//! A signature is valid for ±300 s and its nonce once: print it right
//! before the request. `--timestamp` and `--nonce` reproduce a given
//! signature (debugging a merchant's integration).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use cashdesk_sdk::{Credentials, RequestSigner, Secret, SignType, SignedHeaders};
use clap::{ArgGroup, Args};

use crate::cli::parse_sign_type;

const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Clone, Args)]
#[command(group(
    ArgGroup::new("key_source")
        .required(true)
        .args(["key", "key_file", "private_key_pem_file", "app_file"])
))]
pub struct SignArgs {
    /// The app id (from registration). Optional with --app-file.
    #[arg(long)]
    pub app_id: Option<String>,
    /// The app key (HMAC-SHA256, HMAC-SM3, MD5). Visible to other local
    /// users in the process list: prefer --key-file.
    #[arg(long)]
    pub key: Option<String>,
    /// A file holding the app key (surrounding whitespace ignored).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// The app's private key (PEM) for RSA2 or SM2.
    #[arg(long, value_name = "FILE")]
    pub private_key_pem_file: Option<PathBuf>,
    /// A JSON file with `appId`, `appKey` and optionally `signType`, such as
    /// the demo app's `<data_dir>/demo-app.json`.
    #[arg(long, value_name = "FILE")]
    pub app_file: Option<PathBuf>,
    /// HMAC-SHA256 (default for app keys), HMAC-SM3, MD5, RSA2 or SM2.
    /// With --private-key-pem-file, guessed from the key when omitted.
    #[arg(long, value_parser = parse_sign_type)]
    pub sign_type: Option<SignType>,
    /// The HTTP method, as sent.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// The path and query, exactly as on the request line
    /// (e.g. /api/cashier-desk/unified/orders).
    #[arg(long)]
    pub path: String,
    /// The request body, exactly as sent.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// A file holding the request body, sent byte for byte.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Print a curl command line instead of the headers.
    #[arg(long)]
    pub curl: bool,
    /// The server's base URL for --curl. Default: CASHDESK_URL, the
    /// --app-file's baseUrl, or http://127.0.0.1:8080.
    #[arg(long, env = "CASHDESK_URL")]
    pub base_url: Option<String>,
    /// Sign with this unix timestamp instead of now.
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Sign with this nonce instead of a fresh random one.
    #[arg(long)]
    pub nonce: Option<String>,
}

pub fn run(args: &SignArgs) -> anyhow::Result<()> {
    print!("{}", render(args)?);
    Ok(())
}

/// What `cashdesk sign` prints for `args`.
pub fn render(args: &SignArgs) -> anyhow::Result<String> {
    let (app_id, credentials, file_base_url) = credentials(args)?;
    let signer = RequestSigner::new(app_id, &credentials).context("cannot use the key")?;
    let method = args.method.trim().to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        bail!("--method `{}` is not an HTTP method", args.method);
    }
    if !args.path.starts_with('/') {
        bail!(
            "--path must start with '/' (the path and query, e.g. /api/cashier-desk/unified/orders)"
        );
    }
    let body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(file)) => std::fs::read(file)
            .with_context(|| format!("cannot read --body-file {}", file.display()))?,
        (None, None) => Vec::new(),
    };
    let signed = match (args.timestamp, &args.nonce) {
        (None, None) => signer.sign_request(&method, &args.path, &body)?,
        (ts, nonce) => {
            let ts = ts.unwrap_or_else(unix_now);
            let nonce = match nonce {
                Some(n) => n.clone(),
                None => cashdesk_crypto::random::nonce_str(32),
            };
            signer.sign_request_at(&method, &args.path, &body, ts, &nonce)?
        }
    };
    if args.curl {
        let base_url = args
            .base_url
            .clone()
            .or(file_base_url)
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        curl_command(args, &base_url, &method, &signed, &body)
    } else {
        Ok(signed
            .pairs()
            .iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn read_trimmed(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        bail!("{what} {} is empty", path.display());
    }
    Ok(text)
}

/// The app id, its credentials, and the base URL an --app-file names.
fn credentials(args: &SignArgs) -> anyhow::Result<(String, Credentials, Option<String>)> {
    let mut app_id = args.app_id.clone();
    let mut file_base_url = None;
    let mut sign_type = args.sign_type;
    let shared_key = if let Some(key) = &args.key {
        Some(key.trim().to_owned())
    } else if let Some(file) = &args.key_file {
        Some(read_trimmed(file, "--key-file")?)
    } else if let Some(file) = &args.app_file {
        let text = read_trimmed(file, "--app-file")?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--app-file {} is not JSON", file.display()))?;
        let field = |name: &str| v.get(name).and_then(|x| x.as_str()).map(str::to_owned);
        if app_id.is_none() {
            app_id = field("appId");
        }
        file_base_url = field("baseUrl");
        if sign_type.is_none()
            && let Some(t) = field("signType")
        {
            sign_type = Some(parse_sign_type(&t).map_err(anyhow::Error::msg)?);
        }
        Some(
            field("appKey")
                .with_context(|| format!("--app-file {} has no appKey", file.display()))?,
        )
    } else {
        None
    };
    let app_id = app_id.context("--app-id is required (or an --app-file with appId)")?;
    if app_id.trim().is_empty() {
        bail!("--app-id is empty");
    }

    let credentials = match (shared_key, &args.private_key_pem_file) {
        (Some(key), _) => {
            if key.is_empty() {
                bail!("the app key is empty");
            }
            let sign_type = sign_type.unwrap_or(SignType::HmacSha256);
            if sign_type.is_asymmetric() {
                bail!("{sign_type} signs with a private key: use --private-key-pem-file");
            }
            Credentials::Shared {
                sign_type,
                app_key: Secret::new(key),
            }
        }
        (None, Some(file)) => {
            let pem = Secret::new(read_trimmed(file, "--private-key-pem-file")?);
            let rsa = || Credentials::Rsa {
                private_key_pem: pem.clone(),
                platform_public_key_pem: String::new(),
            };
            let sm2 = || Credentials::Sm2 {
                private_key_pem: pem.clone(),
                platform_public_key_pem: String::new(),
            };
            match sign_type {
                Some(SignType::Rsa2) => rsa(),
                Some(SignType::Sm2) => sm2(),
                Some(other) => bail!("{other} signs with the app key: use --key or --key-file"),
                None if RequestSigner::new(app_id.clone(), &rsa()).is_ok() => rsa(),
                None if RequestSigner::new(app_id.clone(), &sm2()).is_ok() => sm2(),
                None => bail!(
                    "--private-key-pem-file {} is neither an RSA nor an SM2 private key",
                    file.display()
                ),
            }
        }
        (None, None) => bail!("give one of --key, --key-file, --private-key-pem-file, --app-file"),
    };
    Ok((app_id, credentials, file_base_url))
}

/// POSIX shell single quoting.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn curl_command(
    args: &SignArgs,
    base_url: &str,
    method: &str,
    signed: &SignedHeaders,
    body: &[u8],
) -> anyhow::Result<String> {
    let base = base_url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        bail!("--base-url must be an http(s) URL");
    }
    let mut lines = vec![format!(
        "curl -sS -X {method} {}",
        sh_quote(&format!("{base}{}", args.path))
    )];
    for (name, value) in signed.pairs() {
        lines.push(format!("-H {}", sh_quote(&format!("{name}: {value}"))));
    }
    let has_body = !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE");
    if has_body {
        lines.push(format!("-H {}", sh_quote("Content-Type: application/json")));
        match (&args.body_file, std::str::from_utf8(body)) {
            // curl reads the same file, so the bytes sent are the bytes signed.
            (Some(file), _) => lines.push(format!(
                "--data-binary {}",
                sh_quote(&format!("@{}", file.display()))
            )),
            (None, Ok(text)) => lines.push(format!("--data-raw {}", sh_quote(text))),
            (None, Err(_)) => bail!("--body is not UTF-8; use --body-file"),
        }
    }
    Ok(format!("{}\n", lines.join(" \\\n  ")))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    const APP_ID: &str = "app0123456789abcdef";

    fn parse(extra: &[&str]) -> SignArgs {
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: SignArgs,
        }
        let mut argv = vec!["t"];
        argv.extend_from_slice(extra);
        T::try_parse_from(argv).expect("parses").a
    }

    #[test]
    fn headers_match_the_sdk() {
        let args = parse(&[
            "--app-id",
            APP_ID,
            "--key",
            "k3y",
            "--method",
            "post",
            "--path",
            "/p?x=1",
            "--body",
            "{}",
            "--timestamp",
            "1700000000",
            "--nonce",
            "n1",
        ]);
        let out = render(&args).unwrap();
        let expected = RequestSigner::new(APP_ID, &Credentials::hmac_sha256("k3y"))
            .unwrap()
            .sign_request_at("POST", "/p?x=1", b"{}", 1_700_000_000, "n1")
            .unwrap();
        let want: String = expected
            .pairs()
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn curl_quotes_the_body_for_the_shell() {
        let args = parse(&[
            "--app-id",
            APP_ID,
            "--key",
            "k",
            "-X",
            "POST",
            "--path",
            "/p",
            "--body",
            r#"{"t":"it's"}"#,
            "--curl",
            "--base-url",
            "http://h:1/",
        ]);
        let out = render(&args).unwrap();
        assert!(
            out.starts_with("curl -sS -X POST 'http://h:1/p' \\\n"),
            "{out}"
        );
        assert!(out.contains(r#"--data-raw '{"t":"it'\''s"}'"#), "{out}");
        assert!(
            out.contains("-H 'Cashdesk-Sign-Type: HMAC-SHA256'"),
            "{out}"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let no_app = parse(&["--key", "k", "--path", "/p"]);
        assert!(
            render(&no_app)
                .unwrap_err()
                .to_string()
                .contains("--app-id")
        );
        let rel = parse(&["--app-id", APP_ID, "--key", "k", "--path", "p"]);
        assert!(render(&rel).is_err());
        let asym = parse(&[
            "--app-id",
            APP_ID,
            "--key",
            "k",
            "--path",
            "/p",
            "--sign-type",
            "RSA2",
        ]);
        assert!(render(&asym).is_err());
        let method = parse(&[
            "--app-id", APP_ID, "--key", "k", "--path", "/p", "-X", "GE T",
        ]);
        assert!(render(&method).is_err());
    }
}
