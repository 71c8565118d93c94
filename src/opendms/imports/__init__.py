"""Data imports (DC_BIG_FILE): a ticket's file read (``files``), its columns matched to the
table's (``columns``) and written into its database in batches (``run``).

``run.py`` is the job side, as in every service package: what the ``execute`` job's
``file`` walk (``execution.run_import``) calls, a stretch at a time. The request side has
no ``service.py`` here: filing the ticket is its kind's (``kinds.data_import``), checking
the file is the precheck's (``precheck.imports``), and both read the import's options
through ``options``.
"""
