#!/usr/bin/env python3
"""Prints the CPU seconds (user+sys) each lab daemon has used so far, as one JSON object:
{"dovecot": s, "postfix-out": s, "postfix-in": s, "rspamd": s, "nsd": s}.

For each daemon it sums utime+stime+cutime+cstime over the master process and all its live
descendants: a child that exits and is reaped moves its CPU into its parent's cutime, so the
difference of two snapshots is the CPU that daemon's process tree used in between (e.g. the
Dovecot imap processes serving mailcanary's connections, which exit at LOGOUT).
"""
import json
import os

LAB = os.environ.get("MAILCANARY_LAB_DIR", "/var/lib/mailcanary-lab")
PIDFILES = {
    "dovecot": "run/dovecot/master.pid",
    "postfix-out": "postfix-out/queue/pid/master.pid",
    "postfix-in": "postfix-in/queue/pid/master.pid",
    "rspamd": "rspamd-run/rspamd.pid",
    "nsd": "run/nsd.pid",
}
TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[1] is ppid; utime, stime, cutime, cstime are fields 14-17 of the full line.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def main():
    procs = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                procs[int(p)] = stat(p)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                pass
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for name, rel in PIDFILES.items():
        try:
            with open(os.path.join(LAB, rel)) as f:
                root = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        total, todo = 0, [root]
        while todo:
            pid = todo.pop()
            if pid in procs:
                total += procs[pid][1]
                todo.extend(children.get(pid, []))
        out[name] = total / TICK
    print(json.dumps(out))


if __name__ == "__main__":
    main()
