"""Procedures as data: pydantic schemas, a validating loader, the YAML library.

Workflows import only the schema models (they are pure data); the loader is used by
the API, the worker's activities and the CLI.
"""
