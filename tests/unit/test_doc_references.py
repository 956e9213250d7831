"""Code and docs name the README's or a doc's section by its words (`README, "Changing a workflow safely"`,
`docs/performance.md "Fewer, larger shards"`): each such name must be found in that file. The performance sections
moved from the README to docs/performance.md on 8 Dec 2026, and two dozen comments named them where they were."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r'(README|docs/[\w.-]+\.md)[,:]?\s+"([^"]{3,120})"')
SKIP = {".venv", ".git", "__pycache__", ".yingji", "node_modules", "fixtures"}


def words(text: str) -> str:
    """Text with its line breaks (and a comment's `#` after them) as single spaces."""
    return " ".join(re.sub(r"\n\s*(#\s*)?", " ", text).split())


def references() -> list[tuple[str, str, str]]:
    """(file, document, name) of every section named in the repository's code and docs."""
    found = []
    for path in sorted(ROOT.rglob("*")):
        if path.suffix not in (".py", ".md", ".yml", ".toml") or SKIP & set(path.relative_to(ROOT).parts):
            continue
        for m in REFERENCE.finditer(path.read_text(errors="replace")):
            found.append((str(path.relative_to(ROOT)), m.group(1), words(m.group(2))))
    return found


def test_every_section_named_is_in_its_document():
    refs = references()
    assert len(refs) > 20  # the pattern still finds them
    texts: dict[str, str | None] = {}
    missing = []
    for where, doc, name in refs:
        path = ROOT / ("README.md" if doc == "README" else doc)
        if doc not in texts:
            texts[doc] = words(path.read_text()) if path.exists() else None
        if texts[doc] is None or name not in texts[doc]:
            missing.append(f"{where}: {doc} {name!r}")
    assert not missing, "sections named but not found in their document:\n" + "\n".join(missing)
