"""Identity: tenants, users, roles, access keys, RAM-style policies."""
