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
