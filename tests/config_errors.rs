//! One invalid config file per error (tests/fixtures/config/invalid-*.toml), each with its exact
//! message (`.err`) and exit code 3, in the style of blackbox_exporter's testdata.

use std::path::Path;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");

fn check_config(file: &str) -> (i32, String, String) {
    check_config_in(Path::new(DIR), file)
}

fn check_config_in(dir: &Path, file: &str) -> (i32, String, String) {
    // Run from the config's directory so messages name the file as given, not an absolute path.
    let out = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-config", "--config", file])
        .current_dir(dir)
        .output()
        .expect("run mailcanary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A copy of the fixture `config` in a fresh directory, with the fixtures' secret files
/// (`token.key`, `password`) at `mode`: a checkout leaves them as the umask says (0644 as a
/// rule), which `check-config` rightly warns about.
#[cfg(unix)]
fn private_copy(config: &str, mode: u32) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [config, "token.key", "password"] {
        let to = dir.path().join(name);
        std::fs::copy(Path::new(DIR).join(name), &to).expect("copy fixture");
        let mode = if name == config { 0o644 } else { mode };
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    dir
}

#[test]
fn every_invalid_config_gives_its_exact_message_and_exit_3() {
    let mut cases = 0;
    let mut entries: Vec<_> = std::fs::read_dir(DIR)
        .expect("fixture dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.starts_with("invalid-") && name.ends_with(".toml")) {
            continue;
        }
        let expected = std::fs::read_to_string(Path::new(DIR).join(name.replace(".toml", ".err")))
            .unwrap_or_else(|e| panic!("{name}: missing .err file: {e}"));
        let (code, _, stderr) = check_config(&name);
        assert_eq!(code, 3, "{name}: exit code");
        assert_eq!(stderr, expected, "{name}: message");
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} invalid config cases ran");
}

#[test]
fn the_minimal_valid_config_passes() {
    let (code, stdout, stderr) = check_config("valid-minimal.toml");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "valid-minimal.toml: ok (1 routes, 1 seeds, 1 probes per round, every 5m)\n"
    );
}

#[cfg(unix)]
#[test]
fn the_old_reports_key_still_works_with_a_deprecation_warning() {
    // Secret files of mode 0600, so that the deprecation is the only warning.
    let dir = private_copy("deprecated-reports.toml", 0o600);
    let (code, stdout, stderr) = check_config_in(dir.path(), "deprecated-reports.toml");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "deprecated-reports.toml: ok (1 routes, 1 seeds, 1 probes per round, every 5m)\n"
    );
    assert_eq!(
        stderr,
        "mailcanary: warning: reports.rua: [reports.NAME] is deprecated, write [report_mailboxes.rua] (same keys)\n"
    );
    // Deprecations and secret-file warnings are one list, in file order, each file once
    // (the route, the seed and the report mailbox share the password file). The copies are of
    // our own group: only "others" is too much.
    let dir = private_copy("deprecated-reports.toml", 0o644);
    let (code, _, stderr) = check_config_in(dir.path(), "deprecated-reports.toml");
    assert_eq!(code, 0, "{stderr}");
    let fix =
        "(mode 0644): run `chmod 600` on it, or `chmod 640` with mailcanary's group as its group";
    assert_eq!(
        stderr,
        format!(
            "mailcanary: warning: probe.token_key_file: secret file token.key is readable or writable by others {fix}\n\
             mailcanary: warning: routes.main.password_file: secret file password is readable or writable by others {fix}\n\
             mailcanary: warning: reports.rua: [reports.NAME] is deprecated, write [report_mailboxes.rua] (same keys)\n"
        )
    );
}

#[test]
fn shipped_configs_are_valid_where_their_files_exist() {
    // config/example.toml must parse (its secrets come from env vars set here).
    let out = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-config", "--config", "config/example.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MAILCANARY_TOKEN_KEY", "example-token-key-0123456789")
        .env("SMTP_PASSWORD", "x")
        .env("GMAIL_APP_PASSWORD", "x")
        .env("OUTLOOK_REFRESH_TOKEN", "x")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
#[test]
fn check_config_warns_about_secret_files_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let config =
        std::fs::read_to_string(Path::new(DIR).join("valid-minimal.toml")).expect("fixture");
    std::fs::write(dir.path().join("c.toml"), config).expect("write");
    for (name, content, mode) in [
        ("token.key", "0123456789abcdef-key", 0o600),
        ("password", "s3cret", 0o644),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_mailcanary"))
            .args(["check-config", "--config", "c.toml"])
            .current_dir(dir.path())
            .output()
            .expect("run mailcanary")
    };
    let out = run();
    // A warning, not a refusal: exit 0, the summary on stdout, one line per file on stderr
    // (the route and the seed share the password file).
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("c.toml: ok"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mailcanary: warning: routes.main.password_file: secret file password is readable or \
         writable by others (mode 0644): run `chmod 600` on it, or `chmod 640` with mailcanary's \
         group as its group\n"
    );
    std::fs::set_permissions(
        dir.path().join("password"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    assert_eq!(String::from_utf8_lossy(&run().stderr), "");
}
