//! What a config builds for the prober: a sender per route, the IMAP connections kept across
//! rounds (a seed's inbox and spam folder, each bounce mailbox) and the OAuth2 token caches its
//! logins share. A reload builds a new setup that takes over the token caches and the
//! connections of every mailbox whose connection settings (server, TLS, login, folders) did
//! not change; the others get fresh ones. A round uses the setup it
//! started with to its end, so a reload never interrupts a round: it applies from the next.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex as AsyncMutex;

use crate::config::{Config, Seed};
use crate::dns_audit::SeenIpAuditor;
use crate::oauth::caches::TokenCaches;
use crate::probe::send::{SendError, Sender};
use crate::probe::watch::bounces::BounceMailbox;
use crate::probe::watch::seed::SeedMailbox;

/// A mailbox shared by the setups that use it (one round at a time locks it).
pub type Shared<T> = Arc<AsyncMutex<T>>;

/// The config in force and what it built.
pub struct Setup {
    pub config: Arc<Config>,
    pub senders: HashMap<String, Arc<Sender>>,
    pub mailboxes: HashMap<String, Shared<SeedMailbox>>,
    pub bounce_boxes: HashMap<String, Shared<BounceMailbox>>,
    /// The OAuth2 token caches of the config's logins, handed on from setup to setup: one
    /// account's logins share one cache for as long as the process runs them.
    pub token_caches: Arc<TokenCaches>,
    /// The audit of the addresses receivers saw ([`crate::probe::seen_address`]), with its cache;
    /// handed on while the DNS audit's nameserver stays the same. `None` when no resolver could
    /// be set up.
    pub seen_ips: Option<Arc<SeenIpAuditor>>,
}

/// What a reload did to the connections, for its log line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Carried {
    /// Mailboxes (seeds and bounce mailboxes) whose connections were kept.
    pub kept: Vec<String>,
    /// Mailboxes that are new or whose connection settings changed.
    pub fresh: Vec<String>,
    /// Mailboxes the new config no longer has, or whose settings changed (logged out).
    pub dropped: Vec<String>,
}

impl Setup {
    /// Builds the setup of `config`, taking over the token caches of `previous` and its
    /// mailboxes whose connection settings are unchanged.
    pub fn build(config: Arc<Config>, previous: Option<&Setup>) -> Result<Setup, SendError> {
        let token_caches = previous.map(|p| p.token_caches.clone()).unwrap_or_default();
        let mut config = Arc::unwrap_or_clone(config);
        token_caches.share(&mut config);
        let config = Arc::new(config);
        let mut senders = HashMap::new();
        for route in &config.routes {
            senders.insert(route.name.clone(), Arc::new(Sender::new(route)?));
        }
        let old_seeds = previous.map(|p| (&p.config.seeds, &p.mailboxes));
        let mailboxes = config
            .seeds
            .iter()
            .map(|s| {
                let mb = carried_over(s, old_seeds)
                    .unwrap_or_else(|| Arc::new(AsyncMutex::new(SeedMailbox::new(s))));
                (s.name.clone(), mb)
            })
            .collect();
        let old_bounces = previous.map(|p| (&p.config.bounce_mailboxes, &p.bounce_boxes));
        let bounce_boxes = config
            .bounce_mailboxes
            .iter()
            .map(|b| {
                let bb = carried_over(b, old_bounces)
                    .unwrap_or_else(|| Arc::new(AsyncMutex::new(BounceMailbox::new(b))));
                (b.name.clone(), bb)
            })
            .collect();
        let seen_ips = match previous {
            Some(p) if p.config.dns_audit.nameserver == config.dns_audit.nameserver => {
                p.seen_ips.clone()
            }
            _ => crate::probe::seen_address::auditor(&config),
        };
        Ok(Setup {
            config,
            senders,
            mailboxes,
            bounce_boxes,
            token_caches,
            seen_ips,
        })
    }

