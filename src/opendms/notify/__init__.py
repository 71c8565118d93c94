"""Notifications of ticket events to the outside."""
