"""Catalog: registered instances, their databases, tables, columns, indexes and owners."""
