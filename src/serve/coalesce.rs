//! Coalescing of requests for the same idempotent action (a config reload): one runs at a
//! time, and every request that arrived before a run started is answered by that run's
//! result. A burst of requests is therefore one run (when the first one starts before the
//! others arrive: two), however many requests it has and however they are spread over
//! connections or signals.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// See the module doc; `T` is the action's result, handed to every request it covers.
pub struct Coalescer<T> {
    /// Requests so far, numbered from 1.
    arrivals: AtomicU64,
    /// The last run: the number of the last request it covers, and its result. The lock also
    /// makes runs one at a time (tokio's mutex is fair: waiters are served in order).
    last: tokio::sync::Mutex<Option<(u64, T)>>,
    /// Runs started (for logs and tests).
    runs: AtomicU64,
}

impl<T: Clone> Default for Coalescer<T> {
    fn default() -> Self {
        Coalescer {
            arrivals: AtomicU64::new(0),
            last: tokio::sync::Mutex::new(None),
            runs: AtomicU64::new(0),
        }
    }
}

impl<T: Clone> Coalescer<T> {
    /// Runs `action`, or waits for the result of a run that started after this request
    /// arrived.
    pub async fn run<F, Fut>(&self, action: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let ticket = self.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.last.lock().await;
        if let Some((covered, result)) = &*last
            && *covered >= ticket
        {
            return result.clone();
        }
        // Every request counted so far is answered by this run: it starts after all of them.
        let covered = self.arrivals.load(Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::Relaxed);
        let result = action().await;
        *last = Some((covered, result.clone()));
        result
    }

    /// Runs started so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Requests made so far (answered or waiting).
    pub fn requests(&self) -> u64 {
        self.arrivals.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Waits until `c` has seen `n` requests (bounded, so that a bug fails instead of hanging).
    async fn until_requests(c: &Coalescer<u64>, n: u64) {
        for _ in 0..3000 {
            if c.requests() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} of {n} requests arrived", c.requests());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_500_is_at_most_two_runs_and_everyone_gets_a_result() {
        let c = Arc::new(Coalescer::<u64>::default());
        // A burst: every request arrives while the first run runs (each run lasts until all
        // 500 have arrived, however slowly a loaded machine spawns them).
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let waiting = c.clone();
                    c.run(|| async move {
                        until_requests(&waiting, 500).await;
                        7
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.expect("task"), 7);
        }
        assert!(
            (1..=2).contains(&c.runs()),
            "{} runs for a burst of 500",
            c.runs()
        );
    }

    #[tokio::test]
    async fn a_request_after_a_run_finished_runs_again() {
        let c = Coalescer::<u64>::default();
        let mut n = 0;
        for _ in 0..3 {
            n = c.run(|| async { n + 1 }).await;
        }
        assert_eq!((n, c.runs()), (3, 3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_during_a_run_is_answered_by_the_next_run_not_the_running_one() {
        // The running action read its input before the second request: the second must see a
        // run that starts after it arrived.
        let c = Arc::new(Coalescer::<u64>::default());
        let started = Arc::new(tokio::sync::Notify::new());
        let first = {
            let (c, started) = (c.clone(), started.clone());
            tokio::spawn(async move {
                c.run(|| async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    1
                })
                .await
            })
        };
        started.notified().await;
        let second = c.run(|| async { 2 }).await;
        assert_eq!((first.await.expect("first"), second), (1, 2));
        assert_eq!(c.runs(), 2);
    }
}
