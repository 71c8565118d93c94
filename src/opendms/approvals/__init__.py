"""Approval workflows: nodes, templates, (later) rule sets and the approval flow."""
