//! The `mailcanary` command: parse the command line and dispatch to `cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    match mailcanary::cli::parse() {
        Ok(cli) => mailcanary::cli::dispatch(cli),
        Err(code) => code,
    }
}

/// glibc gives threads that allocate at once arenas of their own (up to eight per core), and the
/// probe's many small, long-lived connection buffers spread over all of them. Two arenas hold the
/// same in less memory: at 1,000 seeds 131 MiB instead of 140 MiB peak RSS, CPU unchanged
/// (`bench/scale`, docs/benchmarks.md). `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
