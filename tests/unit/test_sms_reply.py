"""What an SMS reply says: an acknowledgement or not, and which call-out's code it carries."""
from __future__ import annotations

import pytest

from api.services.answers import parse_reply


@pytest.mark.parametrize("body, ack, code", [
    ("1", True, None),
    ("收到", True, None),
    (" 收到。", True, None),
    ("OK", True, None),
    ("4321", True, "4321"),
    ("1 4321", True, "4321"),  # not code 1432
    ("4321 1", True, "4321"),
    ("收到 4321", True, "4321"),
    ("收到4321", True, "4321"),
    ("4321收到", True, "4321"),
    ("1,4321", True, "4321"),
    ("12345", False, None),  # five digits are no code
    ("不方便", False, None),
    ("2", False, None),
    ("4321 不行", False, "4321"),
    ("", False, None),
])
def test_parse_reply(body, ack, code):
    assert parse_reply(body) == (ack, code)
