#!/usr/bin/env python3
"""Minimal Alertmanager webhook receiver: prints one line per alert to stdout.

Used by the `webhook` service of docker-compose.yml so that the stack shows its
notifications without any external service. Listens on $WEBHOOK_LISTEN
(default 127.0.0.1:5001). Standard library only.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        for alert in payload.get("alerts", []):
            labels = alert.get("labels", {})
            print(
                json.dumps(
                    {
                        "status": alert.get("status"),
                        "alertname": labels.get("alertname"),
                        "severity": labels.get("severity"),
                        "route": labels.get("route"),
                        "seed": labels.get("seed"),
                        "summary": alert.get("annotations", {}).get("summary"),
                        "description": alert.get("annotations", {}).get("description"),
                    },
                    sort_keys=True,
                ),
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, format, *args):
        # One line per alert above is the output; skip the access log.
        pass


def main():
    host, _, port = os.environ.get("WEBHOOK_LISTEN", "127.0.0.1:5001").rpartition(":")
    server = HTTPServer((host, int(port)), Handler)
    print(f"webhook-echo listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
