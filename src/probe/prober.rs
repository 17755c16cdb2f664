//! The long-lived probe: the config in force and what it built ([`Setup`]: senders, kept IMAP
//! connections), the state and the metrics; it reloads a config, refreshes the OAuth2 tokens
//! every round, runs one [`round`](crate::probe::round) at a time, and logs out on shutdown.
//!
//! Each round is bounded by a deadline past which it is cancelled and says so. Shutdown
//! cancels a round at once; unresolved probes stay `sent` and are resumed on the next start.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, watch};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::probe::round::{self, Round, RoundError};
use crate::probe::send::SendError;
use crate::probe::setup::{Carried, Setup};
use crate::state::probes::{ProbeRecord, ProbeStore};

/// The long-lived probe: config, state, metrics and the connections it reuses.
pub struct Prober {
    pub store: Arc<ProbeStore>,
    pub metrics: Arc<Metrics>,
    /// The config in force and what it built; a reload replaces it, a round keeps the one it
    /// started with.
    setup: RwLock<Arc<Setup>>,
    /// One round at a time.
    round_lock: AsyncMutex<()>,
    /// Set once on shutdown: rounds and watchers stop at once.
    shutdown: watch::Sender<bool>,
}

impl Prober {
    pub fn new(
        config: Arc<Config>,
        store: Arc<ProbeStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Prober, SendError> {
        let setup = Setup::build(config, None)?;
        metrics.preset(&setup.config);
        Ok(Prober {
            store,
            metrics,
            setup: RwLock::new(Arc::new(setup)),
            round_lock: AsyncMutex::new(()),
            shutdown: watch::Sender::new(false),
        })
    }

    fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        self.setup().config.clone()
    }

    /// Puts `config` in force for the next round (a running round finishes with the config it
    /// started with): senders are rebuilt, connections of mailboxes whose connection settings
    /// did not change are kept, the others are logged out once no round holds them, and the
    /// metric series follow the new routes and seeds. Probes in flight are untouched: a removed
    /// route's are still watched in their seed's mailbox, a removed seed's expire as orphans.
    pub fn reload(&self, config: Config) -> Result<Carried, SendError> {
        let previous = self.setup();
        let next = Arc::new(Setup::build(Arc::new(config), Some(&previous))?);
        let (carried, seeds, bounces) = next.carried_from(&previous);
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
        self.metrics.preset(&next.config);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for mb in seeds {
                    mb.lock().await.logout().await;
                }
                for bb in bounces {
                    bb.lock().await.conn.logout().await;
                }
            });
        }
        Ok(carried)
    }

    /// IMAP commands sent since the process started, over every kept connection.
    pub async fn imap_commands(&self) -> u64 {
        let mut n = 0;
        for mb in self.setup().mailboxes.values() {
            n += mb.lock().await.commands();
        }
        n
    }

    /// The longest a round may run: the watchers' first look, the slowest send, the probe
    /// timeout after it, and a margin for the IMAP commands around them.
    pub fn round_deadline(&self) -> Duration {
        round::deadline(&self.config())
    }

    /// Refreshes every OAuth2 login's access token that is due (all at once, each bounded by
    /// the token request timeout), so a refresh token that stopped working is noticed every
    /// round even while a mailbox's IMAP session lives on, and records the expiries.
    async fn refresh_oauth_tokens(&self, config: &Config) {
        let logins = config.oauth_logins();
        let results =
            futures::future::join_all(logins.iter().map(|(_, _, o)| crate::oauth::access_token(o)))
                .await;
        for ((kind, name, oauth), result) in logins.iter().zip(results) {
            match result {
                Ok(_) => self.metrics.oauth_token(kind, name, oauth.cache.expiry()),
                Err(e) => self.metrics.oauth_refresh_failed(kind, name, &e),
            }
        }
    }

    /// Records the OAuth2 expiries as the round leaves them (sends may have refreshed).
    fn record_oauth_expiries(&self, config: &Config) {
        for (kind, name, oauth) in config.oauth_logins() {
            self.metrics.oauth_token(kind, name, oauth.cache.expiry());
        }
    }

    /// Stops every round and watcher now (SIGTERM).
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Runs one round and returns its probes as recorded. A round still running when the
    /// next one is due makes that one skip (queued rounds would pile up behind a slow server).
    pub async fn round(&self) -> Result<Vec<ProbeRecord>, RoundError> {
        let Ok(_one_at_a_time) = self.round_lock.try_lock() else {
            tracing::warn!("previous round still running; skipping this one");
            return Ok(Vec::new());
        };
        // This round's config and connections, whatever a reload does meanwhile.
        let setup = self.setup();
        let round = Round {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
        };
        let round_id = self.store.start_round()?;
        let started = crate::clock::now();
        tracing::info!(
            round_id,
            pairs = setup.config.pairs().len(),
            "round started"
        );
        round.expire_orphans(&setup.config, started)?;
        let mut shutdown = self.shutdown.subscribe();
        // A token endpoint that hangs holds a request for up to its timeout: SIGTERM does not wait.
        tokio::select! {
            _ = self.refresh_oauth_tokens(&setup.config) => {}
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        let outgoing = round.compose_all(&setup.config, round_id, started)?;
        let deadline = round::deadline(&setup.config);
        tokio::select! {
            done = tokio::time::timeout(deadline, round.send_and_watch(&setup, outgoing, started)) => {
                if done.is_err() {
                    tracing::error!(
                        round_id,
                        deadline_seconds = deadline.as_secs(),
                        "round cancelled at its deadline; unresolved probes stay in flight for the next round"
                    );
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => {
                tracing::info!(round_id, "round cancelled by shutdown");
                return Err(RoundError::Shutdown);
            }
        }
        let imap_commands = self.imap_commands().await;
        self.record_oauth_expiries(&setup.config);
        round.finish(&setup.config, round_id, started, imap_commands)
    }

    /// Logs out of every mailbox (shutdown): at most three seconds, and a mailbox a watcher
    /// still holds is skipped rather than waited for.
    pub async fn close(&self) {
        let setup = self.setup();
        let logouts = setup.mailboxes.values().map(|mb| async move {
            if let Ok(mut mb) = mb.try_lock() {
                mb.logout().await;
            }
        });
        let bounce_logouts = setup.bounce_boxes.values().map(|bb| async move {
            if let Ok(mut bb) = bb.try_lock() {
                bb.conn.logout().await;
            }
        });
        let all = futures::future::join(
            futures::future::join_all(logouts),
            futures::future::join_all(bounce_logouts),
        );
        let _ = tokio::time::timeout(Duration::from_secs(3), all).await;
    }
}
