"""A webhook receiver on 127.0.0.1 for the channel and serving tests: it verifies signatures,
sends each decision once (by idempotency key) and can fail requests on demand."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

SECRET = "s3cret-signing-key"


class Receiver:
    """A sender's endpoint: verifies signatures, sends each decision once (by idempotency key),
    and can be told to fail the next requests with a status after (or before) processing."""

    def __init__(self) -> None:
        self.requests = 0
        self.bad_signatures = 0
        self.sent: Counter[str] = Counter()  # idempotency key -> times actually sent
        self.seen_batches: set[str] = set()
        self.fail_next: list[int] = []  # statuses for the next requests (processed first)
        self.lock = threading.Lock()

    def handle(self, body: bytes, headers: Any) -> int:
        with self.lock:
            self.requests += 1
            want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, headers.get("X-Signature", "")):
                self.bad_signatures += 1
                return 401
            doc = json.loads(body)
            assert headers["Idempotency-Key"] == doc["batch_key"]
            for d in doc["decisions"]:
                if d["idempotency_key"] not in self.sent:  # a repeated key is not sent again
                    self.sent[d["idempotency_key"]] += 1
            self.seen_batches.add(doc["batch_key"])
            return self.fail_next.pop(0) if self.fail_next else 200


@contextmanager
def http_receiver(handle: Callable[[bytes, Any], int]) -> Iterator[str]:
    """A POST endpoint on 127.0.0.1: ``handle(body, headers)`` answers with a status. Yields the
    server's base URL (``http://127.0.0.1:PORT``); the server stops when the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = handle(body, self.headers)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with http_receiver(lambda body, headers: rec.handle(body, headers)) as url:  # looked up per call
        yield rec, f"{url}/send"
