#!/usr/bin/env python3
"""Records when each message is stored in the lab's maildirs (Linux inotify, no dependencies).

Dovecot's LMTP writes a message under tmp/ and renames it into new/ under its final name
`<secs>.M<usecs>P<pid>.<host>,S=..,W=..`, where secs.usecs is the storage time. For every
rename into a watched new/ folder this prints one JSON line:

    {"user": "seed21", "folder": "INBOX", "file": "...", "stored": 1795843410.836426,
     "event_at": 1795843410.8371, "message_id": "<mc.<public id>@sender.test>"}

`stored` comes from the file name, `event_at` is when this watcher saw the rename. The file is
read at once for its Message-ID (mailcanary may delete it moments later; if it has already been
moved to cur/ it is looked up there). Runs until SIGTERM/SIGINT.

    maildir_watch.py --users seed21,seed22 --out stored.jsonl
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import re
import select
import signal
import struct
import sys
import time

LAB = os.environ.get("MAILCANARY_LAB_DIR", "/var/lib/mailcanary-lab")
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
NAME = re.compile(r"^(\d+)\.M(\d+)P\d+\.")
FOLDERS = {"new": "INBOX", ".Junk/new": "Junk"}

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def message_id(path):
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except FileNotFoundError:
        return None
    head = head.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode("ascii", "replace")
    return None


def find_moved(maildir, name):
    """The file after Dovecot moved it from new/ to cur/ (it appends :2,<flags>)."""
    cur = os.path.join(maildir, "cur")
    try:
        for n in os.listdir(cur):
            if n.startswith(name):
                return os.path.join(cur, n)
    except FileNotFoundError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", required=True, help="comma-separated, or a range seedA-seedB")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if "-" in a.users:
        lo, hi = (int(x.strip()[4:]) for x in a.users.split("-"))
        users = [f"seed{i}" for i in range(lo, hi + 1)]
    else:
        users = a.users.split(",")
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        sys.exit("maildir_watch: inotify_init1 failed")
    wds = {}
    for u in users:
        for sub, folder in FOLDERS.items():
            d = os.path.join(LAB, "mail", u, "Maildir", sub)
            if not os.path.isdir(d):
                sys.exit(f"maildir_watch: {d} does not exist (log in to {u} once first)")
            wd = libc.inotify_add_watch(fd, d.encode(), IN_MOVED_TO | IN_CREATE)
            if wd < 0:
                sys.exit(f"maildir_watch: cannot watch {d}")
            wds[wd] = (u, folder, d)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    out = open(a.out, "a", buffering=1)
    print(f"maildir_watch: watching {len(wds)} folders", flush=True)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not stop:
        try:
            if not poller.poll(200):
                continue
        except InterruptedError:
            continue
        try:
            data = os.read(fd, 1 << 20)
        except BlockingIOError:
            continue
        at = time.time()
        i = 0
        while i < len(data):
            wd, mask, _cookie, length = struct.unpack_from("iIII", data, i)
            name = data[i + 16:i + 16 + length].rstrip(b"\0").decode()
            i += 16 + length
            m = NAME.match(name)
            if wd not in wds or not m:
                continue
            user, folder, d = wds[wd]
            path = os.path.join(d, name)
            mid = message_id(path)
            if mid is None:
                moved = find_moved(os.path.dirname(d), name.split(":")[0])
                mid = message_id(moved) if moved else None
            out.write(json.dumps({
                "user": user, "folder": folder, "file": name,
                "stored": int(m.group(1)) + int(m.group(2)) / 1e6,
                "event_at": at, "message_id": mid,
            }) + "\n")
    out.close()


if __name__ == "__main__":
    main()
