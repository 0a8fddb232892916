//! Small file helpers for the sandbox's persisted state: files are written
//! atomically (temp file + rename) or appended to ([`crate::journal`]),
//! with mode 0600 from the moment they exist, in a 0700 directory.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

/// Create `dir` (and parents) with mode 0700 where the platform has modes.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Write `bytes` to `path` atomically; the file is 0600 before any byte lands.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_private_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Write `path` atomically with what `fill` writes (buffered): a temp file,
/// 0600 before any byte lands, synced, then renamed over `path`.
pub fn write_private_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", cashdesk_crypto::random::nonce_str(8)));
    let result = (|| {
        let file = private_options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = std::io::BufWriter::new(file);
        fill(&mut w).with_context(|| format!("writing {}", tmp.display()))?;
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Open options whose new files are 0600 from the start (where the
/// platform has modes).
pub fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// The DER inside the first PEM block of `pem`.
pub fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let mut in_block = false;
    let mut b64 = String::new();
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            in_block = true;
        } else if line.starts_with("-----END") {
            break;
        } else if in_block {
            b64.push_str(line);
        }
    }
    anyhow::ensure!(!b64.is_empty(), "no PEM block");
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .context("PEM body is not base64")
}
