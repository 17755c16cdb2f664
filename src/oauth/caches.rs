//! The token caches of a running setup: logins of one account share one cache, across the
//! logins of a config and across reloads, for as long as the setup that owns the registry
//! (the probe's [`crate::probe::setup::Setup`], handed on to the next one at a reload). Reading
//! and validating a config file shares nothing: a config's caches are its own until a running
//! setup takes it in.

use std::sync::Mutex;

use crate::config::{Config, Login, SecretSource, TokenCache};

/// The token caches handed out so far, by login (token endpoint, client, scope, refresh token
/// source, grant).
#[derive(Debug, Default)]
pub struct TokenCaches {
    caches: Mutex<Vec<(String, TokenCache)>>,
}

impl TokenCaches {
    /// Makes the logins of `config` use the registry's caches: logins with the same token
    /// endpoint, client, scope and refresh token source (a seed and a route of one account, or
    /// the same login in a reloaded config) share one token cache: one refresh serves all, and
    /// a refresh token the server rotates is never presented twice (which a rotating server
    /// treats as theft). A refresh token file whose content changed since (a new `oauth
    /// login`) replaces the cached token.
    pub fn share(&self, config: &mut Config) {
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        let logins = config
            .seeds
            .iter_mut()
            .chain(config.bounce_mailboxes.iter_mut())
            .chain(config.report_mailboxes.iter_mut().map(|r| &mut r.mailbox))
            .map(|s| &mut s.login)
            .chain(
                config
                    .routes
                    .iter_mut()
                    .filter_map(|r| r.auth.as_mut().map(|a| &mut a.login)),
            );
        for login in logins {
            let Login::OAuth2(o) = login else { continue };
            let key = format!(
                "{}\n{}\n{}\n{:?}\n{}",
                o.token_url,
                o.client_id,
                o.scope,
                o.refresh_token_source,
                o.grant.as_str()
            );
            let Some((_, cache)) = caches.iter().find(|(k, _)| *k == key) else {
                caches.push((key, o.cache.clone()));
                continue;
            };
            let loaded = o
                .cache
                .state
                .try_lock()
                .ok()
                .and_then(|s| s.refresh_token.clone());
            if let (Some(loaded), Some(SecretSource::File(_)), Ok(mut shared)) =
                (loaded, &o.refresh_token_source, cache.state.try_lock())
                && shared.refresh_token.as_ref() != Some(&loaded)
            {
                shared.refresh_token = Some(loaded);
                shared.access = None;
            }
            o.cache = cache.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::path::Path;

    /// A config whose seed and route log in with the same OAuth2 client and refresh token.
    fn oauth_config(dir: &Path, token_url: &str) -> Config {
        let text = format!(
            "[probe]\ntoken_key_file = \"key\"\n\n\
             [routes.r]\nhost = \"smtp.example.com\"\nfrom = \"p@example.com\"\nusername = \"u@example.com\"\n\
             auth = \"oauth2\"\noauth2 = {{ token_url = \"{token_url}\", client_id = \"c\", scope = \"s\", refresh_token_file = \"rt\" }}\n\n\
             [seeds.s]\naddress = \"u@example.com\"\nhost = \"imap.example.com\"\nauth = \"oauth2\"\n\
             oauth2 = {{ token_url = \"{token_url}\", client_id = \"c\", scope = \"s\", refresh_token_file = \"rt\" }}\n"
        );
        crate::config::parse(&text, &dir.join("c.toml")).expect("valid")
    }

    fn cache_of(c: &Config) -> (TokenCache, TokenCache) {
        let seed = c.seeds[0].login.oauth2().expect("oauth").cache.clone();
        let route = c.routes[0]
            .auth
            .as_ref()
            .and_then(|a| a.login.oauth2())
            .expect("oauth")
            .cache
            .clone();
        (seed, route)
    }

    /// The config, its logins sharing the caches of `caches`.
    fn shared(caches: &TokenCaches, dir: &Path, token_url: &str) -> Config {
        let mut c = oauth_config(dir, token_url);
        caches.share(&mut c);
        c
    }

    #[test]
    fn one_account_has_one_token_cache_across_logins_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key"), "0123456789abcdef0123").expect("key");
        std::fs::write(dir.path().join("rt"), "rt-1\n").expect("rt");
        let caches = TokenCaches::default();
        let url = "https://token.example/one-account";
        let first = shared(&caches, dir.path(), url);
        let (seed, route) = cache_of(&first);
        assert!(
            std::sync::Arc::ptr_eq(&seed.state, &route.state),
            "seed and route share"
        );
        let reloaded = shared(&caches, dir.path(), url);
        assert!(
            std::sync::Arc::ptr_eq(&cache_of(&reloaded).0.state, &seed.state),
            "a reload keeps the cache"
        );
        // A new `oauth login` wrote another token: the next load adopts it.
        std::fs::write(dir.path().join("rt"), "rt-2\n").expect("rt");
        let after_login = shared(&caches, dir.path(), url);
        let state = cache_of(&after_login).0.state;
        let token = state.try_lock().expect("idle").refresh_token.clone();
        assert_eq!(token.as_ref().map(Secret::expose), Some("rt-2"));
    }

    #[test]
    fn validating_a_file_shares_nothing_with_a_running_setup() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("key"), "0123456789abcdef0123").expect("key");
        std::fs::write(dir.path().join("rt"), "rt-1\n").expect("rt");
        let url = "https://token.example/no-side-effect";
        let running = shared(&TokenCaches::default(), dir.path(), url);
        // `check-config` (or a reload being validated) parses the same file: no cache of the
        // running setup is touched or handed out, not even between its own seed and route.
        let checked = oauth_config(dir.path(), url);
        let (seed, route) = cache_of(&checked);
        assert!(!std::sync::Arc::ptr_eq(
            &seed.state,
            &cache_of(&running).0.state
        ));
        assert!(!std::sync::Arc::ptr_eq(&seed.state, &route.state));
    }
}
