"""The wire layer: HTTP, RPC parameters, both signature schemes, envelopes, the action table."""
