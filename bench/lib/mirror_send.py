#!/usr/bin/env python3
"""Sends COUNT plain "good"-route-like messages to one lab seed at once (one SMTP session per
message, in parallel threads, like mailcanary's sends), for the bare IDLE client to watch.
Prints one JSON line per message: {"message_id": ..., "start": ..., "accepted": ...}.

    mirror_send.py --to seed23@seed.test --count 6 [--delay 0.25]
"""
import argparse
import json
import os
import smtplib
import ssl
import threading
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate

LAB = os.environ.get("MAILCANARY_LAB_DIR", "/var/lib/mailcanary-lab")
TEXT = ("Hello,\n\nHere is your weekly account summary. Nothing needs your attention this week:\n"
        "your settings are unchanged and your last sign-in was from a known device.\n\nThank you,\n"
        "The Operations Team\n")


def send(to, password, ctx, out, lock):
    msg = EmailMessage()
    msg["From"] = "mailcanary bench <probe@sender.test>"
    msg["To"] = to
    msg["Subject"] = "Weekly account summary"
    msg["Date"] = formatdate()
    mid = f"<bench.{uuid.uuid4().hex}@sender.test>"
    msg["Message-ID"] = mid
    msg.set_content(TEXT)
    start = time.time()
    with smtplib.SMTP("127.0.0.2", 587, local_hostname="bench.sender.test", timeout=30) as s:
        s.starttls(context=ctx)
        s.login("submit", password)
        s.send_message(msg)
        accepted = time.time()
    with lock:
        out.append({"message_id": mid, "start": start, "accepted": accepted})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--to", required=True)
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to wait first")
    a = ap.parse_args()
    local = a.to.split("@")[0]
    if not local.startswith("seed") or int(local[4:]) < 21:
        raise SystemExit(f"mirror_send: refusing {a.to}: benchmarks use seed21 and above only")
    with open(f"{LAB}/secrets/submit-password") as f:
        password = f.read().strip()
    ctx = ssl.create_default_context(cafile=f"{LAB}/ca/ca.pem")
    ctx.check_hostname = False  # the lab certificate names mail.sender.test, we dial an IP
    time.sleep(a.delay)
    out, lock = [], threading.Lock()
    threads = [threading.Thread(target=send, args=(a.to, password, ctx, out, lock))
               for _ in range(a.count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in out:
        print(json.dumps(o))


if __name__ == "__main__":
    main()
