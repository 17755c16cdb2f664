//! The probe pipeline, one module per step of a round:
//! [`compose`] a tokened message ([`token`]) → [`send`] it over SMTP → [`watch`] the seed's
//! folders over [`crate::imap`] → [`judge`] what arrived → record it ([`crate::state`]). The
//! [`prober`] (long-lived: config, reload, OAuth2 refresh, shutdown) runs one [`round`] at a
//! time with what [`setup`] built from the config (kept across reloads).

pub mod compose;
pub mod judge;
pub mod prober;
pub mod round;
pub mod send;
pub mod setup;
pub mod token;
pub mod watch;
