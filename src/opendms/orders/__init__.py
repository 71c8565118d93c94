"""Tickets: intake, visibility, search and closing."""
