#!/usr/bin/env python3
"""Turns a benchmark run's raw files into the figures bench/README.md reports.

    analyze.py lag DIR     # bench/detection-lag's output folder
    analyze.py scale DIR   # bench/scale's output folder

Percentiles are nearest-rank (p99 of 240 samples is the 238th smallest). Storage time is the
time in Dovecot's maildir file name (taken when LMTP commits the file into new/); `inotify`
columns use the moment our watcher saw that rename instead, as a cross-check.
"""
import json
import math
import os
import sqlite3
import sys


def pct(xs, p):
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 1000:.0f}"


def row(name, xs):
    if not xs:
        return f"| {name} | 0 | | | | | |"
    return (f"| {name} | {len(xs)} | {ms(pct(xs, 50))} | {ms(pct(xs, 90))} | {ms(pct(xs, 99))} "
            f"| {ms(max(xs))} | {ms(min(xs))} |")


HEAD = "| series | n | p50 ms | p90 ms | p99 ms | max ms | min ms |\n|---|---:|---:|---:|---:|---:|---:|"


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def stored_index(path):
    idx = {}
    for e in jsonl(path):
        if e.get("message_id"):
            idx.setdefault(e["message_id"], e)
    return idx


def probes(db):
    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    rows = [dict(r) for r in c.execute(
        "SELECT probe_id, round_id, route, seed, message_id, state, placement, folder, sent_at, "
        "delivery_seconds, resolved_at, smtp_json FROM probes ORDER BY created_at")]
    c.close()
    for r in rows:
        if r["sent_at"] is not None and r["delivery_seconds"] is not None:
            # handle_message: delivery = seen_at - accepted_at, and sent_at is accepted_at.
            r["seen_at"] = r["sent_at"] + r["delivery_seconds"]
        else:
            r["seen_at"] = None
        smtp = json.loads(r["smtp_json"]) if r["smtp_json"] else {}
        dur = smtp.get("duration_seconds")
        r["smtp_start"] = r["sent_at"] - dur if r["sent_at"] is not None and dur else r["sent_at"]
    return rows


def join_lags(rows, stored):
    out = {"seen": [], "resolved": [], "seen_inotify": [], "inbox": [], "junk": [],
           "unmatched": 0, "unresolved": 0}
    for r in rows:
        if r["state"] != "resolved":
            out["unresolved"] += 1
            continue
        s = stored.get(r["message_id"])
        if s is None:
            out["unmatched"] += 1
            continue
        r["stored"] = s["stored"]
        if r["seen_at"] is not None:
            lag = r["seen_at"] - s["stored"]
            out["seen"].append(lag)
            out["seen_inotify"].append(r["seen_at"] - s["event_at"])
            (out["junk"] if s["folder"] == "Junk" else out["inbox"]).append(lag)
        out["resolved"].append(r["resolved_at"] - s["stored"])
    return out


def cpu_rows(path, prefix):
    return [t for t in jsonl(path) if t["tag"].startswith(prefix)]


def counts_per(path, users):
    if not os.path.exists(path):
        return None, {}
    with open(path) as f:
        c = json.load(f)
    total, by = 0, {}
    for u in users:
        for k, v in c["users"].get(u, {}).items():
            total += v
            by[k] = by.get(k, 0) + v
    return total, by


