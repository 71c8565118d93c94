"""A small HTTP/1.1 keep-alive load generator on asyncio: C connections, each sending the next
request as soon as the previous answer is read. Requests come from a callable, so every
request can carry its own signature and nonce (``bench/gateway.py`` hands out requests it
signed before the clock started)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    # Every answer, the warm-up's too: what the server was asked to do in all (row counts).
    answered: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _worker(
    host: str,
    port: int,
    build: Callable[[], bytes],
    stop_at: float,
    record_from: float,
    result: Result,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(build())
            status = await _read_response(reader)
            end = time.perf_counter()
            result.answered[status] = result.answered.get(status, 0) + 1
            if start >= record_from:
                result.latencies.append(end - start)
                result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def run(
    host: str,
    port: int,
    build: Callable[[], bytes],
    *,
    connections: int,
    seconds: float,
    warmup: float,
) -> Result:
    now = time.perf_counter()
    record_from = now + warmup
    stop_at = record_from + seconds
    result = Result(seconds)
    await asyncio.gather(
        *(_worker(host, port, build, stop_at, record_from, result) for _ in range(connections))
    )
    return result