    /// Which mailboxes of `previous` this setup kept, which are fresh and which it dropped, with
    /// the dropped ones themselves (to log out of once no round holds them).
    pub fn carried_from(
        &self,
        previous: &Setup,
    ) -> (
        Carried,
        Vec<Shared<SeedMailbox>>,
        Vec<Shared<BounceMailbox>>,
    ) {
        let mut carried = Carried::default();
        let mut seeds = Vec::new();
        let mut bounces = Vec::new();
        sort(
            &self.mailboxes,
            &previous.mailboxes,
            &mut carried,
            &mut seeds,
        );
        sort(
            &self.bounce_boxes,
            &previous.bounce_boxes,
            &mut carried,
            &mut bounces,
        );
        carried.kept.sort();
        carried.fresh.sort();
        carried.dropped.sort();
        (carried, seeds, bounces)
    }
}

/// A previous setup's mailboxes of one kind, with the settings they were made for.
type Previous<'a, T> = Option<(&'a Vec<Seed>, &'a HashMap<String, Shared<T>>)>;

/// The previous setup's mailbox for `seed`, when its connection settings are the same.
fn carried_over<T>(seed: &Seed, previous: Previous<'_, T>) -> Option<Shared<T>> {
    let (seeds, boxes) = previous?;
    let old = seeds.iter().find(|o| o.name == seed.name)?;
    if !old.same_mailbox(seed) {
        return None;
    }
    boxes.get(&seed.name).cloned()
}

fn sort<T>(
    now: &HashMap<String, Shared<T>>,
    before: &HashMap<String, Shared<T>>,
    carried: &mut Carried,
    dropped: &mut Vec<Shared<T>>,
) {
    for (name, mb) in now {
        match before.get(name) {
            Some(old) if Arc::ptr_eq(old, mb) => carried.kept.push(name.clone()),
            _ => carried.fresh.push(name.clone()),
        }
    }
    for (name, old) in before {
        if !now.get(name).is_some_and(|mb| Arc::ptr_eq(old, mb)) {
            carried.dropped.push(name.clone());
            dropped.push(old.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seeds: &str) -> Arc<Config> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        let text = format!(
            "[probe]\ntoken_key_file = \"token.key\"\ninstance = \"t\"\n\
             [routes.main]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\ntls = \"none\"\n\
             [bounce_mailboxes.b]\naddress = \"b@example.com\"\nhost = \"imap.example.com\"\npassword_file = \"password\"\n{seeds}"
        );
        match crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml")) {
            Ok(c) => Arc::new(c),
            Err(e) => panic!("{e}"),
        }
    }

    fn seed(name: &str, host: &str, poll: &str) -> String {
        format!(
            "[seeds.{name}]\naddress = \"{name}@example.com\"\nhost = \"{host}\"\npassword_file = \"password\"\npoll_interval = \"{poll}\"\n"
        )
    }

    #[test]
    fn a_reload_keeps_the_connections_of_unchanged_mailboxes_only() {
        let first = Setup::build(
            config(&format!(
                "{}{}{}",
                seed("same", "imap.example.com", "1s"),
                seed("moved", "imap.example.com", "1s"),
                seed("gone", "imap.example.com", "1s")
            )),
            None,
        )
        .expect("first setup");
        // `same` only changes a setting that needs no new connection; `moved` changes server.
        let second = Setup::build(
            config(&format!(
                "{}{}{}",
                seed("same", "imap.example.com", "2s"),
                seed("moved", "imap2.example.com", "1s"),
                seed("added", "imap.example.com", "1s")
            )),
            Some(&first),
        )
        .expect("second setup");
        assert!(Arc::ptr_eq(
            &first.mailboxes["same"],
            &second.mailboxes["same"]
        ));
        assert!(!Arc::ptr_eq(
            &first.mailboxes["moved"],
            &second.mailboxes["moved"]
        ));
        assert!(Arc::ptr_eq(
            &first.bounce_boxes["b"],
            &second.bounce_boxes["b"]
        ));
        let (carried, seeds, bounces) = second.carried_from(&first);
        assert_eq!(
            carried,
            Carried {
                kept: vec!["b".into(), "same".into()],
                fresh: vec!["added".into(), "moved".into()],
                dropped: vec!["gone".into(), "moved".into()],
            }
        );
        assert_eq!((seeds.len(), bounces.len()), (2, 0));
        assert!(
            seeds
                .iter()
                .any(|s| Arc::ptr_eq(s, &first.mailboxes["gone"]))
        );
    }
}
