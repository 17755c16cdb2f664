//! The `[probe]` section: schedule and timing, cleanup, listen address, state file, instance
//! name and the token key.

use super::*;

pub(super) fn validate_probe(p: &RawProbe, base: &Path, errs: &mut Errors) -> Option<ProbeConfig> {
    let timing = probe_timing(p, errs);
    let cleanup = cleanup(
        errs,
        "probe.cleanup",
        p.cleanup.as_deref().unwrap_or("delete"),
    );
    let listen_text = p.listen.as_deref().unwrap_or("127.0.0.1:9925");
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errs.push(
                "probe.listen",
                format!("expected an address like 127.0.0.1:9925, got {listen_text:?}"),
            );
            None
        }
    };
    let state = resolve(
        base,
        p.state
            .clone()
            .unwrap_or_else(|| PathBuf::from("mailcanary.sqlite")),
    );
    let token_key = token_key(p, base, errs);
    let concurrency = match p.concurrency.unwrap_or(32) {
        0 => {
            errs.push("probe.concurrency", "must be at least 1");
            1
        }
        n => n as usize,
    };
    let instance = match instance_name(p.instance.as_deref(), host_name) {
        Ok(name) => Some(name),
        Err(problem) => {
            errs.push("probe.instance", problem);
            None
        }
    };
    let timing = timing?;
    Some(ProbeConfig {
        schedule: timing.schedule,
        interval: timing.interval,
        jitter: timing.jitter,
        timeout: timing.timeout,
        late_window: timing.late_window,
        confirm_after: timing.confirm_after,
        cleanup: cleanup?,
        listen: listen?,
        state,
        retention: timing.retention,
        token_key: token_key?,
        concurrency,
        instance: instance?,
    })
}

/// The instance name: `probe.instance`, else the host name up to its first dot. `host_name`
/// is asked only when the config names none (the kernel's name in this UTS namespace: a
/// container's or pod's own name).
pub(super) fn instance_name(
    configured: Option<&str>,
    host_name: impl FnOnce() -> Option<String>,
) -> Result<String, String> {
    if let Some(name) = configured {
        return if is_plain_name(name) {
            Ok(name.to_string())
        } else {
            Err(format!(
                "names may use only letters, digits, '-' and '_' (at most 64), got {name:?}"
            ))
        };
    }
    let Some(host) = host_name() else {
        return Err("cannot read the host name to default to; set probe.instance".to_string());
    };
    let short = host.trim().split('.').next().unwrap_or_default();
    if is_plain_name(short) {
        Ok(short.to_string())
    } else {
        Err(format!(
            "the host name {short:?} is not a valid instance name (letters, digits, '-' and '_', at most 64); set probe.instance"
        ))
    }
}

/// The host name, as Linux reports it (`/proc/sys/kernel/hostname`), else `$HOSTNAME`.
pub(super) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// When the probe runs and how long it waits, watches and keeps.
pub(super) struct Timing {
    pub(super) schedule: String,
    pub(super) interval: Duration,
    pub(super) jitter: Duration,
    pub(super) timeout: Duration,
    pub(super) late_window: Duration,
    pub(super) confirm_after: Option<Duration>,
    pub(super) retention: Duration,
}

pub(super) fn probe_timing(p: &RawProbe, errs: &mut Errors) -> Option<Timing> {
    let schedule = match cron_schedule(p.schedule.as_deref().unwrap_or("*/5 * * * *")) {
        Ok(schedule) => Some(schedule),
        Err(e) => {
            errs.push("probe.schedule", e);
            None
        }
    };
    let jitter = duration(errs, "probe.jitter", p.jitter.as_deref(), "0s");
    let timeout = duration(errs, "probe.timeout", p.timeout.as_deref(), "10m");
    let late_window = duration(errs, "probe.late_window", p.late_window.as_deref(), "2h");
    let retention = duration(errs, "probe.retention", p.retention.as_deref(), "30d");
    if let (Some(t), Some(l)) = (timeout, late_window)
        && l < t
    {
        errs.push(
            "probe.late_window",
            format!(
                "must be at least probe.timeout ({})",
                humantime::format_duration(t)
            ),
        );
    }
    if let (Some(t), Some(_)) = (timeout, schedule.as_ref())
        && t.is_zero()
    {
        errs.push("probe.timeout", "must be greater than 0");
    }
    let confirm_after = confirm_after(p.confirm_after.as_deref(), timeout, errs);
    let (schedule, interval) = schedule?;
    Some(Timing {
        schedule,
        interval,
        jitter: jitter?,
        timeout: timeout?,
        late_window: late_window?,
        confirm_after: confirm_after?,
        retention: retention?,
    })
}

/// `probe.confirm_after`: when a probe not found yet is overdue and its pair gets a
/// confirmation probe. Default: 2 minutes, or half the timeout when that is shorter (a
/// confirmation sent when the first probe is overdue must have time to be overdue itself
/// before that probe times out); `"0s"` turns it off (`Some(None)`); `None` when invalid.
fn confirm_after(
    value: Option<&str>,
    timeout: Option<Duration>,
    errs: &mut Errors,
) -> Option<Option<Duration>> {
    let path = "probe.confirm_after";
    match (value, timeout) {
        (Some(v), t) => match duration(errs, path, Some(v), "2m") {
            Some(d) if d.is_zero() => Some(None),
            Some(d) if t.is_some_and(|t| d >= t) => {
                errs.push(
                    path,
                    format!(
                        "must be shorter than probe.timeout ({}), or \"0s\" to turn it off",
                        humantime::format_duration(t.unwrap_or_default())
                    ),
                );
                None
            }
            Some(d) => Some(Some(d)),
            None => None,
        },
        (None, Some(t)) => Some(Some(Duration::from_secs(120).min(t / 2))),
        (None, None) => None,
    }
}

/// The probe-token HMAC key (`token_key_env` or `token_key_file`), at least 16 characters.
pub(super) fn token_key(p: &RawProbe, base: &Path, errs: &mut Errors) -> Option<Secret> {
    let path = "probe.token_key";
    match secret(errs, path, &p.token_key_env, &p.token_key_file, base) {
        Some(key) if key.expose().len() >= 16 => Some(key),
        Some(_) => {
            errs.push(path, "must be at least 16 characters long");
            None
        }
        None if p.token_key_env.is_none() && p.token_key_file.is_none() => {
            errs.push(
                path,
                "set token_key_env or token_key_file (the HMAC key that marks our probe messages)",
            );
            None
        }
        // The source was set but could not be used: `secret` said why.
        None => None,
    }
}
