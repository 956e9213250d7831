"""The end-to-end call-out and the reporting chain of tests/e2e, on PostgreSQL.

The same test functions, collected here a second time: this folder's `db_url` is a fresh
PostgreSQL database (tests/production/conftest.py) instead of a SQLite file.
"""
from __future__ import annotations

from tests.e2e.test_callout_api import fast_definitions, test_orange_cap_alert_end_to_end  # noqa: F401
from tests.e2e.test_incident_dev import fast_rules, test_reporting_chain_end_to_end  # noqa: F401
