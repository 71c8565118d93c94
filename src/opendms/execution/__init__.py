"""Running approved data changes on their databases, and what that did."""
