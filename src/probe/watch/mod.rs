//! The watchers of a round: the [`seed`] watcher (a seed's inbox and spam folder: finds,
//! judges and records the round's probes) and the [`bounces`] watcher (a route's bounce
//! mailbox: resolves a refused probe as `rejected`, marks a delayed one `deferred`). Both take
//! the small shared [`context`] the round gives them and never call the round back.

pub mod bounces;
pub mod context;
pub mod seed;
