//! Peak resident memory of a child process, from `VmHWM` in `/proc/<pid>/status` (proc(5)).
//!
//! `VmHWM` is the kernel's own high-water mark of the resident set, so sampling it every 20 ms
//! misses nothing but growth in the last few milliseconds before exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const EVERY: Duration = Duration::from_millis(20);

/// Polls one process's `VmHWM` until stopped; keeps the largest value seen (kB).
pub struct Poller {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    pub fn start(pid: u32) -> Poller {
        let peak_kb = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            thread::spawn(move || {
                let path = format!("/proc/{pid}/status");
                while !stop.load(Ordering::Relaxed) {
                    // A zombie's status has no Vm* lines; the peak read before it stays.
                    if let Some(kb) = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| vm_hwm_kb(&s))
                    {
                        peak_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                    thread::sleep(EVERY);
                }
            })
        };
        Poller {
            peak_kb,
            stop,
            thread: Some(thread),
        }
    }

    /// The largest `VmHWM` seen so far, in kB.
    pub fn peak_kb(&self) -> u64 {
        self.peak_kb.load(Ordering::Relaxed)
    }

    /// Stops polling (call before the child is reaped, so its pid is never read again).
    pub fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak_kb()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `VmHWM:     12345 kB` → 12345.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn reads_vm_hwm() {
    let status = "Name:\tmailcanary\nVmPeak:\t  200000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 1000 kB\n";
    assert_eq!(vm_hwm_kb(status), Some(12345));
    assert_eq!(vm_hwm_kb("Name:\tzombie\nState:\tZ (zombie)\n"), None);
    let own = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    assert!(vm_hwm_kb(&own).is_some_and(|kb| kb > 0));
}
