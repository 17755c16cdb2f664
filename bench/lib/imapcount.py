#!/usr/bin/env python3
"""A TLS-terminating IMAP proxy that counts the commands clients send, per login user and per
command name. It presents the lab's own server certificate (so a client that trusts the lab CA
connects to it unchanged) and forwards everything to the lab's Dovecot over TLS.

    imapcount.py --listen 127.0.0.1:19993 --out counts.json

On SIGTERM/SIGINT it writes {"users": {user: {"UID SEARCH": n, ...}}, "connections": n,
"bytes_to_client": n, "bytes_to_server": n} to --out and exits. Loopback only.
"""
import argparse
import asyncio
import collections
import json
import os
import re
import signal
import ssl

LAB = os.environ.get("MAILCANARY_LAB_DIR", "/var/lib/mailcanary-lab")
LITERAL = re.compile(rb"\{(\d+)\+?\}$")

counts = collections.defaultdict(collections.Counter)
totals = collections.Counter()


class ClientSide:
    """Splits the client's stream into command lines, skipping literals (RFC 3501 §4.3)."""

    def __init__(self):
        self.buf = b""
        self.skip = 0
        self.user = "?"

    def feed(self, data):
        self.buf += data
        while True:
            if self.skip:
                n = min(self.skip, len(self.buf))
                self.buf = self.buf[n:]
                self.skip -= n
                if self.skip:
                    return
            i = self.buf.find(b"\r\n")
            if i < 0:
                return
            line, self.buf = self.buf[:i], self.buf[i + 2:]
            m = LITERAL.search(line)
            if m:
                self.skip = int(m.group(1))
            self.command(line)

    def command(self, line):
        words = line.split()
        if not words:
            return
        if words[0].upper() == b"DONE":
            name = "DONE"
        elif len(words) >= 2:
            name = words[1].decode("ascii", "replace").upper()
            if name == "UID" and len(words) >= 3:
                name = "UID " + words[2].decode("ascii", "replace").upper()
            if name == "LOGIN" and len(words) >= 3:
                self.user = words[2].decode("ascii", "replace").strip('"')
        else:
            return  # a continuation line of a literal-bearing command
        counts[self.user][name] += 1


async def pump(reader, writer, side, key):
    try:
        while data := await reader.read(65536):
            totals[key] += len(data)
            if side:
                side.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def handler(upstream, up_ctx):
    host, port = upstream

    async def handle(creader, cwriter):
        totals["connections"] += 1
        try:
            sreader, swriter = await asyncio.open_connection(host, port, ssl=up_ctx,
                                                             server_hostname=host)
        except OSError:
            cwriter.close()
            return
        side = ClientSide()
        await asyncio.gather(pump(creader, swriter, side, "bytes_to_server"),
                             pump(sreader, cwriter, None, "bytes_to_client"))
    return handle


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:19993")
    ap.add_argument("--upstream", default="127.0.0.3:993")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    lhost, lport = a.listen.rsplit(":", 1)
    uhost, uport = a.upstream.rsplit(":", 1)
    for h in (lhost, uhost):
        if not h.startswith("127."):
            raise SystemExit("imapcount: loopback addresses only")
    srv_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    srv_ctx.load_cert_chain(f"{LAB}/tls/server.pem", f"{LAB}/tls/server.key")
    up_ctx = ssl.create_default_context(cafile=f"{LAB}/ca/ca.pem")
    server = await asyncio.start_server(handler((uhost, int(uport)), up_ctx), lhost, int(lport),
                                        ssl=srv_ctx, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print(f"imapcount: listening on {a.listen}", flush=True)
    async with server:
        await stop.wait()
    with open(a.out, "w") as f:
        json.dump({"users": {u: dict(c) for u, c in counts.items()},
                   "connections": totals["connections"],
                   "bytes_to_client": totals["bytes_to_client"],
                   "bytes_to_server": totals["bytes_to_server"]}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    asyncio.run(main())
