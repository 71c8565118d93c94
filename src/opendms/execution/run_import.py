"""A step of an ``execute`` job over a data import (the ``file`` walk): a stretch of batches
(``imports.run``) for about ``Tuning.import_step_seconds``, then the progress recorded, with
the records skipped (IgnoreError) named in the logs. The runner's next step goes on from the
position the target holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from opendms.execution import recording
from opendms.execution.chunked import ChunkState, Progress
from opendms.execution.unit import Done, Unit
from opendms.files.storage import FileStore
from opendms.imports.options import import_options
from opendms.imports.run import MAX_LOGGED, Importer, ImportFailed, source_of
from opendms.jobs.runner import Checkpoint, Step, Work
from opendms.store.models import utcnow
from opendms.targets.base import Change
from opendms.tickets.registry import params_of


def import_stretch(
    work: Work,
    unit: Unit,
    change: Change,
    checkpoint: Checkpoint,
    files: FileStore,
    importer: Importer,
    step_seconds: float,
    another: Callable[[], AbstractContextManager[Change]] | None = None,
) -> Step:
    """A stretch of a data import (imports.run): batches for about ``step_seconds``, then
    the progress recorded; the runner's next step goes on from the target's marker.
    ``another`` lends a second session, for writing two blocks at a time."""
    detail = unit.pending[0]
    try:
        with work.store.session() as s:
            options = import_options(params_of(unit.order))
            src = source_of(s, files, options, unit.order.order_id, unit.db, unit.engine)
    except ImportFailed as exc:
        return recording.fail(work, unit, detail, exc.message, checkpoint)
    progress = Progress.load(detail.progress)
    progress.estimate = src.estimate
    started = utcnow()
    began = time.monotonic()
    until = time.monotonic() + step_seconds
    done = importer.stretch(src, change, unit.key(detail), until, another)
    rows_before, progress.rows = progress.rows, done.position.rows
    progress.chunks += done.batches
    progress.busy_ms += int(done.busy_seconds * 1000)
    progress.wall_ms += int((time.monotonic() - began) * 1000)
    progress.state = ChunkState.DONE if done.finished else ChunkState.RUNNING
    notes = [f"line {line} skipped: {why}" for line, why in done.skipped[:MAX_LOGGED]]
    if len(done.skipped) > MAX_LOGGED:
        notes.append(f"and {len(done.skipped) - MAX_LOGGED} more lines skipped")
    milestone = progress.milestone(rows_before)
    note = "; ".join(filter(None, [*notes, milestone])) or None
    recording.record_progress(work, unit, detail, progress, note)
    if done.failure is not None:
        return recording.fail(work, unit, detail, done.failure, checkpoint)
    if done.finished:
        rows, skipped = done.position.rows, done.position.skipped
        # its time is the clock's: two blocks written at once count twice in busy_ms
        recording.record(work, unit, [(detail, Done(rows, started, progress.wall_ms))])
        if skipped:
            recording.log_note(work, detail, f"{skipped} records skipped (IgnoreError)")
        return Step({}, done=recording.finish_sql_job(work, unit))
    return Step({})
