# Shared by bench/detection-lag and bench/scale (sourced, not run).
# Benchmarks only ever touch lab users seed21 and above: seed1..seed10 belong to other
# engineers' tests and tests/daemon_lab.rs uses seed15 and seed16.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
LAB_DIR=${MAILCANARY_LAB_DIR:-/var/lib/mailcanary-lab}
DOVECOT_CONF="$LAB_DIR/dovecot/dovecot.conf"
# MAILCANARY_BIN: measure another build (e.g. an experiment in a git worktree) instead.
MC=${MAILCANARY_BIN:-$REPO/target/release/mailcanary}
IDLE_CLIENT="$REPO/target/release/examples/idle_client"
LIB="$BENCH_DIR/lib"
FIRST_BENCH_SEED=21

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The lab with enough seed users (idempotent; keeps a larger count it already has).
lab_up() {
  local have
  have=$(cat "$LAB_DIR/dovecot/seed-count" 2>/dev/null || echo 0)
  as_root "$REPO/lab/mailstack" up --seeds $((have > 220 ? have : 220))
}

# build [--idle-client]: the release binary (unless MAILCANARY_BIN names one), and the bare IDLE
# client where the bench compares with it. A bench of another build compiles nothing else.
build() {
  local targets=()
  [ -n "${MAILCANARY_BIN:-}" ] || targets+=(--bin mailcanary)
  [ "${1:-}" != --idle-client ] || targets+=(--example idle_client)
  if [ ${#targets[@]} -gt 0 ]; then
    (cd "$REPO" && cargo build --release "${targets[@]}")
  fi
  [ -x "$MC" ] || die "no mailcanary binary at $MC"
}

# What was measured: the binary and the commit it was built from.
describe_build() {
  if [ -n "${MAILCANARY_BIN:-}" ]; then
    printf 'binary %s' "$MC"
  else
    printf 'commit %s' "$(git -C "$REPO" describe --always --dirty)"
  fi
}

check_user() { # refuse anything below seed21
  [[ "$1" =~ ^seed([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge "$FIRST_BENCH_SEED" ] \
    || die "refusing lab user '$1': benchmarks use seed$FIRST_BENCH_SEED and above only"
}

# doveadm against the lab's Dovecot. Retried: `lab/mailstack up` (run by anyone) rewrites
# dovecot.conf in place, and a doveadm that reads it half-written looks in the wrong base_dir.
lab_doveadm() {
  local try
  for try in 1 2 3 4 5; do
    doveadm -c "$DOVECOT_CONF" "$@" 2>/dev/null && return 0
    sleep 0.5
  done
  doveadm -c "$DOVECOT_CONF" "$@"
}

# Empties a bench user's folders and makes sure INBOX and Junk exist on disk (the maildir
# watcher needs their new/ folders).
reset_user() {
  check_user "$1"
  local md="$LAB_DIR/mail/$1/Maildir"
  [ -d "$md/.Junk/new" ] || doveadm -c "$DOVECOT_CONF" mailbox create -u "$1" Junk >/dev/null 2>&1 || true
  [ -d "$md/new" ] || lab_doveadm mailbox status -u "$1" messages INBOX >/dev/null
  lab_doveadm expunge -u "$1" mailbox '*' all
  [ -d "$md/new" ] && [ -d "$md/.Junk/new" ] || die "cannot prepare the maildir of $1"
}

# CPU seconds (busy, total) of the whole machine so far, from /proc/stat.
machine_cpu() {
  awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; total=busy+$5+$6; printf "%s %s\n", busy/100, total/100}' /proc/stat
}

# Stops a process we started, by its pid, and waits for it.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
