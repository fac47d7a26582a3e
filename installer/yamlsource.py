"""Reading YAML documents while keeping where each key and value stood.

Operators edit answer files by hand, so every problem is reported at its line and column.
ruamel.yaml's round-trip loader records positions; this module loads a document once,
keeps the position tree, and hands plain Python data to the models.
"""

from __future__ import annotations

import io
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer.errors import AnswerFileError

MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, where it is and what to do about it."""

    source: str
    line: int  # 1-based
    column: int  # 1-based
    path: str  # dotted key path, "" for the document itself
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}:{self.line}:{self.column}: {where}{self.message}"


def format_path(loc: Sequence[Hashable]) -> str:
    """``("providers", 1)`` -> ``providers[1]``; ``("tls", "mode")`` -> ``tls.mode``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class YamlDocument:
    """A parsed YAML document: plain data for validation, positions for reporting."""

    def __init__(self, source: str, tree: Any) -> None:
        self.source = source
        self._tree = tree
        self.data: Any = _plain(tree)

    def position(self, loc: Sequence[Hashable], *, of_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``loc``.

        With ``of_key`` the position of the key itself (for unknown keys). A path that
        does not exist (a missing key) resolves to the deepest existing parent.
        """
        node = self._tree
        line, col = _node_start(node)
        for index, part in enumerate(loc):
            last = index == len(loc) - 1
            lc = getattr(node, "lc", None)
            if isinstance(node, dict) and lc is not None:
                key = _find_key(node, part)
                if key is _MISSING:
                    break
                line, col = lc.key(key) if (of_key and last) else lc.value(key)
                node = node[key]
            elif isinstance(node, list) and lc is not None and isinstance(part, int):
                if not 0 <= part < len(node):
                    break
                line, col = lc.item(part)
                node = node[part]
            else:
                break
        return line + 1, col + 1


_MISSING = object()


def _find_key(node: dict[Any, Any], part: Hashable) -> Any:
    if part in node:
        return part
    for key in node:  # keys that YAML typed (1, true) but the path spells as text
        if str(key) == str(part):
            return key
    return _MISSING


def _node_start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        return int(lc.line), int(lc.col)
    return 0, 0


def _plain(node: Any, depth: int = 0) -> Any:
    """ruamel's round-trip types, turned into the plain types pydantic expects."""
    if depth > 100:
        raise RecursionError
    if isinstance(node, dict):
        return {_plain_key(k): _plain(v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v, depth + 1) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _plain_key(key: Any) -> Any:
    if isinstance(key, (bool, int, float, str)) or key is None:
        return _plain(key)
    return str(key)


_DUPLICATE = re.compile(r'found duplicate key "(?P<key>.*?)" with value')


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse one YAML document; any YAML problem becomes an :class:`AnswerFileError`.

    Error lines never quote the document's text: a secrets file must not leak into a
    message, so only the problem, its position and (for duplicates) the key are said.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(io.StringIO(text))
    except DuplicateKeyError as e:
        match = _DUPLICATE.search(str(e.problem or ""))
        key = match.group("key") if match else "?"
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = Problem(source, line, col, "", f"duplicate key {key!r}: each key may appear once")
        raise AnswerFileError(str(problem), problems=[str(problem)]) from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = (e.problem or e.context or "malformed YAML").strip()
        problem = Problem(source, line, col, "", f"not valid YAML: {what}")
        raise AnswerFileError(str(problem), problems=[str(problem)]) from None
    except (YAMLError, ValueError, TypeError, RecursionError) as e:
        problem = Problem(source, 1, 1, "", f"not valid YAML: {type(e).__name__}")
        raise AnswerFileError(str(problem), problems=[str(problem)]) from None
    try:
        return YamlDocument(source, tree)
    except RecursionError:
        problem = Problem(source, 1, 1, "", "the document is nested too deeply")
        raise AnswerFileError(str(problem), problems=[str(problem)]) from None


def read_yaml(path: str, *, what: str = "answer file") -> YamlDocument:
    """Read and parse ``path`` (``-`` for standard input) as one YAML mapping."""
    import sys

    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read(MAX_DOCUMENT_BYTES + 1)
        else:
            with Path(path).open("r", encoding="utf-8") as handle:
                text = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        _fail(source, f"the {what} does not exist")
    except IsADirectoryError:
        _fail(source, f"the {what} is a directory, not a file")
    except PermissionError:
        _fail(source, f"the {what} cannot be read (permission denied)")
    except UnicodeDecodeError:
        _fail(source, f"the {what} is not UTF-8 text")
    except OSError as e:
        _fail(source, f"the {what} cannot be read: {e.strerror or type(e).__name__}")
    if len(text) > MAX_DOCUMENT_BYTES:
        _fail(source, f"the {what} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB")
    if "\x00" in text:
        _fail(source, f"the {what} is not text (it holds NUL bytes)")
    document = parse_yaml(text, source)
    if document.data is None:
        _fail(source, f"the {what} is empty; start from `codequal-installer answers example`")
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        kind = {"list": "a list", "str": "a single string", "int": "a number"}.get(kind, kind)
        _fail(source, f"the {what} must be a mapping of keys to values, not {kind}")
    return document


def _fail(source: str, message: str) -> Any:
    problem = Problem(source, 1, 1, "", message)
    raise AnswerFileError(str(problem), problems=[str(problem)])
