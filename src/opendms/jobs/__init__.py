"""Background work for tickets: the embedded runner (and, later, the Celery one)."""
