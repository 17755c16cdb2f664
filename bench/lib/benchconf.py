#!/usr/bin/env python3
"""Writes a mailcanary config for a benchmark: the lab's routes (from config/lab.toml), the
named lab seed users, and a [probe] table whose state lives in the benchmark's output folder.

    benchconf.py --out FILE --state FILE --seeds seed21,seed22 [--routes good,spam]
                 [--poll 20ms] [--cleanup keep] [--timeout 30s] [--imap HOST:PORT]
                 [--probes-per-session N]
"""
import argparse
import os
import sys
import tomllib

LAB = os.environ.get("MAILCANARY_LAB_DIR", "/var/lib/mailcanary-lab")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# `listed` is left out: its DNSBL check is for the DNS audit, not for delivery timing.
DEFAULT_ROUTES = ["good", "spam", "spf-fail", "dkim-fail", "dmarc-fail", "no-ptr"]


def q(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(q(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def table(name, d, out):
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
    out.append(f"[{name}]")
    out.extend(f"{k} = {q(v)}" for k, v in scalars.items())
    out.append("")
    for k, v in d.items():
        if isinstance(v, dict):
            table(f"{name}.{k}", v, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seeds", required=True, help="comma-separated lab users (seed21 and above)")
    ap.add_argument("--routes", default=",".join(DEFAULT_ROUTES))
    ap.add_argument("--poll", default="20ms")
    ap.add_argument("--cleanup", default="keep")
    ap.add_argument("--timeout", default="30s")
    ap.add_argument("--concurrency", type=int, default=None)
    ap.add_argument("--imap", default="127.0.0.3:993", help="IMAP host:port (a counting proxy)")
    ap.add_argument("--schedule", default="*/5 * * * *", help="cron (6 fields: with seconds)")
    ap.add_argument("--probes-per-session", type=int, default=None,
                    help="routes.<name>.probes_per_session (default: mailcanary's own)")
    a = ap.parse_args()

    seeds = [s for s in a.seeds.split(",") if s]
    for s in seeds:
        # Other engineers' tests use the first seed users; benchmarks never touch them.
        if not s.startswith("seed") or int(s[4:]) < 21:
            sys.exit(f"benchconf: refusing seed user {s!r}: benchmarks use seed21 and above only (seed1..10: other tests; seed15, seed16: tests/daemon_lab.rs)")
    with open(os.path.join(REPO, "config", "lab.toml"), "rb") as f:
        lab = tomllib.load(f)
    routes = [r for r in a.routes.split(",") if r]
    host, port = a.imap.rsplit(":", 1)

    probe = {
        "schedule": a.schedule,
        "timeout": a.timeout,
        "late_window": "10m",
        "cleanup": a.cleanup,
        "listen": "127.0.0.1:0",
        "state": a.state,
        "retention": "7d",
        "token_key_file": f"{LAB}/secrets/probe-key",
    }
    if a.concurrency:
        probe["concurrency"] = a.concurrency
    out = ["# Written by bench/lib/benchconf.py for a benchmark run.", ""]
    table("probe", probe, out)
    table("dns_audit", {"nameserver": "127.0.53.53:53", "dnsbl_zones": []}, out)
    for r in routes:
        route = dict(lab["routes"][r])
        if a.probes_per_session is not None:
            route["probes_per_session"] = a.probes_per_session
        table(f"routes.{r}", route, out)
    for s in seeds:
        table(f"seeds.{s}", {
            "provider": "generic",
            "address": f"{s}@seed.test",
            "host": host,
            "port": int(port),
            "tls": "tls",
            "ca_file": f"{LAB}/ca/ca.pem",
            "username": s,
            "password_file": f"{LAB}/secrets/imap-password",
            "authserv_ids": ["mx.seed.test"],
            "poll_interval": a.poll,
        }, out)
    with open(a.out, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
