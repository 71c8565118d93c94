"""Uploaded files: content-addressed storage, URL fetch jobs, signed download links."""
