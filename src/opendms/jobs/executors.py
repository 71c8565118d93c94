"""Job kind -> executor: every kind of background work a runner can do."""

from __future__ import annotations

from opendms.execution.cleanup import RECLAIM, SCHEDULE, Reclaim, Schedule
from opendms.execution.run import Execute
from opendms.exports.run import Export
from opendms.exports.service import EXPORT
from opendms.files.run import Upload
from opendms.files.service import UPLOAD
from opendms.jobs.means import Means
from opendms.jobs.runner import Executor
from opendms.precheck.run import Precheck


def executors(means: Means) -> dict[str, Executor]:
    return {
        "precheck": Precheck(means),
        "execute": Execute(means),
        SCHEDULE: Schedule(),
        RECLAIM: Reclaim(means),
        EXPORT: Export(means),
        UPLOAD: Upload(means),
    }
