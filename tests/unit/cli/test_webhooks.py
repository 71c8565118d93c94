"""``opendms webhook``: set, ping, log and disable, against a receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from opendms.identity.secrets import SecretBox, load_master_key
from opendms.notify import webhooks
from tests.cli_support import result_is_one_line_error
from tests.unit.cli.site import Site, as_json, row_of


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/events", got
    server.shutdown()
    server.server_close()


def test_webhook_set_ping_log_and_disable(
    site: Site, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    assert result_is_one_line_error(site.run("webhook", "ping", ok=False), "no enabled webhook")
    assert "no webhook" in site.run("webhook", "log").stdout
    assert result_is_one_line_error(site.run("webhook", "disable", ok=False), "has no webhook")
    assert result_is_one_line_error(
        site.run("webhook", "set", "ftp://example.com/x", ok=False), "InvalidParameter"
    )
    assert result_is_one_line_error(
        site.run("webhook", "set", url, "--secret", "short", ok=False), "at least 16"
    )

    chosen = as_json(site.run("webhook", "set", url, "--secret", "a" * 20))
    assert chosen == {"Url": url, "Secret": "a" * 20}
    made = as_json(site.run("webhook", "set", url))
    assert set(made) == {"Url", "Secret"} and made["Url"] == url
    secret = made["Secret"]
    assert len(secret) >= 32 and secret != "a" * 20
    for f in site.data_dir.iterdir():  # shown once, never on disk in clear
        if f.is_file():
            assert secret.encode() not in f.read_bytes()

    queued = site.run("webhook", "ping").stdout
    found = re.search(r"Delivery (\d+) queued", queued)
    assert found is not None
    delivery_id = found.group(1)
    pending = row_of(site.run("webhook", "log").stdout, delivery_id)
    assert "webhook.ping" in pending and "pending" in pending

    # what a server process would do: deliver with the data directory's master key
    st = site.store()
    try:
        box = SecretBox(load_master_key(None, site.data_dir))
        assert asyncio.run(webhooks.Deliverer(st, box).run_once()) == 1
    finally:
        st.dispose()
    ((headers, body),) = got
    assert headers["X-OpenDMS-Event"] == "webhook.ping"
    assert headers["X-OpenDMS-Delivery"] == delivery_id
    mac = hmac.new(
        secret.encode(), headers["X-OpenDMS-Timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["X-OpenDMS-Signature"] == "sha256=" + mac.hexdigest()
    ping = json.loads(body)
    assert set(ping) == {"event", "delivery_id", "tenant_id", "occurred_at"}
    assert (ping["event"], ping["delivery_id"], ping["tenant_id"]) == (
        "webhook.ping",
        int(delivery_id),
        site.tid,
    )

    log = site.run("webhook", "log").stdout
    assert url in log and "(disabled)" not in log
    delivered = row_of(log, delivery_id)
    assert "delivered" in delivered and "200" in delivered

    # ticket events are queued too
    site.dba_only()
    order_id = site.file()
    site.as_("carl", "order", "submit", str(order_id))
    site.as_("dora", "order", "approve", str(order_id))
    log = site.run("webhook", "log").stdout
    assert "order.submitted" in log and "order.approved" in log
    newest = site.run("webhook", "log", "--limit", "1").stdout
    assert "order.approved" in newest and "order.submitted" not in newest

    assert "Webhook disabled" in site.run("webhook", "disable").stdout
    assert "(disabled)" in site.run("webhook", "log").stdout
    assert result_is_one_line_error(site.run("webhook", "ping", ok=False), "no enabled webhook")
