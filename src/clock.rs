//! The one wall clock of the state, the metrics and the pages: Unix seconds as `f64` (what
//! SQLite stores, what Prometheus timestamps are). Waits and deadlines use `Instant`, never
//! this.

/// Now, in Unix seconds (0 on a clock set before 1970).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
