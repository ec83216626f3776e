"""Reading spec files: TOML or YAML → a plain tree plus the position of every key.

YAML is read with PyYAML's safe loader through our own node walk, which
* rejects duplicate keys (PyYAML would silently keep the last one),
* supports merge keys (``<<: *base``, or a list of bases): keys written in the mapping win
  over merged ones, and an earlier base wins over a later one, as YAML's merge type says,
* rejects more than one document, and bounds alias expansion (no "billion laughs"),
* counts nodes and depth while composing, so an oversized or deeply nested document stops
  early, in bounded time and memory, with a located error,
* records which values were YAML 1.1 booleans written as words (``on``/``off``/``yes``/``no``),
  so that a boolean landing where a string belongs gets the hint "quote it".
Both formats reject values JSON cannot carry (dates, times, NaN, infinity) and documents
nested deeper than :data:`MAX_DEPTH` (a clean error, never a ``RecursionError``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .issues import KeyPath, SpecIssue
from .toml_positions import Positions, toml_positions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_YAML_NODES = 100_000
"""Upper bound on YAML nodes visited (aliases included): a guard against alias bombs."""

MAX_YAML_SOURCE_NODES = 10_000
"""Upper bound on YAML nodes written in the file, counted while composing (a spec needs a
few hundred): a large document stops after its first 10,000 nodes, in about a second."""
MAX_SPEC_BYTES = 1024 * 1024
"""Spec files larger than this are refused before parsing."""
MAX_DEPTH = 64
"""Deepest nesting of tables, mappings and lists a spec may use (specs need about 6)."""
_MERGE_TAG = "tag:yaml.org,2002:merge"

_YAML11_BOOL_WORDS = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")


@dataclass(slots=True)
class Document:
    """A parsed spec file: the tree, where each key path is, and hazards noticed."""

    path: str
    format: str  # "toml" | "yaml"
    data: dict[str, Any]
    positions: Positions = field(default_factory=dict)
    yaml_bool_words: dict[KeyPath, str] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> tuple[int | None, int | None]:
        """Position of ``path``, or of its nearest located ancestor."""
        for depth in range(len(path), -1, -1):
            found = self.positions.get(path[:depth])
            if found is not None:
                return found
        return None, None

    def issue(self, path: KeyPath, message: str, hint: str | None = None) -> SpecIssue:
        """A SpecIssue located in this file."""
        line, column = self.locate(path)
        return SpecIssue(message, path, self.path, line, column, None, hint)


class ParseError(Exception):
    """The file could not be read or parsed; ``issue`` says where and why."""

    def __init__(self, issue: SpecIssue) -> None:
        super().__init__(issue.format())
        self.issue = issue


def spec_format(path: str | Path) -> str:
    """``toml`` or ``yaml`` from the file name (``.toml``, ``.yaml``, ``.yml``)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        return "toml"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ParseError(SpecIssue(f"unknown spec file type {suffix or '(none)'!r}", (), str(path), hint="use .toml, .yaml or .yml"))


