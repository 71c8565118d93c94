"""Table definitions: what a table is made of (``model``), as a database reports it. Structure
sync compares two databases' definitions, a schema design's later stages are held to the
definitions its base stage reached, and the DDL review rules read them."""
