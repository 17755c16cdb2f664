#!/usr/bin/env python3
"""Time to page: from a break in the lab to the notification a receiver gets.

For each schedule asked for, one *stack*: a `mailcanary run` probing the lab's fault route
(probe@fault.test from 127.0.0.9) to three fault seeds of its own, the Debian Prometheus with the
shipped prometheus/prometheus.yml and rules (targets rewritten for loopback), the Debian
Alertmanager with the shipped alertmanager/alertmanager.yml (receivers rewritten to a webhook of
ours). Every stack watches the same faults at the same moments: a fault is switched on once
(`lab/mailstack fault NAME on`), and each stack's time to its first notification is measured
from that moment.

Scenarios (bench/time-to-page --help):
- real faults (spam-content, dkim-key, listed, mx-refuse): seconds from the switch to the first
  notification with a firing alert, which alerts it carried, and how many notifications with
  firing alerts arrived while the fault stayed on (kept on 150 s after the page: longer than
  Alertmanager's group_interval, so an update of the group would be counted);
- missing (mx-down left on): seconds to the first notification naming a *Missing alert;
- transient faults (imap-down 60 s, mx-down 60 s, lost: one probe deleted at the receiving MX,
  slow: a delivery held 45 s at the receiving MX, reload, restart): the critical notifications
  in the watch window after the fault (must be 0), and which alerts came instead.

Holds the lab's fault lock (flock /tmp/mailcanary-lab-faults.lock) for its whole run, switches
every fault off again on the way out, and stops what it started. Prints one JSON document
(also written to OUT/result.json) and a table.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB_DIR = "/var/lib/mailcanary-lab"
FAULT_LOCK = "/tmp/mailcanary-lab-faults.lock"
MAILSTACK = os.path.join(REPO, "lab", "mailstack")
FAULT_MX_CONF = os.path.join(LAB_DIR, "postfix-fault", "etc")
WATCHDOG = "MailcanaryWatchdog"
# The fault seeds each schedule's stack uses (lab/mailstack: fault1..fault14; the fault tests use
# fault1..fault8).
SEEDS = {0: ["fault9", "fault10", "fault11"], 1: ["fault12", "fault13", "fault14"]}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_duration(text):
    m = re.fullmatch(r"(\d+)(s|m|h)", text)
    if not m:
        raise SystemExit(f"bad duration {text!r}: use e.g. 45s, 10m")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def cron_of(seconds):
    """A cron expression (with seconds, as tokio-cron-scheduler reads it) for an interval."""
    if seconds < 60:
        return f"*/{seconds} * * * * *"
    return f"0 */{seconds // 60} * * * *"


# ---------------------------------------------------------------- the webhook receiver


class Inbox:
    """Every notification the Alertmanagers post, with its arrival time, by stack."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []  # (time, stack, kind, payload)

    def add(self, stack, kind, payload):
        with self.lock:
            self.items.append((time.time(), stack, kind, payload))

    def since(self, t, stack=None, kind="page"):
        with self.lock:
            return [
                i for i in self.items
                if i[0] >= t and (stack is None or i[1] == stack) and i[2] == kind
            ]


def firing(payload, severity=None):
    """The firing alerts of a notification (not the watchdog), optionally of one severity."""
    return [
        a for a in payload.get("alerts", [])
        if a.get("status") == "firing"
        and a.get("labels", {}).get("alertname") != WATCHDOG
        and (severity is None or a.get("labels", {}).get("severity") == severity)
    ]


