"""Running approved data changes on their databases, and what that did.

As in every service package, ``service.py`` is the request side (ExecuteDataCorrect and the
other calls, in the caller's transaction: checking a plan, queueing the ``execute`` job,
pausing, reading SQL jobs) and ``run.py`` the job executor (what a runner does with that job,
a step at a time, outside any request). The executor's step reads its work (``unit``), walks
it the way the ticket's kind says (``run_statements``, ``run_chunks``, ``run_import``) and
writes what happened to the store (``recording``). Below them: ``backups`` (a statement with
its backup), ``chunked`` and ``walk`` (a chunked statement's stride over its key ranges),
``cleanup`` (DC_CRON_CLEAR's schedule and runs) and ``files`` (the downloads a ticket's
execution leaves).
"""
