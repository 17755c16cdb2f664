//! Writes a rotated refresh token back to its file, atomically: a temporary file in the same
//! directory, created by the `tempfile` crate (a random name, `O_CREAT | O_EXCL`, mode 0600),
//! written and synced, then renamed over the old one (rename(2) replaces a file atomically on
//! one file system). A crash leaves the old token or the new one, never half of one.
//! Microsoft's identity platform hands out a new refresh token with each refresh; where the old
//! one stops working, losing the new one would lock the seed out until someone runs
//! `mailcanary oauth login` again.
//!
//! Why a random name: a predictable one (`.{name}.{pid}.tmp`, and the pid is 1 in a container)
//! lets anyone who can write to the directory plant a file or a symlink there first, so that
//! the write fails and the new token is lost. An exclusive create under a random name never
//! opens what someone else put there, retries on a collision, and on failure removes only the
//! file it created itself.

use std::io::Write;
use std::path::Path;

/// Replaces `path`'s content with `token` (and a newline), mode 0600.
pub fn write_token_file(path: &Path, token: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".to_string());
    // Mode 0600 is tempfile's default on Unix; said here so that it stays so.
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    // Dropped on any error below: tempfile then removes the file it created, and only that.
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(token.as_bytes())?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_with_mode_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("refresh-token");
        std::fs::write(&p, "old\n").expect("write");
        write_token_file(&p, "new-token").expect("write back");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "new-token\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(names(dir.path()), vec!["refresh-token".to_string()]);
    }

    #[test]
    fn creates_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("new");
        write_token_file(&p, "t").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "t\n");
    }

    #[test]
    fn a_failed_write_keeps_the_old_token_and_removes_only_its_own_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The target is a directory: the rename fails, the temporary file is removed.
        let p = dir.path().join("sub");
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::write(p.join("x"), "keep").expect("write");
        // Someone else's file with a temporary-looking name is not ours to remove.
        let theirs = dir.path().join(".sub.other.tmp");
        std::fs::write(&theirs, "not ours").expect("write");
        assert!(write_token_file(&p, "t").is_err());
        assert_eq!(
            names(dir.path()),
            vec![".sub.other.tmp".to_string(), "sub".to_string()]
        );
        assert_eq!(std::fs::read_to_string(&theirs).expect("read"), "not ours");
        assert_eq!(std::fs::read_to_string(p.join("x")).expect("read"), "keep");
    }

    /// The old code's temporary name, `.{name}.{pid}.tmp`: planted, it made the write fail.
    fn old_temp_name(dir: &Path, name: &str) -> std::path::PathBuf {
        dir.join(format!(".{name}.{}.tmp", std::process::id()))
    }

    #[test]
    fn a_file_planted_at_a_predictable_temporary_name_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("refresh-token");
        std::fs::write(&p, "old\n").expect("write");
        let planted = old_temp_name(dir.path(), "refresh-token");
        std::fs::write(&planted, "planted").expect("plant");
        write_token_file(&p, "rotated").expect("the write succeeds");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "rotated\n");
        assert_eq!(
            std::fs::read_to_string(&planted).expect("read"),
            "planted",
            "the planted file is neither written nor removed"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_a_predictable_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let elsewhere = tempfile::tempdir().expect("tempdir");
        let victim = elsewhere.path().join("victim");
        std::fs::write(&victim, "precious\n").expect("write");
        let p = dir.path().join("refresh-token");
        std::fs::write(&p, "old\n").expect("write");
        let planted = old_temp_name(dir.path(), "refresh-token");
        std::os::unix::fs::symlink(&victim, &planted).expect("plant a symlink");
        write_token_file(&p, "rotated").expect("the write succeeds");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "rotated\n");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read"),
            "precious\n",
            "the symlink's target is untouched"
        );
        let link = std::fs::symlink_metadata(&planted).expect("the symlink is still there");
        assert!(link.file_type().is_symlink());
        // Only the token file and the planted link: no temporary file left behind.
        assert_eq!(names(dir.path()).len(), 2, "{:?}", names(dir.path()));
    }
}
