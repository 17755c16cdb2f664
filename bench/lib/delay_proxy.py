#!/usr/bin/env python3
"""A TCP relay that holds each new connection for --delay seconds before connecting it to
--upstream: a submission server that answers late, so a probe leaves (and lands) late in the
round. Loopback only; stops on SIGTERM.

    delay_proxy.py --listen 127.0.0.1:19587 --upstream 127.0.0.2:587 --delay 40
"""
import argparse
import asyncio
import signal


async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except ConnectionError:
        pass
    finally:
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay", type=float, required=True)
    a = ap.parse_args()
    lh, lp = a.listen.rsplit(":", 1)
    uh, up = a.upstream.rsplit(":", 1)
    if not (lh.startswith("127.") and uh.startswith("127.")):
        raise SystemExit("delay_proxy: loopback addresses only")

    async def handle(cr, cw):
        await asyncio.sleep(a.delay)
        sr, sw = await asyncio.open_connection(uh, int(up))
        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

    server = await asyncio.start_server(handle, lh, int(lp))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print(f"delay_proxy: listening on {a.listen}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
