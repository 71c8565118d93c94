"""SQL analysis on sqlglot ASTs. Nothing here opens a connection."""
