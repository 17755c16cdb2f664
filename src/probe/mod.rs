//! The probe pipeline, one module per step of a probe:
//! [`compose`] a tokened message ([`token`]) → [`send`] it over SMTP ([`launch`] puts it on its
//! way) → [`watch`] the seed's folders over [`crate::imap`] → [`judge`] what arrived (and audit
//! the address the receiver saw, [`seen_address`]) → record
//! it ([`crate::state`]) → move its pair's standing and confirm a bad outcome at once
//! ([`dispatch`], over [`crate::standing`]). The [`prober`] (long-lived: config, reload, OAuth2
//! refresh, shutdown) runs each [`round`] — rounds do not wait for each other — with what
//! [`setup`] built from the config (kept across reloads).

pub mod compose;
pub mod dispatch;
pub mod judge;
pub mod launch;
pub mod prober;
pub mod round;
pub mod seen_address;
pub mod send;
pub mod setup;
pub mod token;
pub mod watch;
