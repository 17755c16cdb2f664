#!/usr/bin/env python3
"""Runs a command and appends one JSON line about it to FILE: start/end (unix seconds), wall,
user and sys CPU seconds and peak RSS (KiB), from wait4(2) - what /usr/bin/time -v reports,
with microsecond rather than 10 ms resolution. Its own exit code is the command's.

    timed.py FILE [--tag TAG] -- COMMAND ARGS...
"""
import json
import os
import subprocess
import sys
import time


def main():
    argv = sys.argv[1:]
    if "--" not in argv or not argv:
        sys.exit("usage: timed.py FILE [--tag TAG] -- COMMAND ARGS...")
    sep = argv.index("--")
    opts, cmd = argv[:sep], argv[sep + 1:]
    out = opts[0]
    tag = opts[opts.index("--tag") + 1] if "--tag" in opts else ""
    start = time.time()
    p = subprocess.Popen(cmd)
    _, status, ru = os.wait4(p.pid, 0)
    end = time.time()
    rc = os.waitstatus_to_exitcode(status)
    with open(out, "a") as f:
        f.write(json.dumps({
            "tag": tag, "start": start, "end": end, "wall": end - start,
            "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss, "rc": rc,
        }) + "\n")
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
