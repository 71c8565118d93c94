"""A small OpenAI-compatible chat-completions server for tests: it records every request
(path, headers, JSON body) and answers what the test set, in a thread of the test process.

``with fake_llm() as llm:`` gives its base URL (``llm.base_url``, ending in ``/v1``); set
``llm.reply`` to the text the model says, or ``llm.status`` / ``llm.raw`` / ``llm.delay`` /
``llm.location`` for the ways an endpoint fails.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opendms.means import LlmEndpoint


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body["messages"])

    @property
    def prompt(self) -> str:
        return "\n".join(m["content"] for m in self.messages)


@dataclass
class FakeLlm:
    base_url: str = ""
    reply: str = "SELECT 1"
    status: int = 200
    raw: bytes | None = None  # answered as is instead of a completion
    delay: float = 0.0
    location: str = ""  # with a 3xx status: where it points
    received: list[Received] = field(default_factory=list)

    def endpoint(self, key: str = "", model: str = "test-model", **kw: Any) -> LlmEndpoint:
        return LlmEndpoint(self.base_url, model, key, **kw)

    @property
    def last(self) -> Received:
        assert self.received, "the fake model was never asked"
        return self.received[-1]


def _handler(fake: FakeLlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"{}")
            fake.received.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if fake.delay:
                time.sleep(fake.delay)
            if fake.raw is not None:
                payload = fake.raw
            else:
                payload = json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": fake.reply},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
            try:
                self.send_response(fake.status)
                if fake.location:
                    self.send_header("Location", fake.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

    return Handler


@contextmanager
def fake_llm() -> Iterator[FakeLlm]:
    fake = FakeLlm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
