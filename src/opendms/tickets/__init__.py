"""Tickets: intake and the reads every kind shares (``service``), the parameter building
blocks (``params``), what a kind is (``kind``), where the kinds are found (``registry``),
and DMS cron expressions (``cron``)."""
