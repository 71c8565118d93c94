"""A file-like sink that hands what is written to a thread of its own, in blocks of about a
megabyte: compressing the export's zip then overlaps reading the result (igzip and the CRC
release the GIL on large blocks), and the many small writes of a row-by-row writer cost one
append each."""

from __future__ import annotations

import io
import queue
import threading
from types import TracebackType
from typing import IO

BLOCK = 1 << 20
_DONE = b""


class Pipe(io.RawIOBase):
    def __init__(self, out: IO[bytes], depth: int = 8) -> None:
        super().__init__()
        self.out = out
        self.buffer = bytearray()
        self.blocks: queue.Queue[bytes] = queue.Queue(depth)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._drain, name="opendms-export-pipe")
        self.thread.start()

    def _drain(self) -> None:
        while (block := self.blocks.get()) is not _DONE:
            if self.failure is None:
                # Any failure is the writer's to raise: one that ended this thread would
                # leave the writer waiting for ever on a full queue.
                try:
                    self.out.write(block)
                except Exception as exc:  # noqa: BLE001
                    self.failure = exc

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._check()
        self.buffer += data
        if len(self.buffer) >= BLOCK:
            self.blocks.put(bytes(self.buffer))
            self.buffer.clear()
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self.buffer:
                self.blocks.put(bytes(self.buffer))
                self.buffer.clear()
        finally:
            self.blocks.put(_DONE)
            self.thread.join()
            super().close()
        self._check()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.buffer.clear()  # what is left is not worth writing
        self.close()
