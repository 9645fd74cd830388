"""Shop: a plain stdlib HTTP service, as a team writes one before it meets pytest-predeploy.

Its own metric names (shop_hits_total by verb/handler/code), an OpenAPI file beside it, no
/routes, the port as --port and nothing written anywhere. It reads the release it runs from the
release-manifest.json its deployment puts beside it.
"""

import argparse
import json
import re
import signal
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MANIFEST = Path("release-manifest.json")
RELEASE = json.loads(MANIFEST.read_text())["release"] if MANIFEST.exists() else "dev"
ITEMS = {"1": {"id": "1", "name": "kettle"}, "2": {"id": "2", "name": "teapot"}}
HITS: Counter = Counter()
LOCK = threading.Lock()


def route(path):
    if path == "/items":
        return "/items", list(ITEMS.values())
    match = re.fullmatch(r"/items/([^/]+)", path)
    if match:
        return "/items/{item_id}", ITEMS.get(match.group(1))
    return None, None


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/metrics":
            with LOCK:
                lines = ["# TYPE shop_hits_total counter"] + [
                    f'shop_hits_total{{verb="{v}",handler="{h}",code="{c}"}} {n}' for (v, h, c), n in sorted(HITS.items())
                ]
            return self.send(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")
        if path == "/health":
            return self.send(200, b'{"ok": true}', "application/json")
        if path == "/version":
            return self.send(200, json.dumps({"release": RELEASE}).encode(), "application/json")
        handler, body = route(path)
        status = 200 if body is not None else 404
        with LOCK:
            HITS[("GET", handler or "unmatched", str(status))] += 1
        self.send(status, json.dumps(body if body is not None else {"error": "not found"}).encode(), "application/json")

    def send(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
