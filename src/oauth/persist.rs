//! Writes a rotated refresh token back to its file, atomically: a temporary file in the same
//! directory, created with mode 0600, written and synced, then renamed over the old one
//! (rename(2) replaces a file atomically on one file system). A crash leaves the old token or
//! the new one, never half of one. Microsoft's identity platform hands out a new refresh token
//! with each refresh; where the old one stops working, losing the new one would lock the seed
//! out until someone runs `mailcanary oauth login` again.

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
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = open_private(&tmp)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["refresh-token".to_string()]);
    }

    #[test]
    fn creates_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("new");
        write_token_file(&p, "t").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "t\n");
    }

    #[test]
    fn a_failed_write_keeps_the_old_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The target is a directory: the rename fails, the temporary file is removed.
        let p = dir.path().join("sub");
        std::fs::create_dir(&p).expect("mkdir");
        std::fs::write(p.join("x"), "keep").expect("write");
        assert!(write_token_file(&p, "t").is_err());
        let leftovers = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
    }
}
