//! `mailcanary run` under hostile conditions: SIGTERM must stop it within 10 s even while a
//! seed's IDLE (RFC 2177) never ends or 50 slowloris clients hold HTTP connections half-open,
//! and the status endpoints must keep answering meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::child::{Running, tail};
use crate::imap_server::{self, Mode};
use crate::setup::{Setup, assert_rss, route};
use crate::smtp_server;
use crate::wire::free_port;

/// How soon after SIGTERM `run` must have exited.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// When it is killed instead.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Sends SIGTERM and checks that `run` exits by itself, cleanly, within `STOP_WITHIN`.
fn assert_stops_on_sigterm(mut child: Running) {
    child.terminate();
    let run = child.finish_within(STOP_LIMIT);
    let code = run.exit_code();
    assert!(
        run.waited <= STOP_WITHIN,
        "`run` took {:.1} s to exit after SIGTERM (limit {STOP_WITHIN:?})\n{}",
        run.waited.as_secs_f64(),
        run.log_tail()
    );
    assert_eq!(code, 0, "exit status after SIGTERM\n{}", run.log_tail());
    assert_rss(&run);
}

#[test]
fn sigterm_stops_run_while_a_seed_idles_forever() {
    let setup = Setup::new();
    let sink = smtp_server::start(smtp_server::Mode::Sink);
    let imap = imap_server::start(Mode::IdleStall, true);
    let listen = free_port();
    let config = setup.config(
        &format!("timeout = \"10m\"\nlisten = \"127.0.0.1:{listen}\""),
        &route(sink.port, "none"),
        // A 30 s poll interval makes the watcher IDLE right after the baseline check.
        &setup.seed(imap.port, "tls", "poll_interval = \"30s\""),
    );
    let config = config.to_str().expect("utf-8 path");
    let mut child = Running::spawn(&["run", "--config", config], &[]);
    assert!(
        child.wait_for_log("probe sent", Duration::from_secs(15)),
        "no \"probe sent\" in the log\n{}",
        tail(&child.stderr_now(), 3000)
    );
    assert!(
        imap.record.wait_for("IDLE", Duration::from_secs(10)),
        "the watcher never started IDLE\n{}",
        imap.record.transcript()
    );
    thread::sleep(Duration::from_millis(500));
    assert_stops_on_sigterm(child);
}

#[test]
fn sigterm_stops_run_despite_50_slowloris_connections_that_do_not_block_requests() {
    let setup = Setup::new();
    let sink = smtp_server::start(smtp_server::Mode::Sink);
    let imap = imap_server::start(Mode::HangUp, true);
    let listen = free_port();
    let config = setup.config(
        &format!("timeout = \"2s\"\nlisten = \"127.0.0.1:{listen}\""),
        &route(sink.port, "none"),
        &setup.seed(imap.port, "tls", ""),
    );
    let config = config.to_str().expect("utf-8 path");
    let child = Running::spawn(&["run", "--config", config], &[]);
    // Ready once the first round is over, so the round plays no part in the shutdown.
    let until = Instant::now() + Duration::from_secs(15);
    while get(listen, "/readyz").as_deref() != Some("HTTP/1.1 200 OK") {
        assert!(
            Instant::now() < until,
            "/readyz never answered 200\n{}",
            tail(&child.stderr_now(), 3000)
        );
        thread::sleep(Duration::from_millis(200));
    }
    let loris = Slowloris::open(listen, 50);
    thread::sleep(Duration::from_secs(2));
    let status = get(listen, "/healthz");
    assert_eq!(
        status.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "/healthz while 50 slowloris connections are open"
    );
    assert_stops_on_sigterm(child);
    loris.stop();
}

/// GET `path` with a 5 s limit; the status line, or `None` when there was no answer.
fn get(port: u16, path: &str) -> Option<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).trim_end().to_string())
}

/// A connection to 127.0.0.1:`port` from the loopback address `source` (std cannot bind a
/// client socket before connecting; tokio's socket can, then hands it over).
fn connect_from(source: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((source, 0).into())?;
        socket.connect(([127, 0, 0, 1], port).into()).await
    })?;
    let stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// Clients that start a request and then send one header byte per second, never finishing it.
/// They come from 127.0.0.2, another client than the one checking the endpoints (127.0.0.1):
/// mailcanary serves at most `MAX_CONNECTIONS_PER_CLIENT` of them and closes the rest at once.
struct Slowloris {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Slowloris {
    fn open(port: u16, n: usize) -> Slowloris {
        let mut conns: Vec<TcpStream> = (0..n)
            .map(|i| {
                let mut s = connect_from([127, 0, 0, 2], port)
                    .unwrap_or_else(|e| panic!("slowloris connection {i}: {e}"));
                // A connection past the per-client limit may already be closed.
                let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let header = b"X-Slow: ".iter().chain(std::iter::repeat(&b'a'));
            for b in header {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                for c in &mut conns {
                    // A connection the server closed is simply done.
                    let _ = c.write_all(&[*b]);
                }
                thread::sleep(Duration::from_secs(1));
            }
        });
        Slowloris { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
