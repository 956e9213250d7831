"""Persistence: SQLModel tables, sessions, the audit chain, directory queries."""