def lag(d):
    rows = probes(os.path.join(d, "state.sqlite"))
    stored = stored_index(os.path.join(d, "stored.jsonl"))
    m = join_lags(rows, stored)
    mirror = {e["message_id"] for e in jsonl(os.path.join(d, "mirror.jsonl"))}
    idle = [e for e in jsonl(os.path.join(d, "idle.jsonl")) if e.get("event") == "message"
            and e.get("message_id") in mirror]
    i_exists, i_fetched, i_inotify = [], [], []
    for e in idle:
        s = stored.get(e["message_id"])
        if s is None:
            continue
        i_exists.append(e["exists_at"] - s["stored"])
        i_fetched.append(e["fetched_at"] - s["stored"])
        i_inotify.append(e["exists_at"] - s["event_at"])
    sent_mirror = len(mirror)
    print(f"## Detection lag: storage (maildir file name) -> detection\n")
    print(f"probes: {len(rows)} recorded, {len(m['seen'])} matched to their maildir file, "
          f"{m['unresolved']} not resolved, {m['unmatched']} resolved but file not seen; "
          f"bare IDLE: {len(i_exists)} of {sent_mirror} mirror messages seen\n")
    print(HEAD)
    print(row("mailcanary: seen_at (fetched, before judging)", m["seen"]))
    print(row("mailcanary: resolved_at (recorded)", m["resolved"]))
    print(row("mailcanary: seen_at, INBOX probes", m["inbox"]))
    print(row("mailcanary: seen_at, Junk probes", m["junk"]))
    print(row("bare IDLE: EXISTS notification", i_exists))
    print(row("bare IDLE: headers fetched", i_fetched))
    print(row("cross-check: mailcanary seen_at - inotify rename", m["seen_inotify"]))
    print(row("cross-check: bare IDLE EXISTS - inotify rename", i_inotify))
    skew = [e["event_at"] - e["stored"] for e in stored.values()]
    print(row("inotify rename seen - file-name time", skew))
    rounds = cpu_rows(os.path.join(d, "timed.jsonl"), "round-")
    n = len(rows)
    if rounds:
        cpu = sum(t["user"] + t["sys"] for t in rounds)
        user = sum(t["user"] for t in rounds)
        print(f"\n## CPU and memory (mailcanary once, {len(rounds)} rounds)\n")
        print(f"- CPU user+sys: {cpu:.3f} s in total ({user:.3f} user), {cpu / len(rounds) * 1000:.1f} ms "
              f"per round, **{cpu / n * 1000:.2f} ms per probe** (process start, TLS logins and "
              f"polling included)")
        print(f"- wall per round: p50 {pct([t['wall'] for t in rounds], 50):.3f} s, "
              f"max {max(t['wall'] for t in rounds):.3f} s")
        print(f"- peak RSS: {max(t['maxrss_kib'] for t in rounds) / 1024:.1f} MiB")
    idle_cpu = os.path.join(d, "idle-cpu.json")
    if os.path.exists(idle_cpu) and i_exists:
        with open(idle_cpu) as f:
            ic = json.load(f)
        print(f"- bare IDLE client: CPU {ic['cpu']:.3f} s over {ic['wall']:.0f} s, "
              f"{ic['cpu'] / len(i_exists) * 1000:.2f} ms per message, RSS {ic['rss_kib'] / 1024:.1f} MiB")
    print("\n## IMAP commands (counted by the TLS proxy bench/lib/imapcount.py)\n")
    for mode in ("keep", "delete", "daemon-keep", "daemon-delete"):
        path = os.path.join(d, f"counts-{mode}.json")
        if not os.path.exists(path):
            continue
        nprobe = len(probes(os.path.join(d, f"count-{mode}.sqlite")))
        if not nprobe:
            continue
        total, by = counts_per(path, ["seed21", "seed22"])
        itotal, iby = counts_per(path, ["seed23"])
        imsgs = len([e for e in jsonl(os.path.join(d, f"idle-count-{mode}.jsonl"))
                     if e.get("event") == "message"])
        detail = ", ".join(f"{k} {v / nprobe:.2f}" for k, v in sorted(by.items(), key=lambda kv: -kv[1]))
        who = (f"`mailcanary run` (one process, {nprobe // 12} rounds, logins included), cleanup = {mode[7:]}"
               if mode.startswith("daemon-") else f"mailcanary `once` per round, cleanup = {mode}")
        print(f"- {who}: {total} commands for {nprobe} probes = "
              f"**{total / nprobe:.1f} per probe** ({detail})")
        if imsgs:
            idetail = ", ".join(f"{k} {v}" for k, v in sorted(iby.items(), key=lambda kv: -kv[1]))
            print(f"- bare IDLE client in the same rounds: {itotal} commands for {imsgs} messages = "
                  f"**{itotal / imsgs:.1f} per message** ({idetail})")


