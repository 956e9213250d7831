"""The console's string table: every key once, every text in Chinese and English, every key a
template asks for defined."""
from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import importlib
import pkgutil

import api.console
from api.console.i18n import CHANNEL_NAMES, LEVEL_NAMES, STATE_NAMES, STRINGS

for _module in pkgutil.iter_modules(api.console.__path__):  # pages that add their strings (duty, contacts, lists…)
    importlib.import_module(f"api.console.{_module.name}")

I18N = Path(__file__).resolve().parents[2] / "api" / "console" / "i18n.py"
TEMPLATES = I18N.parent / "templates"


def test_no_key_is_defined_twice():
    """In i18n.py and in every page module's additions (`STRINGS.update`: duty.py, contacts.py, i18n_lists.py…).
    A dict literal keeps the last of two equal keys: one page would show another page's text
    (the incident's "approved" once read "sign off and seal the case file")."""
    keys: Counter = Counter()
    sources = {I18N, *I18N.parent.glob("i18n_*.py"),
               *(f for f in I18N.parent.glob("*.py") if "STRINGS.update" in f.read_text(encoding="utf-8"))}
    for source in sorted(sources):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Dict) and len(node.keys) > 20:  # the string tables, not small literals
                keys.update(k.value for k in node.keys if isinstance(k, ast.Constant))
    assert not [k for k, n in keys.items() if n > 1], [k for k, n in keys.items() if n > 1]


def test_every_text_has_chinese_and_english():
    for key, (zh, en) in STRINGS.items():
        assert zh.strip() and en.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key == "language", f"{key}: no Chinese in {zh!r}"


def test_every_literal_key_the_templates_use_is_defined():
    used = set()
    for f in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*['"]([a-z0-9_]+)['"]\s*\)""", f.read_text(encoding="utf-8")))
    known = set(STRINGS) | set(STATE_NAMES) | set(LEVEL_NAMES) | set(CHANNEL_NAMES)
    assert used and not sorted(used - known), sorted(used - known)  # t() would show the bare key
