"""Jiaoying (叫应): warning dispatch and call-out service."""

__version__ = "0.1.0"