def scale(d):
    for name in sorted(os.listdir(d)):
        if not name.startswith("run-"):
            continue
        rd = os.path.join(d, name)
        rows = probes(os.path.join(rd, "round.sqlite"))
        stored = stored_index(os.path.join(rd, "stored.jsonl"))
        m = join_lags(rows, stored)
        t = cpu_rows(os.path.join(rd, "timed.jsonl"), "round")[0]
        with open(os.path.join(rd, "params.json")) as f:
            params = json.load(f)
        n = len(rows)
        found = [r for r in rows if r.get("stored") is not None]
        t0, t_end = t["start"], t["end"]
        smtp_first = min(r["smtp_start"] for r in rows if r["smtp_start"] is not None)
        accept_last = max(r["sent_at"] for r in rows if r["sent_at"] is not None)
        stored_first = min(r["stored"] for r in found)
        stored_last = max(r["stored"] for r in found)
        seen_last = max(r["seen_at"] for r in found if r["seen_at"] is not None)
        slowest = max(r["stored"] - r["smtp_start"] for r in found)
        wall = t_end - t0
        cpu = t["user"] + t["sys"]
        machine = params.get("machine_cpu")
        print(f"## Scale: {params['seeds']} seeds x {params['routes']} routes, poll_interval "
              f"{params['poll']}, cleanup {params['cleanup']} ({name})\n")
        print(f"- probes: {n}; resolved {sum(r['state'] == 'resolved' for r in rows)}; "
              f"matched to maildir files {len(m['seen'])}; not resolved {m['unresolved']}")
        print(f"- wall time of `mailcanary once`: {wall:.2f} s (exit {t['rc']})")
        print(f"- timeline from process start: first SMTP start +{smtp_first - t0:.2f} s, last SMTP "
              f"acceptance +{accept_last - t0:.2f} s, first stored +{stored_first - t0:.2f} s, last stored "
              f"+{stored_last - t0:.2f} s, last detected +{seen_last - t0:.2f} s, exit +{wall:.2f} s")
        print(f"- **round overhead A** = wall - (last storage - process start) = "
              f"**{t_end - stored_last:.2f} s** (time from the last message stored to the round's end)")
        print(f"- **round overhead B** = wall - (last storage - first SMTP start) = "
              f"**{(smtp_first - t0) + (t_end - stored_last):.2f} s** (A plus start-up: config, state, "
              f"one IMAP login and baseline per seed ({params['seeds']}; two where the server lacks NOTIFY) before the first send)")
        print(f"- for reference: wall - slowest single message's own delivery "
              f"(its storage - its SMTP start, {slowest:.2f} s) = {wall - slowest:.2f} s")
        print(f"- CPU user+sys: {cpu:.2f} s ({t['user']:.2f} user) = **{cpu / n * 1000:.1f} ms per probe**")
        print(f"- peak RSS: **{t['maxrss_kib'] / 1024:.1f} MiB**")
        if machine:
            print(f"- whole machine during the round (2 cores, shared): {machine['busy']:.1f} CPU-s busy of "
                  f"{machine['total']:.1f} CPU-s ({100 * machine['busy'] / machine['total']:.0f} %)")
        before, after = (os.path.join(rd, f"labcpu-{w}.json") for w in ("before", "after"))
        if os.path.exists(before) and os.path.exists(after):
            with open(before) as f:
                b = json.load(f)
            with open(after) as f:
                a = json.load(f)
            parts = ", ".join(f"{k} {a[k] - b.get(k, 0):.1f}" for k in a)
            print(f"- lab daemons' CPU-s during the round: {parts}")
        if params.get("imap_commands"):
            print(f"- IMAP commands: {params['imap_commands']}")
        print(f"\nDetection lag in the scale round:\n\n{HEAD}")
        print(row("seen_at - stored", m["seen"]))
        print(row("  INBOX", m["inbox"]))
        print(row("  Junk", m["junk"]))
        print(row("resolved_at - stored", m["resolved"]))
        print()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("lag", "scale"):
        sys.exit(__doc__)
    {"lag": lag, "scale": scale}[sys.argv[1]](sys.argv[2])
