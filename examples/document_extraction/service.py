"""A small extraction service for the example: `POST /extract {name, text}` -> `{fields}`.

Start it with `python -m examples.document_extraction.service --port 8765 --fail-first 2`:
the first N requests get `503 Service Unavailable`, as an overloaded service would answer, so
the workflow's retries show. It uses only the standard library and listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATTERNS = {
    "invoice_number": r"invoice\s*(?:no\.?|number|#)\s*[:#]?\s*([A-Z0-9-]+)",
    "total": r"total\s*(?:due)?\s*[:=]?\s*\$?\s*([0-9][0-9,]*\.?[0-9]*)",
    "vendor": r"from\s*[:]\s*(.+)",
    "date": r"date\s*[:]\s*([0-9]{4}-[0-9]{2}-[0-9]{2})",
}


def extract(text: str) -> dict[str, Any]:
    """Invoice fields found in `text` (regular expressions stand in for a model)."""
    fields: dict[str, Any] = {}
    for name, pattern in _PATTERNS.items():
        match = re.search(pattern, text, flags=re.I | re.M)
        if match:
            value = match.group(1).strip()
            fields[name] = float(value.replace(",", "")) if name == "total" else value
    return fields


class ExtractionServer(ThreadingHTTPServer):
    """The HTTP server; `requests` counts what it received, `fail_first` how many get 503."""

    def __init__(self, port: int = 0, fail_first: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fail_first = fail_first
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: ExtractionServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with self.server.lock:
            self.server.requests += 1
            overloaded = self.server.requests <= self.server.fail_first
        if self.path != "/extract":
            self._reply(404, {"error": f"no route {self.path}; POST /extract"})
        elif overloaded:
            self._reply(503, {"error": "overloaded, try again"})
        else:
            self._reply(200, {"name": body.get("name"), "fields": extract(body.get("text", ""))})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"extraction service: {format % args}", flush=True)


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fail-first", type=int, default=0, help="answer 503 this many times")
    args = parser.parse_args()
    server = ExtractionServer(args.port, args.fail_first)
    print(f"extraction service on {server.url} (first {args.fail_first} requests fail)")
    server.serve_forever()


if __name__ == "__main__":
    main()
