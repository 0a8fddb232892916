//! The data folder and the secrets in it are the owner's alone: the folder
//! 0700, the secret files 0600 — not only when cashdesk creates them but
//! on every start, so a folder made by hand, by a package, or restored from
//! a backup with wider permissions is narrowed (and the operator told, in
//! the log). The SQLite files get the same treatment in `cashdesk-store`.
//!
//! Narrowing is friendlier than refusing to start, with one exception: a
//! folder that others may write into (mode `o+w`, such as `/tmp` with its
//! sticky bit) is shared by design, and making it 0700 would break whoever
//! shares it, so cashdesk refuses to start there instead.

use std::path::Path;

use anyhow::Context as _;

/// Creates `dir` (and its parents) 0700, or narrows an existing one to
/// 0700 (module comment).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
    }
    #[cfg(unix)]
    {
        let mode = mode_of(dir)?;
        anyhow::ensure!(
            mode & 0o002 == 0,
            "the data folder {} can be written by anyone (mode {mode:o}); give cashdesk a folder of its own",
            dir.display()
        );
        narrow(dir, mode, 0o700, "data folder")?;
    }
    Ok(())
}

/// Narrows an existing secret file to 0600 if it is wider.
pub fn owner_only_file(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    narrow(path, mode_of(path)?, 0o600, "secret file")?;
    Ok(())
}

#[cfg(unix)]
fn mode_of(path: &Path) -> anyhow::Result<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(meta.permissions().mode() & 0o7777)
}

/// Sets `want` when `mode` lets the group or others in.
#[cfg(unix)]
fn narrow(path: &Path, mode: u32, want: u32, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).with_context(|| {
        format!(
            "the {what} {} is open to others (mode {mode:o}) and could not be made {want:o} \
             (run `chmod {want:o} {}`, or run cashdesk as the owner)",
            path.display(),
            path.display()
        )
    })?;
    tracing::warn!(
        path = %path.display(),
        from = format!("{mode:o}"),
        to = format!("{want:o}"),
        "the {what} was open to others; made it owner-only"
    );
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        mode_of(path).expect("mode") & 0o777
    }

    /// Issue 13: a data folder that exists with wider permissions is made
    /// 0700, a new one is created 0700, a secret file is made 0600.
    #[test]
    fn the_data_folder_is_owner_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fresh = tmp.path().join("a/b/data");
        create_private_dir(&fresh).expect("created");
        assert_eq!(mode(&fresh), 0o700);

        let existing = tmp.path().join("existing");
        std::fs::create_dir(&existing).expect("mkdir");
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private_dir(&existing).expect("narrowed");
        assert_eq!(mode(&existing), 0o700);

        let private = tmp.path().join("private");
        std::fs::create_dir(&private).expect("mkdir");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        create_private_dir(&private).expect("left alone");
        assert_eq!(mode(&private), 0o500, "an owner-only folder is not touched");

        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let err = create_private_dir(&shared)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("can be written by anyone"), "{err}");
        assert_eq!(mode_of(&shared).expect("mode"), 0o1777, "not changed");

        let key = existing.join("master.key");
        std::fs::write(&key, "k").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        owner_only_file(&key).expect("narrowed");
        assert_eq!(mode(&key), 0o600);
    }
}
