"""The rules a tenant keeps: approval and review rule sets, and the approval templates
they name. Below both approvals and precheck, which read them."""
