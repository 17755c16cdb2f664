//! Who may start a DNS audit, and when: never two at once, and after a config reload only when
//! something the audit looks at changed.
//!
//! An audit sends dozens of queries per route (to blocklists' resolvers among others, which
//! block heavy users) and may run up to its deadline behind a slow resolver. So:
//!
//! - a scheduled (or start-up) audit while another runs is skipped: the running one is as
//!   fresh;
//! - a reload whose config audits the same things as the last audit started ([`AuditInputs`]:
//!   the routes' identities, sending IPs, HELO, DKIM selector, domain and key file contents,
//!   seed domains, blocklist zones, the nameserver) starts none;
//! - a reload that changed them while an audit runs queues one audit, run when the running one
//!   ends, with the config in force then (more reloads meanwhile replace the queued config,
//!   they add no audit).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use crate::config::{self, Config};
use crate::dns_audit::AuditTarget;

/// Runs one audit of a config (the daemon's gate, made by [`crate::jobs::audit_job::gate`],
/// runs [`crate::jobs::audit_job::run_once`]).
pub type AuditFn = Arc<dyn Fn(Arc<Config>) -> BoxFuture<'static, ()> + Send + Sync>;

/// What asked for an audit (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Schedule,
    Reload,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Schedule => "schedule",
            Trigger::Reload => "reload",
        }
    }
}

/// Everything an audit's result depends on, from the config (and the DKIM key files it names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditInputs {
    targets: Vec<AuditTarget>,
    nameserver: Option<SocketAddr>,
    /// SHA-256 of each target's signing key file (`None`: none, or unreadable): a key rotated
    /// under the same file name is a change.
    keys: Vec<Option<[u8; 32]>>,
}

impl AuditInputs {
    pub fn of(config: &Config) -> AuditInputs {
        use sha2::{Digest, Sha256};
        let targets = config::audit_targets(config);
        let keys = targets
            .iter()
            .map(|t| {
                let bytes = std::fs::read(t.signing_key.as_ref()?).ok()?;
                Some(Sha256::digest(bytes).into())
            })
            .collect();
        AuditInputs {
            targets,
            nameserver: config.dns_audit.nameserver,
            keys,
        }
    }
}

#[derive(Default)]
struct GateState {
    running: bool,
    /// The config of the audit queued behind the running one.
    pending: Option<Arc<Config>>,
    /// The inputs of the last audit started or queued.
    last: Option<AuditInputs>,
}

/// See the module doc.
pub struct AuditGate {
    audit: AuditFn,
    state: Mutex<GateState>,
    started: AtomicU64,
}

impl AuditGate {
    pub fn new(audit: AuditFn) -> Arc<AuditGate> {
        Arc::new(AuditGate {
            audit,
            state: Mutex::new(GateState::default()),
            started: AtomicU64::new(0),
        })
    }

    /// Asks for an audit of `config`; true when one was started or queued.
    pub fn request(self: &Arc<Self>, config: Arc<Config>, trigger: Trigger) -> bool {
        let inputs = AuditInputs::of(&config);
        let mut state = self.lock();
        if trigger == Trigger::Reload && state.last.as_ref() == Some(&inputs) {
            tracing::info!(
                trigger = trigger.as_str(),
                "DNS audit not needed: nothing it audits changed"
            );
            return false;
        }
        if state.running {
            if trigger != Trigger::Reload {
                tracing::info!(
                    trigger = trigger.as_str(),
                    "DNS audit skipped: one is still running"
                );
                return false;
            }
            tracing::info!(
                trigger = trigger.as_str(),
                "DNS audit queued until the running one ends"
            );
            state.pending = Some(config);
            state.last = Some(inputs);
            return true;
        }
        state.running = true;
        state.last = Some(inputs);
        drop(state);
        let gate = self.clone();
        tokio::spawn(async move { gate.work(config, trigger).await });
        true
    }

    /// Runs `config`'s audit, then the queued ones, one at a time.
    async fn work(self: Arc<Self>, mut config: Arc<Config>, mut trigger: Trigger) {
        // Should an audit panic (or the task be cancelled), the gate opens again: no audit
        // would ever run otherwise.
        struct Unfinished<'a>(&'a AuditGate, bool);
        impl Drop for Unfinished<'_> {
            fn drop(&mut self) {
                if self.1 {
                    let mut state = self.0.lock();
                    state.running = false;
                    state.pending = None;
                }
            }
        }
        let mut unfinished = Unfinished(&self, true);
        loop {
            self.started.fetch_add(1, Ordering::Relaxed);
            tracing::info!(trigger = trigger.as_str(), "DNS audit starting");
            (self.audit)(config).await;
            // Taking the queued audit and closing the gate under one lock: a request in
            // between either queues for this loop or starts its own.
            let mut state = self.lock();
            match state.pending.take() {
                Some(next) => (config, trigger) = (next, Trigger::Reload),
                None => {
                    state.running = false;
                    unfinished.1 = false;
                    return;
                }
            }
        }
    }

    /// Audits started so far.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether an audit is running.
    pub fn running(&self) -> bool {
        self.lock().running
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
