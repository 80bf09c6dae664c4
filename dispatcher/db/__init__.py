"""Persistence: tables, sessions, and the repositories that turn rows into domain objects."""
