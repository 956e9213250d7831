"""YAML with line numbers: turn a pydantic error location into `file:line`."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


@dataclass
class SourceError:
    file: str
    line: int | None
    path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top)'}: {self.reason}"


MAX_NODES = 100_000  # nodes after expanding aliases: a definition has a few hundred


def _graph_problem(root: yaml.Node) -> yaml.MarkedYAMLError | None:
    """A cycle (an alias inside the node it names) or an alias bomb, before anything walks the data."""
    on_path: set[int] = set()
    count = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            continue
        if id(node) in on_path:
            return yaml.MarkedYAMLError(problem="an alias refers to a node that contains it (a cycle); "
                                                "write the content out instead", problem_mark=node.start_mark)
        count += 1
        if count > MAX_NODES:
            return yaml.MarkedYAMLError(problem=f"aliases expand to more than {MAX_NODES:,} nodes",
                                        problem_mark=node.start_mark)
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        stack.extend((k, False) for k in kids)
    return None


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: ~5x faster, the same marks
    """SafeLoader whose impossible dates (2031-13-01) are YAML errors with their line, not a bare ValueError."""

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a valid date or time ({exc})",
                                                    node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


class YamlDocument:
    """A parsed YAML document that remembers where every node came from."""

    def __init__(self, text: str, file: str):
        self.file = file
        loader = _Loader(text)
        try:
            try:
                self.node = loader.get_single_node()
            except RecursionError:  # the pure-Python parser
                raise yaml.MarkedYAMLError(problem="nested too deeply") from None
            except yaml.MarkedYAMLError as exc:  # libyaml's words for the same
                if "nesting depth" not in str(exc.problem):
                    raise
                raise yaml.MarkedYAMLError(problem="nested too deeply", problem_mark=exc.problem_mark) from None
            if self.node is not None and (problem := _graph_problem(self.node)) is not None:
                raise problem
            self.data: Any = loader.construct_document(self.node) if self.node is not None else None
        finally:
            loader.dispose()

    @classmethod
    def read(cls, path: Path, display: str | None = None) -> "YamlDocument":
        return cls(path.read_text(encoding="utf-8"), display or str(path))

    def line_of(self, loc: Sequence[Any]) -> int | None:
        node = self.node
        line = node.start_mark.line + 1 if node is not None else None
        for key in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = next((v for k, v in node.value if k.value == str(key)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
            else:
                nxt = None
            if nxt is None:
                break
            node, line = nxt, nxt.start_mark.line + 1
        return line

    def errors_from(self, exc: ValidationError, prefix: Sequence[Any] = ()) -> list[SourceError]:
        out = []
        for err in exc.errors():
            loc = [*prefix, *[p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))]]
            msg = err["msg"].removeprefix("Value error, ")
            out.append(SourceError(self.file, self.line_of(loc), format_loc(loc), msg))
        return out


def format_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def yaml_syntax_error(exc: yaml.YAMLError, file: str) -> SourceError:
    mark = getattr(exc, "problem_mark", None)
    return SourceError(file, mark.line + 1 if mark else None, "", f"YAML syntax: {getattr(exc, 'problem', exc)}")
