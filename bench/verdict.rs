//! How many messages per second the verdict reader judges, on one core.
//!
//! The input is a Gmail-received message forwarded through a list: two ARC sets, three
//! DKIM signatures, a Received chain, two Authentication-Results and a Received-SPF — an
//! ~9 KB header block, the realistic worst case of what the probe reads per message.
//!
//! `cargo bench --bench verdict` prints criterion's figures (throughput in elements/s,
//! one element = one message) and, after them, a plain `messages/s` line.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mailcanary::verdict::inspect;

const MESSAGE: &[u8] = include_bytes!("../tests/fixtures/verdict/gmail-arc-chain-8k.eml");

fn header_block_len(raw: &[u8]) -> usize {
    raw.windows(2)
        .position(|pair| pair == b"\n\n")
        .map_or(raw.len(), |at| at + 1)
}

fn bench(c: &mut Criterion) {
    let trusted = vec!["mx.google.com".to_string()];
    let mut group = c.benchmark_group("verdict");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inspect_gmail_arc_chain_8k", |b| {
        b.iter(|| inspect(black_box(MESSAGE), black_box(&[])))
    });
    group.bench_function("inspect_gmail_arc_chain_8k_trusted_id", |b| {
        b.iter(|| inspect(black_box(MESSAGE), black_box(&trusted)))
    });
    group.finish();
}

/// A plain figure for reports: messages judged per second over about three seconds.
fn messages_per_second() {
    let mut judged = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..1000 {
            let inspection = inspect(black_box(MESSAGE), &[]);
            black_box(&inspection);
        }
        judged += 1000;
    }
    let rate = judged as f64 / start.elapsed().as_secs_f64();
    println!(
        "verdict: {rate:.0} messages/s on one core ({} byte header block, {} bytes in all)",
        header_block_len(MESSAGE),
        MESSAGE.len()
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    messages_per_second();
}
