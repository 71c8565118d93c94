"""The export's pipe: what is written reaches the file in order, and a failure of the
thread writing it comes back to the writer."""

from __future__ import annotations

import io
import threading

from opendms.exports.pipe import BLOCK, Pipe


def test_what_is_written_arrives_whole_and_in_order() -> None:
    out = io.BytesIO()
    pieces = [b"%d," % i for i in range(300_000)]
    with Pipe(out) as pipe:
        for piece in pieces:
            pipe.write(piece)
    assert out.getvalue() == b"".join(pieces)


class _Broken(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        raise RuntimeError("the compressor gave up")  # not an OSError: any failure at all


def test_any_failure_of_the_writing_thread_is_raised_to_the_writer() -> None:
    """A failure the thread did not catch ended it, and the writer then waited for ever on
    a full queue."""
    raised: list[BaseException] = []

    def write() -> None:
        try:
            with Pipe(_Broken()) as pipe:
                for _ in range(64):  # more blocks than the queue holds
                    pipe.write(b"x" * BLOCK)
        except RuntimeError as exc:
            raised.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(10)
    assert not writer.is_alive(), "the writer hung"
    assert [str(e) for e in raised] == ["the compressor gave up"]
