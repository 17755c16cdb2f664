//! One invalid config file per error (tests/fixtures/config/invalid-*.toml), each with its exact
//! message (`.err`) and exit code 3, in the style of blackbox_exporter's testdata.
//! Likewise for the web config (tests/fixtures/web/), and the tools that make one:
//! `hash-password` and scripts/web-secrets.

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

/// The web config fixtures (tests/fixtures/web/invalid-*.yml, the exporter toolkit's format),
/// each with its exact message (`.err`) and exit 3, checked by `check-config --web.config.file`
/// beside a valid config.
const WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/web");

fn check_web_config(file: &str) -> (i32, String, String) {
    // The main config from a private copy (its secret files 0600, so no permission warning
    // gets in the way), named as the fixtures name it: `../config/valid-minimal.toml`.
    let config = private_copy("valid-minimal.toml", 0o600);
    let config_path = config.path().join("valid-minimal.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-config", "--config"])
        .arg(&config_path)
        .args(["--web.config.file", file])
        .current_dir(WEB_DIR)
        .output()
        .expect("run mailcanary");
    let as_named = |text: &[u8]| {
        String::from_utf8_lossy(text).replace(
            &config_path.display().to_string(),
            "../config/valid-minimal.toml",
        )
    };
    (
        out.status.code().unwrap_or(-1),
        as_named(&out.stdout),
        as_named(&out.stderr),
    )
}

#[test]
fn every_invalid_web_config_gives_its_exact_message_and_exit_3() {
    let mut names: Vec<String> = std::fs::read_dir(WEB_DIR)
        .expect("fixture dir")
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.starts_with("invalid-") && n.ends_with(".yml"))
        .collect();
    names.sort();
    for name in &names {
        let expected =
            std::fs::read_to_string(Path::new(WEB_DIR).join(name.replace(".yml", ".err")))
                .unwrap_or_else(|e| panic!("{name}: missing .err file: {e}"));
        let (code, stdout, stderr) = check_web_config(name);
        assert_eq!(code, 3, "{name}: exit code");
        assert_eq!(stderr, expected, "{name}: message");
        assert_eq!(stdout, "", "{name}: nothing is said valid");
    }
    assert!(
        names.len() >= 10,
        "only {} invalid web config cases ran",
        names.len()
    );
}

#[test]
fn the_valid_web_configs_pass_with_a_summary() {
    let (code, stdout, stderr) = check_web_config("valid-tls-auth.yml");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "../config/valid-minimal.toml: ok (1 routes, 1 seeds, 1 probes per round, every 5m)\n\
         valid-tls-auth.yml: ok (TLS 1.2 and 1.3, client certificates required, basic auth, 2 users)\n"
    );
    let (code, stdout, stderr) = check_web_config("valid-empty.yml");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.ends_with("valid-empty.yml: ok (no TLS, no basic auth)\n"),
        "{stdout}"
    );
    let (code, _, stderr) = check_web_config("no-such-file.yml");
    assert_eq!(code, 3);
    assert_eq!(
        stderr,
        "mailcanary: cannot read web config file no-such-file.yml: No such file or directory (os error 2)\n"
    );
}

/// `mailcanary hash-password` with `stdin` as its standard input.
fn hash_password(stdin: &[u8], args: &[&str]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .arg("hash-password")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mailcanary");
    // A child that refuses its arguments exits before it reads: the pipe may be closed by then.
    let written = child.stdin.take().expect("stdin").write_all(stdin);
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        panic!("write the password: {e}");
    }
    let out = child.wait_with_output().expect("wait for mailcanary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hash_password_prints_a_bcrypt_hash_of_the_line_on_stdin() {
    let (code, stdout, stderr) = hash_password(b"correct horse\n", &["--cost", "4"]);
    assert_eq!(code, 0, "{stderr}");
    let hash = stdout.strip_suffix('\n').expect("one line");
    assert!(hash.starts_with("$2y$04$"), "{hash}");
    assert!(bcrypt::verify("correct horse", hash).expect("a bcrypt hash"));

    let (code, stdout, stderr) = hash_password(b"", &[]);
    assert_eq!((code, stdout.as_str()), (3, ""));
    assert_eq!(
        stderr,
        "mailcanary: no password on standard input (give one line, e.g. `mailcanary hash-password < FILE`)\n"
    );
    let (code, _, stderr) = hash_password(b"pw\n", &["--cost", "3"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("3 is not in 4..=31"), "{stderr}");
}

/// scripts/web-secrets end to end (it needs openssl, and mailcanary for the hash): what it
/// makes is a web config that `check-config` passes, whose hash is that of the password file
/// Prometheus is given, with the CA that signed the certificate.
#[test]
fn web_secrets_makes_a_web_config_that_check_config_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("web");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/web-secrets");
    let out = Command::new("sh")
        .arg(script)
        .arg(&out_dir)
        .arg("mailcanary.example")
        .env("MAILCANARY", env!("CARGO_BIN_EXE_mailcanary"))
        .output()
        .expect("run scripts/web-secrets");
    assert!(
        out.status.success(),
        "web-secrets failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web_config = out_dir.join("web-config.yml");
    let out = Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["check-config", "--config"])
        .arg(Path::new(DIR).join("valid-minimal.toml"))
        .arg("--web.config.file")
        .arg(&web_config)
        .output()
        .expect("run mailcanary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("web-config.yml: ok (TLS 1.2 and 1.3, basic auth, 1 user)\n"),
        "{stdout}"
    );

    let yaml = std::fs::read_to_string(&web_config).expect("web config");
    let hash = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("prometheus: "))
        .expect("the user prometheus");
    let password = std::fs::read_to_string(out_dir.join("mailcanary.password")).expect("password");
    // Prometheus trims the password file (prometheus/common); so does hash-password's line.
    assert!(bcrypt::verify(password.trim(), hash).expect("a bcrypt hash"));
    assert!(!bcrypt::verify("not the password", hash).expect("a bcrypt hash"));

    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(out_dir.join("ca.crt"))
        .arg(out_dir.join("tls.crt"))
        .output()
        .expect("run openssl");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
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