def serve_webhook(inbox):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_response(400)
                self.end_headers()
                return
            parts = self.path.strip("/").split("/")
            stack = parts[0] if parts else ""
            kind = "heartbeat" if parts[-1:] == ["heartbeat"] else "page"
            inbox.add(stack, kind, payload)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------- one stack


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class Stack:
    """mailcanary + Prometheus + Alertmanager for one schedule."""

    def __init__(self, index, interval, timeout, binary, webhook_port, out):
        self.name = f"s{interval}"
        self.interval = interval
        self.timeout = timeout
        self.binary = binary
        self.seeds = SEEDS[index]
        self.dir = os.path.join(out, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.mc_port, self.prom_port, self.am_port = free_port(), free_port(), free_port()
        self.webhook = f"http://127.0.0.1:{webhook_port}/{self.name}"
        self.procs = {}

    # -- configs
    def mailcanary_config(self):
        seeds = "".join(
            f'[seeds.{s}]\naddress = "{s}@fault-seed.test"\nhost = "127.0.0.13"\nport = 993\n'
            f'tls = "tls"\nca_file = "{LAB_DIR}/ca/ca.pem"\nusername = "{s}"\n'
            f'password_file = "{LAB_DIR}/secrets/imap-password"\n'
            f'authserv_ids = ["mx.fault-seed.test"]\npoll_interval = "200ms"\n\n'
            for s in self.seeds
        )
        return (
            f'[probe]\nschedule = "{cron_of(self.interval)}"\ntimeout = "{self.timeout}s"\n'
            f'late_window = "10m"\ncleanup = "delete"\nlisten = "127.0.0.1:{self.mc_port}"\n'
            f'state = "{self.dir}/state.sqlite"\ntoken_key_file = "{LAB_DIR}/secrets/probe-key"\n'
            f'instance = "time-to-page-{self.name}"\n\n'
            f'[routes.fault]\nhost = "127.0.0.2"\nport = 587\ntls = "starttls"\n'
            f'ca_file = "{LAB_DIR}/ca/ca.pem"\nusername = "submit"\n'
            f'password_file = "{LAB_DIR}/secrets/submit-password"\n'
            f'from = "probe <probe@fault.test>"\nenvelope_from = "bounces@fault.test"\n'
            f'bounces = "fault"\nsending_ips = ["127.0.0.9"]\n\n'
            # The DNS audit asks the lab's DNS only (never the host's resolver), no blocklists.
            f'[dns_audit]\nnameserver = "127.0.53.53:53"\ndnsbl_zones = []\n\n'
            f"{seeds}"
            f'[bounce_mailboxes.fault]\naddress = "bounces@fault.test"\nhost = "127.0.0.3"\n'
            f'port = 993\ntls = "tls"\nca_file = "{LAB_DIR}/ca/ca.pem"\n'
            f'username = "fault-bounces"\npassword_file = "{LAB_DIR}/secrets/imap-password"\n'
        )

    def prometheus_config(self):
        """The shipped prometheus.yml, its targets rewritten for loopback (and mailcanary
        scraped over plain HTTP: the bench starts it without a web config)."""
        with open(os.path.join(REPO, "prometheus", "prometheus.yml")) as f:
            conf = yaml.safe_load(f)
        conf["rule_files"] = [os.path.join(REPO, "prometheus", "rules", "*.yml")]
        conf["alerting"]["alertmanagers"] = [
            {"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}
        ]
        scrapes = []
        for job in conf["scrape_configs"]:
            if job["job_name"] == "mailcanary":
                for key in ("scheme", "tls_config", "basic_auth"):
                    job.pop(key, None)
                job["static_configs"] = [{"targets": [f"127.0.0.1:{self.mc_port}"]}]
                scrapes.append(job)
        conf["scrape_configs"] = scrapes
        return conf

    def alertmanager_config(self):
        """The shipped alertmanager.yml, each receiver's URL rewritten to our webhook."""
        with open(os.path.join(REPO, "alertmanager", "alertmanager.yml")) as f:
            conf = yaml.safe_load(f)
        for receiver in conf["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                path = urllib.parse.urlparse(hook["url"]).path.strip("/")
                hook["url"] = f"{self.webhook}/{path}" if path else f"{self.webhook}/"
        return conf

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            if isinstance(content, str):
                f.write(content)
            else:
                yaml.safe_dump(content, f, sort_keys=False)
        return path

    # -- processes
    def spawn(self, key, argv):
        logf = open(os.path.join(self.dir, f"{key}.log"), "ab")
        self.procs[key] = subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True
        )

    def start(self):
        mc = self.write("mailcanary.toml", self.mailcanary_config())
        prom = self.write("prometheus.yml", self.prometheus_config())
        am = self.write("alertmanager.yml", self.alertmanager_config())
        self.spawn(
            "alertmanager",
            [shutil.which("prometheus-alertmanager") or "alertmanager",
             f"--config.file={am}", f"--storage.path={self.dir}/am-data",
             f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address="],
        )
        self.spawn(
            "prometheus",
            ["prometheus", f"--config.file={prom}", f"--storage.tsdb.path={self.dir}/prom-data",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
        )
        self.start_mailcanary()

    def start_mailcanary(self):
        self.spawn(
            "mailcanary",
            [self.binary, "run", "--config", os.path.join(self.dir, "mailcanary.toml")],
        )

    def stop_mailcanary(self):
        p = self.procs.get("mailcanary")
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def reload_mailcanary(self):
        self.procs["mailcanary"].send_signal(signal.SIGHUP)

    def stop(self):
        self.stop_mailcanary()
        for key in ("prometheus", "alertmanager"):
            p = self.procs.get(key)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()

    def check_alive(self):
        for key, p in self.procs.items():
            if p.poll() is not None:
                raise SystemExit(f"{self.name}: {key} exited ({p.returncode}); see {self.dir}/{key}.log")

    # -- queries
    def query(self, expr):
        url = f"http://127.0.0.1:{self.prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            data = json.loads(http_get(url))
        except (OSError, ValueError):
            return []
        return data.get("data", {}).get("result", [])

    def scalar(self, expr):
        r = self.query(expr)
        return float(r[0]["value"][1]) if r else None

    def pairs_in(self, states):
        """How many of this stack's pairs stand in one of `states` (Prometheus' view)."""
        v = self.scalar(f'count(mailcanary_pair_state{{state=~"{states}"}} == 1)')
        return int(v or 0)

    def firing_alerts(self, severity=None):
        sev = f',severity="{severity}"' if severity else ""
        return self.query(f'ALERTS{{alertstate="firing",alertname!="{WATCHDOG}"{sev}}}')

    def confirmations(self):
        return self.scalar("sum(mailcanary_confirmation_probes_total)") or 0.0


# ---------------------------------------------------------------- the lab


def fault(name, state):
    out = subprocess.run([MAILSTACK, "fault", name, state], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"lab/mailstack fault {name} {state}: {out.stderr.strip()}")


def held_messages():
    """The fault seeds' MX's hold queue: [(queue id, [recipients])]."""
    out = subprocess.run(
        ["postqueue", "-c", FAULT_MX_CONF, "-j"], capture_output=True, text=True
    )
    msgs = []
    for line in out.stdout.splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("queue_name") == "hold":
            msgs.append((m["queue_id"], [r["address"] for r in m.get("recipients", [])]))
    return msgs


def delete_queued(queue_id):
    subprocess.run(["postsuper", "-c", FAULT_MX_CONF, "-d", queue_id], capture_output=True)


def wait_for(what, predicate, limit, step=1.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    return None


# ---------------------------------------------------------------- scenarios


class Bench:
    def __init__(self, args, stacks, inbox):
        self.args, self.stacks, self.inbox = args, stacks, inbox
        self.results = []

    def alive(self):
        for s in self.stacks:
            s.check_alive()

    def wait_quiet(self, why, limit=900):
        """Until every stack's pairs are ok (or recovered) and no alert fires."""
        def quiet():
            self.alive()
            return all(
                s.pairs_in("ok|recovered") == len(s.seeds) and not s.firing_alerts()
                for s in self.stacks
            )
        t0 = time.time()
        if not wait_for(why, quiet, limit, 2.0):
            raise SystemExit(f"not quiet {limit} s after {why}: pairs or alerts still bad")
        log(f"quiet after {why} ({time.time() - t0:.0f} s)")

    def wait_groups_closed(self, why, since, limit=300):
        """Until every stack that was notified of firing alerts since `since` has had its
        all-resolved notification: Alertmanager then deletes the group, and the next break
        starts a new one (paged after group_wait, not at the old group's group_interval)."""
        def closed():
            for s in self.stacks:
                notes = self.inbox.since(since, s.name)
                if any(firing(n[3]) for n in notes):
                    last = notes[-1][3]
                    if last.get("status") != "resolved" or firing(last):
                        return False
            return True
        t0 = time.time()
        if not wait_for(why, closed, limit, 1.0):
            log(f"warning: a group still open {limit} s after {why}")
        else:
            log(f"groups closed after {why} ({time.time() - t0:.0f} s)")

    def record(self, scenario, kind, t0, t_end, stacks_data):
        r = {"scenario": scenario, "kind": kind, "at": time.strftime("%H:%M:%S", time.localtime(t0)),
             "stacks": stacks_data}
        self.results.append(r)
        log(json.dumps(r))
        # Kept as it goes: a run cut short still leaves its figures.
        with open(os.path.join(self.args.out, "partial.json"), "w") as f:
            json.dump(self.results, f, indent=1)

    def page_window(self, stack, t0, t_end):
        notes = [n for n in self.inbox.since(t0, stack.name) if n[0] <= t_end]
        firing_notes = [n for n in notes if firing(n[3])]
        critical_notes = [n for n in notes if firing(n[3], "critical")]
        return notes, firing_notes, critical_notes

    def real_fault(self, name, want=None):
        settle = self.args.settle
        log(f"real fault {name}")
        conf0 = {s.name: s.confirmations() for s in self.stacks}
        t0 = time.time()
        fault(name, "on")
        first = {}
        try:
            limit = max(s.interval for s in self.stacks) + max(s.timeout for s in self.stacks) + 400
            def all_paged():
                self.alive()
                for s in self.stacks:
                    if s.name in first:
                        continue
                    for t, _, _, payload in self.inbox.since(t0, s.name):
                        # The page about the break: an alert on the probes' placement or
                        # authentication (they carry `problem`), not e.g. a DNS-audit warning.
                        alerts = [a for a in firing(payload) if "problem" in a["labels"]]
                        if want:
                            alerts = [a for a in alerts if re.search(want, a["labels"]["alertname"])]
                        if alerts:
                            first[s.name] = (t, sorted({a["labels"]["alertname"] for a in alerts}))
                            break
                return len(first) == len(self.stacks)
            wait_for(name, all_paged, limit, 0.5)
            time.sleep(settle)
        finally:
            t_end = time.time()
            fault(name, "off")
        data = {}
        for s in self.stacks:
            _, firing_notes, critical_notes = self.page_window(s, t0, t_end)
            t, alerts = first.get(s.name, (None, []))
            data[s.name] = {
                "seconds_to_page": round(t - t0, 1) if t else None,
                "first_alerts": alerts,
                "notifications_firing": len(firing_notes),
                "notifications_critical": len(critical_notes),
                "confirmation_probes": round((s.confirmations() - conf0[s.name])),
            }
        self.record(name, "real", t0, t_end, data)
        self.wait_quiet(f"{name} off")
        self.wait_groups_closed(f"{name} off", t0)

    def transient(self, name, action):
        log(f"transient {name}")
        conf0 = {s.name: s.confirmations() for s in self.stacks}
        t0 = time.time()
        action()
        time.sleep(self.args.watch)
        t_end = time.time()
        data = {}
        for s in self.stacks:
            notes, firing_notes, critical_notes = self.page_window(s, t0, t_end)
            data[s.name] = {
                "notifications_critical": len(critical_notes),
                "notifications_firing": len(firing_notes),
                "alerts": sorted({a["labels"]["alertname"] for n in firing_notes for a in firing(n[3])}),
                # A restart starts the counter again: no figure then.
                "confirmation_probes": max(-1, round(s.confirmations() - conf0[s.name])),
            }
        self.record(name, "transient", t0, t_end, data)
        self.wait_quiet(f"{name}")
        self.wait_groups_closed(name, t0)

    # the transient actions
    def for_a_minute(self, name):
        def act():
            fault(name, "on")
            try:
                time.sleep(60)
            finally:
                fault(name, "off")
        return act

    def hold(self, lose):
        """mx-hold on until every stack's next probes wait at the receiving MX; then delete
        each stack's first seed's (lose) or keep them all 45 s more (slow); then release."""
        def act():
            fault("mx-hold", "on")
            try:
                firsts = [s.seeds[0] + "@fault-seed.test" for s in self.stacks]
                def all_held():
                    held = held_messages()
                    return all(any(f in rcpts for _, rcpts in held) for f in firsts) and held
                held = wait_for("held probes", all_held, max(s.interval for s in self.stacks) + 60, 0.2)
                if not held:
                    raise SystemExit("no probe reached the receiving MX's hold queue")
                if lose:
                    for qid, rcpts in held:
                        if any(f in rcpts for f in firsts):
                            delete_queued(qid)
                else:
                    time.sleep(45)
            finally:
                fault("mx-hold", "off")
        return act

    def reload(self):
        for s in self.stacks:
            s.reload_mailcanary()

    def restart(self):
        for s in self.stacks:
            s.stop_mailcanary()
            s.start_mailcanary()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schedules", default="1m,5m", help="probe intervals, one stack each (at most 2)")
    ap.add_argument("--timeout", default="2m", help="probe.timeout of every stack")
    ap.add_argument("--faults", default="spam-content,dkim-key,listed,mx-refuse")
    ap.add_argument("--missing", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--transients", default="imap-down,mx-down,lost,slow,reload,restart")
    ap.add_argument("--watch", default="10m", help="how long to count notifications after a transient")
    ap.add_argument("--settle", default="150s",
                    help="how long a real fault stays on after its page, counting notifications "
                         "(longer than Alertmanager's group_interval, so a group update is seen)")
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "debug", "mailcanary"))
    ap.add_argument("--out", default=f"/tmp/mailcanary-bench/time-to-page-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    args.watch = parse_duration(args.watch)
    args.settle = parse_duration(args.settle)
    intervals = [parse_duration(x) for x in args.schedules.split(",") if x]
    if not 1 <= len(intervals) <= 2:
        raise SystemExit("--schedules: one or two intervals")
    timeout = parse_duration(args.timeout)
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.bin, os.X_OK):
        raise SystemExit(f"{args.bin}: no mailcanary binary (cargo build, or --bin)")

    # SIGTERM ends the run like Ctrl-C: faults off, daemons stopped, figures so far kept.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lock = open(FAULT_LOCK, "a")
    log("waiting for the lab's fault lock")
    fcntl.flock(lock, fcntl.LOCK_EX)
    inbox = Inbox()
    server = serve_webhook(inbox)
    stacks = [Stack(i, iv, timeout, args.bin, server.server_address[1], args.out)
              for i, iv in enumerate(intervals)]
    bench = Bench(args, stacks, inbox)
    started = time.time()
    try:
        fault("all", "off")
        for s in stacks:
            s.start()
        # The pipeline works end to end (the watchdog reaches the heartbeat receiver) and every
        # pair has had a good probe.
        if not wait_for("heartbeat", lambda: all(inbox.since(started, s.name, "heartbeat") for s in stacks), 120):
            raise SystemExit("no watchdog heartbeat reached the webhook in 120 s")
        bench.wait_quiet("start", limit=max(intervals) + timeout + 300)
        for name in [f for f in args.faults.split(",") if f]:
            bench.real_fault(name)
        if args.missing:
            bench.real_fault("mx-down", want="Missing")
        actions = {
            "imap-down": bench.for_a_minute("imap-down"),
            "mx-down": bench.for_a_minute("mx-down"),
            "lost": bench.hold(lose=True),
            "slow": bench.hold(lose=False),
            "reload": bench.reload,
            "restart": bench.restart,
        }
        for name in [t for t in args.transients.split(",") if t]:
            if name not in actions:
                raise SystemExit(f"unknown transient {name}; known: {', '.join(actions)}")
            bench.transient(name, actions[name])
    finally:
        subprocess.run([MAILSTACK, "fault", "all", "off"], capture_output=True)
        for s in stacks:
            s.stop()
        server.shutdown()
    result = {
        "commit": commit,  # the checkout's, at the start
        "load": open("/proc/loadavg").read().split()[:3],
        "schedules_s": intervals, "timeout_s": timeout, "watch_s": args.watch,
        "results": bench.results,
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))
    table(result)


def table(result):
    print("\nscenario       stack   to page  first alerts / alerts                      notif(firing/crit)  confirmations", file=sys.stderr)
    for r in result["results"]:
        for name, d in r["stacks"].items():
            ttp = d.get("seconds_to_page")
            ttp = "-" if r["kind"] == "transient" else (f"{ttp:.0f} s" if ttp is not None else "none")
            alerts = ",".join(d.get("first_alerts") or d.get("alerts") or []) or "-"
            confirmations = d["confirmation_probes"]
            confirmations = "n/a (counter reset)" if confirmations < 0 else confirmations
            print(f"{r['scenario']:<14} {name:<7} {ttp:>7}  {alerts[:42]:<42} "
                  f"{d['notifications_firing']:>3}/{d['notifications_critical']:<3}            {confirmations}",
                  file=sys.stderr)


if __name__ == "__main__":
    main()
