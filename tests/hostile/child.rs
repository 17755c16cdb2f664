//! Runs the built `mailcanary` as a child process that can never hang the suite: output is
//! collected by reader threads, peak memory is polled (see `rss`), and a child still running at
//! its limit is killed (SIGKILL) and reported as hung with the tail of its log.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::rss;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailcanary");

/// A child above this peak resident set is killed at once: a test that shows unbounded growth
/// fails fast instead of taking the machine down. Far above every limit the tests assert.
const MEMORY_GUARD_KB: u64 = 1024 * 1024;

/// A running `mailcanary`. Dropping it kills the child, so a failing assertion never leaks one.
pub struct Running {
    child: Child,
    started: Instant,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    rss: rss::Poller,
}

/// How a child ended.
pub struct Finished {
    /// `None` when it had to be killed.
    pub status: Option<ExitStatus>,
    /// Why it was killed, when it was.
    pub killed: Option<String>,
    /// From spawn to exit (or kill).
    pub elapsed: Duration,
    /// From the call to `finish_within` to exit (or kill): time to stop after a signal.
    pub waited: Duration,
    pub stdout: String,
    pub stderr: String,
    pub peak_rss_kb: u64,
}

impl Running {
    /// Starts `mailcanary ARGS` with a clean log setting plus `envs`.
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd.spawn().expect("spawn the mailcanary binary");
        let rss = rss::Poller::start(child.id());
        let (stdout, out_reader) = collect(child.stdout.take().expect("piped stdout"));
        let (stderr, err_reader) = collect(child.stderr.take().expect("piped stderr"));
        Running {
            child,
            started,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
            rss,
        }
    }

    /// Waits until the log (stderr) contains `needle`; false if it did not within `limit` or the
    /// child exited first.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if String::from_utf8_lossy(&lock(&self.stderr)).contains(needle) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends SIGTERM, as systemd or `docker stop` would.
    pub fn terminate(&mut self) {
        // The child is not reaped before `finish_within`, so its pid cannot have been reused.
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill(1)");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stderr)).into_owned()
    }

    /// Waits for the child to exit; kills it (SIGKILL) when `limit` passes first or its memory
    /// passes the guard.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        let from = Instant::now();
        let mut killed = None;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(e) => panic!("waiting for mailcanary: {e}"),
            }
            let peak = self.rss.peak_kb();
            let why = if peak > MEMORY_GUARD_KB {
                Some(format!("its peak RSS reached {} MB", peak / 1024))
            } else if from.elapsed() >= limit {
                Some(format!("it was still running after {limit:?}"))
            } else {
                None
            };
            if let Some(why) = why {
                killed = Some(why);
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let waited = from.elapsed();
        let elapsed = self.started.elapsed();
        let peak_rss_kb = self.rss.stop();
        // The pipes close with the child: the readers end once they have drained them.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            killed,
            elapsed,
            waited,
            stdout: String::from_utf8_lossy(&lock(&self.stdout)).into_owned(),
            stderr: String::from_utf8_lossy(&lock(&self.stderr)).into_owned(),
            peak_rss_kb,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Finished {
    /// The exit code; fails the test with a clear message when the child hung or was killed.
    pub fn exit_code(&self) -> i32 {
        if let Some(why) = &self.killed {
            panic!(
                "mailcanary was killed (SIGKILL) because {why} ({:.1} s after start)\n{}",
                self.elapsed.as_secs_f64(),
                self.log_tail()
            );
        }
        match self.status.and_then(|s| s.code()) {
            Some(code) => code,
            None => panic!(
                "mailcanary ended by a signal: {:?}\n{}",
                self.status,
                self.log_tail()
            ),
        }
    }

    pub fn peak_rss_mb(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }

    /// The last lines of stderr and stdout, for failure messages (each at most a few KB).
    pub fn log_tail(&self) -> String {
        format!(
            "--- stderr (tail) ---\n{}\n--- stdout (tail) ---\n{}",
            tail(&self.stderr, 3000),
            tail(&self.stdout, 2000)
        )
    }
}

/// The last `max` bytes of `s` (on a char boundary), marked when cut.
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {} bytes cut …]{}", start, &s[start..])
}

fn collect(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = buf.clone();
    let reader = thread::spawn(move || {
        let mut chunk = [0u8; 64 * 1024];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            lock(&out).extend_from_slice(&chunk[..n]);
        }
    });
    (buf, reader)
}

fn lock(m: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
