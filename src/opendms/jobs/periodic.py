"""Work done every few seconds on a thread of its own (the sweeper, the heartbeat): a store
that is down or busy costs that round one warning line, and the next round tries again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from opendms.jobs.runner import STORE_DOWN, trouble

log = logging.getLogger("opendms.jobs")


class Periodic:
    """``work`` every ``every`` seconds (and at once, with ``at_start``) until stopped."""

    def __init__(
        self, what: str, every: float, work: Callable[[], object], *, at_start: bool = False
    ) -> None:
        self.what, self.every, self.work, self.at_start = what, every, work, at_start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"opendms-{what}", daemon=True)

    def _once(self) -> None:
        try:
            self.work()
        except STORE_DOWN as exc:
            log.warning("%s failed (%s); will retry", self.what, trouble(exc))

    def _run(self) -> None:
        if self.at_start:
            self._once()
        while not self._stop.wait(self.every):
            self._once()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
