"""Code and docs name the README's or a doc's section by its words (`README, "Changing a workflow safely"`,
`docs/performance.md "Fewer, larger shards"`): each such name must begin a heading or a bold paragraph lead of that
file (a mere mention elsewhere does not count: the README mentions sections of docs/performance.md). The performance
sections moved from the README to docs/performance.md on 8 Dec 2026, and two dozen comments named them where they
were."""
from __future__ import annotations

import os
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
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP)  # (the virtual environment is not walked)
        for name in sorted(files):
            path = Path(folder, name)
            if path.suffix in (".py", ".md", ".yml", ".toml"):
                for m in REFERENCE.finditer(path.read_text(errors="replace")):
                    found.append((str(path.relative_to(ROOT)), m.group(1), words(m.group(2))))
    return found


def begins_a_section(text: str, name: str) -> bool:
    """Whether `name` begins a heading (`## name…`) or a bold lead (`**name…`) of `text`; its spaces may be line
    breaks there."""
    words_of = r"\s+".join(re.escape(w) for w in name.split())
    return re.search(rf"^(?:#+ +|\*\*){words_of}", text, re.M) is not None


def test_every_section_named_begins_a_section_of_its_document():
    refs = references()
    assert len(refs) > 20  # the pattern still finds them
    missing = []
    for where, doc, name in refs:
        path = ROOT / ("README.md" if doc == "README" else doc)
        if not (path.exists() and begins_a_section(path.read_text(), name)):
            missing.append(f"{where}: {doc} {name!r}")
    assert not missing, "sections named but not begun in their document:\n" + "\n".join(missing)


def test_a_mention_is_not_a_section():
    text = "## Performance\n\nAs docs/performance.md, \"Fewer, larger shards\" says.\n**The lookup,\nnot the locks** (6 Dec)"
    assert begins_a_section(text, "Performance") and begins_a_section(text, "The lookup, not the locks")
    assert not begins_a_section(text, "Fewer, larger shards")