def read_document(path: str | Path, text: str | None = None) -> Document:
    """Reads and parses one spec file. Raises :class:`ParseError` on unreadable input."""
    name = str(path)
    fmt = spec_format(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ParseError(SpecIssue("file not found", (), name)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ParseError(SpecIssue(f"cannot read file: {exc}", (), name)) from None
    if len(text) > MAX_SPEC_BYTES:
        raise ParseError(SpecIssue(f"the file is too large for a spec ({len(text)} characters; the limit is {MAX_SPEC_BYTES})", (), name))
    doc = _parse_toml(name, text) if fmt == "toml" else _parse_yaml(name, text)
    _check_depth(doc)
    _reject_non_json(doc, doc.data, ())
    return doc


def _too_deep(name: str, line: int | None = None, column: int | None = None) -> ParseError:
    return ParseError(SpecIssue(f"the document is nested more than {MAX_DEPTH} levels deep", (), name, line, column, hint="flatten the structure"))


def _check_depth(doc: Document) -> None:
    """Refuses trees deeper than MAX_DEPTH (iteratively: the later passes recurse)."""
    stack: list[tuple[Any, int]] = [(doc.data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(doc.path)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


# -- TOML -------------------------------------------------------------------------------

_TOML_AT = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)\s*$", re.DOTALL)


def _parse_toml(name: str, text: str) -> Document:
    try:
        data = tomllib.loads(text)
    except RecursionError:  # tomllib recurses per nested array or inline table
        raise _too_deep(name) from None
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_AT.match(str(exc))
        if match:
            raise ParseError(SpecIssue(f"invalid TOML: {match['msg']}", (), name, int(match["line"]), int(match["col"]))) from None
        raise ParseError(SpecIssue(f"invalid TOML: {exc}", (), name)) from None
    return Document(name, "toml", data, toml_positions(text))


# -- YAML -------------------------------------------------------------------------------


def _parse_yaml(name: str, text: str) -> Document:
    import yaml

    doc = Document(name, "yaml", {})
    try:
        loader = _new_loader(text, name)
    except yaml.YAMLError as exc:  # the reader refuses control characters up front
        raise ParseError(SpecIssue(f"invalid YAML: {exc}".replace("\n", " "), (), name)) from None
    try:
        try:
            node = loader.get_single_node()
        except yaml.composer.ComposerError as exc:
            if "expected a single document" in str(exc):
                mark = exc.problem_mark
                line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
                raise ParseError(SpecIssue("a spec file holds exactly one YAML document", (), name, line, col, hint="remove the extra '---' document")) from None
            raise
        if node is None:
            data: Any = {}
        else:
            walker = _YamlWalker(loader, doc)
            data = walker.build(node, (), 1)
    except RecursionError:  # a safety net: depth is bounded while composing
        raise _too_deep(name) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "syntax error"
        raise ParseError(SpecIssue(f"invalid YAML: {problem}", (), name, line, col)) from None
    except yaml.YAMLError as exc:
        raise ParseError(SpecIssue(f"invalid YAML: {exc}", (), name)) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ParseError(SpecIssue(f"the top level must be a mapping (got {_kind(data)})", (), name, 1, 1))
    doc.data = data
    return doc


def _make_bounded_loader() -> Any:
    import yaml

    class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML is untyped
        """PyYAML's safe loader, counting nodes and depth as it composes: a 9 MB document
        stops at the node cap instead of being composed whole first. (libyaml's faster
        parser is not used: its messages differ from the ones the spec corpus documents.)"""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.composed = 0
            self.depth = 0
            self.spec_name = str(self.name)

        def compose_node(self, parent: Any, index: Any) -> Any:
            self.composed += 1
            self.depth += 1
            try:
                if self.composed > MAX_YAML_SOURCE_NODES or self.depth > MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    what = f"more than {MAX_YAML_SOURCE_NODES} nodes" if self.composed > MAX_YAML_SOURCE_NODES else f"nested more than {MAX_DEPTH} levels deep"
                    raise ParseError(SpecIssue(f"the document is too large: {what}", (), self.spec_name, mark.line + 1, mark.column + 1, hint="a spec needs far fewer; split or flatten it"))
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


_LOADER: Any = None


def _new_loader(text: str, name: str) -> Any:
    """A bounded loader for ``text`` (its class is made on first use: PyYAML is imported lazily)."""
    global _LOADER
    if _LOADER is None:
        _LOADER = _make_bounded_loader()
    loader = _LOADER(text)
    loader.spec_name = name
    return loader


class _YamlWalker:
    def __init__(self, loader: Any, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.visited = 0

    def build(self, node: Any, path: KeyPath, depth: int) -> Any:
        import yaml

        self.visited += 1
        if self.visited > MAX_YAML_NODES or depth > MAX_DEPTH:
            line, column = self.doc.locate(path)
            if depth > MAX_DEPTH:
                raise _too_deep(self.doc.path, line, column)
            raise ParseError(SpecIssue(f"document too large: more than {MAX_YAML_NODES} nodes after alias expansion", (), self.doc.path, line, column, hint="avoid nesting aliases (*name) many levels deep"))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.doc.positions[path + (index,)] = (item.start_mark.line + 1, item.start_mark.column + 1)
                items.append(self.build(item, path + (index,), depth + 1))
            return items
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, bool) and node.style is None and _YAML11_BOOL_WORDS.match(node.value):
            self.doc.yaml_bool_words[path] = node.value
        return value

    def _mapping(self, node: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        """A mapping: its own keys (no duplicates), then what ``<<`` merges for keys it lacks."""
        import yaml

        merged: dict[str, Any] = {}
        own = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
                continue
            bases = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for base in bases:
                if not isinstance(base, yaml.MappingNode):
                    where = (base.start_mark.line + 1, base.start_mark.column + 1)
                    raise ParseError(SpecIssue("a merge key (<<) takes a mapping or a list of mappings", path, self.doc.path, *where, hint="merge an anchored mapping: <<: *base"))
                for key, value in self._mapping(base, path, depth).items():
                    merged.setdefault(key, value)  # an earlier base wins
        out: dict[str, Any] = {}
        for key_node, value_node in own:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = self._non_string_key(key, key_node, path)
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                first = self.doc.positions.get(path + (key,))
                seen = f" (first at line {first[0]})" if first else ""
                raise ParseError(SpecIssue(f"duplicate key {key!r}{seen}", path + (key,), self.doc.path, *where, hint="keep one of them"))
            self.doc.positions[path + (key,)] = where
            out[key] = self.build(value_node, path + (key,), depth + 1)
        for key, value in merged.items():
            out.setdefault(key, value)  # keys written in the mapping win
        return out

    def _non_string_key(self, key: Any, key_node: Any, path: KeyPath) -> str:
        where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if isinstance(key, bool) and _YAML11_BOOL_WORDS.match(str(key_node.value)):
            hint = f"YAML 1.1 reads {key_node.value!r} as a boolean; quote it: '{key_node.value}'"
        else:
            hint = "quote the key"
        raise ParseError(SpecIssue(f"keys must be strings (got {_kind(key)} {key_node.value!r})", path, self.doc.path, *where, hint=hint))


# -- shared -----------------------------------------------------------------------------


def _kind(value: Any) -> str:
    return type(value).__name__


def _reject_non_json(doc: Document, value: Any, path: KeyPath) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_non_json(doc, item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_non_json(doc, item, path + (index,))
    elif isinstance(value, (_dt.date, _dt.time, _dt.datetime)):
        raise ParseError(doc.issue(path, f"dates and times are not spec values (got {value.isoformat()})", "quote it to make it a string"))
    elif isinstance(value, float) and not math.isfinite(value):
        raise ParseError(doc.issue(path, f"{value} is not a spec value", "use a finite number"))
    elif isinstance(value, (bytes, set)):
        raise ParseError(doc.issue(path, f"{_kind(value)} values are not spec values"))
