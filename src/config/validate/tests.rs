//! The validators' exact messages and defaults.

use super::probe::instance_name;
use super::*;

#[test]
fn address_forms() {
    assert_eq!(
        address_of("Probe <p@example.com>").as_deref(),
        Some("p@example.com")
    );
    assert_eq!(
        address_of("p@example.com").as_deref(),
        Some("p@example.com")
    );
    assert_eq!(address_of("p@localhost"), None);
    assert_eq!(address_of("<p@example.com"), None);
    assert_eq!(address_of("a b@example.com"), None);
}

#[test]
fn instance_defaults_to_the_short_host_name() {
    let never = || -> Option<String> { panic!("host name asked although configured") };
    assert_eq!(
        instance_name(Some("site-a"), never),
        Ok("site-a".to_string())
    );
    assert_eq!(
        instance_name(None, || Some("probe-7.example.net\n".to_string())),
        Ok("probe-7".to_string())
    );
    assert_eq!(
        instance_name(None, || Some("mailcanary-6f7d9c-x2kqp".to_string())),
        Ok("mailcanary-6f7d9c-x2kqp".to_string())
    );
    assert_eq!(
        instance_name(Some("site a"), never),
        Err(
            "names may use only letters, digits, '-' and '_' (at most 64), got \"site a\""
                .to_string()
        )
    );
    assert_eq!(
        instance_name(None, || Some("bad+host".to_string())),
        Err("the host name \"bad+host\" is not a valid instance name (letters, digits, '-' and '_', at most 64); set probe.instance".to_string())
    );
    assert_eq!(
        instance_name(None, || None),
        Err("cannot read the host name to default to; set probe.instance".to_string())
    );
}

#[test]
fn five_field_cron_gets_seconds() {
    let (six, interval) = cron_schedule("*/5 * * * *").expect("valid");
    assert_eq!(six, "0 */5 * * * *");
    assert_eq!(interval, Duration::from_secs(300));
    assert!(matches!(
        cron_schedule("* *"),
        Err(ScheduleError::FieldCount { fields: 2, .. })
    ));
    assert!(matches!(
        cron_schedule("99 * * * *"),
        Err(ScheduleError::Invalid { .. })
    ));
    assert!(matches!(
        cron_schedule("0 0 30 2 *"),
        Err(ScheduleError::NeverRuns { .. })
    ));
}

#[cfg(unix)]
#[test]
fn secret_files_others_can_read_are_warned_about_once_each() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = |name: &str, mode| {
        std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(mode))
            .expect("chmod")
    };
    std::fs::write(dir.path().join("key"), "0123456789abcdef0123").expect("key");
    std::fs::write(dir.path().join("rt"), "rt-1\n").expect("rt");
    mode("key", 0o644);
    mode("rt", 0o604);
    let oauth = "oauth2 = { token_url = \"https://token.example/warnings\", client_id = \"c\", \
                 scope = \"s\", refresh_token_file = \"rt\" }";
    let text = format!(
        "[probe]\ntoken_key_file = \"key\"\n\n\
         [routes.r]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\n\
         username = \"u@example.com\"\nauth = \"oauth2\"\n{oauth}\n\n\
         [seeds.s]\naddress = \"u@example.com\"\nhost = \"imap.example.com\"\n\
         auth = \"oauth2\"\n{oauth}\n"
    );
    let load = || crate::config::parse(&text, &dir.path().join("c.toml")).expect("valid");
    // The seed and the route name the same refresh token file: one warning for it.
    let c = load();
    let paths: Vec<&str> = c.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["probe.token_key_file", "routes.r.oauth2.refresh_token_file"]
    );
    assert!(
        c.warnings[0].problem.contains("(mode 0644)")
            && c.warnings[0].problem.contains("chmod 600"),
        "{}",
        c.warnings[0]
    );
    mode("key", 0o600);
    mode("rt", 0o400);
    let c = load();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}
