"""Prechecks: what a ticket is checked against before it may be submitted for approval."""
