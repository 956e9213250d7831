"""Pydantic schemas of every definition kind. Pure data: safe to import in workflows."""
