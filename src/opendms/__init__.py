"""OpenDMS: database change tickets, wire-compatible with Alibaba Cloud DMS Enterprise."""

__version__ = "0.1.0"
