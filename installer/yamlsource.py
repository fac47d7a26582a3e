"""Reading YAML documents while keeping where each key and value stood.

Operators edit answer files by hand, so every problem is reported at its line and column.
ruamel.yaml's round-trip loader records positions; this module loads a document once,
keeps the position tree, and hands plain Python data to the models.

Answer and secrets files come from pipelines, tickets and colleagues: they are untrusted
input, and every limit below is reported at the line and column where it was reached.

- Only regular files are read. A named pipe, a device, a socket or a directory is refused
  before a byte is read (the file is opened non-blocking and checked with ``fstat``, so a
  pipe with no writer cannot hold the installer).
- At most :data:`MAX_DOCUMENT_BYTES` bytes, UTF-8, no NUL.
- Aliases (``*name``) are allowed, but a document may hold at most :data:`MAX_NODES`
  values once every alias is expanded (each key, scalar, list and mapping counts one; an
  alias counts as everything the node it names holds). The count is kept while the
  document is composed, so nine levels of nine aliases (the "billion laughs") stop at
  the alias that crosses the limit, after a few thousand steps, instead of expanding.
  An alias inside the node it names (a cycle) is refused.
- At most :data:`MAX_DEPTH` levels of nesting, also counted through aliases.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from installer.errors import AnswerFileError

MAX_DOCUMENT_BYTES = 256 * 1024  # answer files are a few KiB; the pure-Python parser needs ~0.4 s
MAX_NODES = 5_000  # values with every alias expanded; answer files hold ~100, releases ~300
MAX_DEPTH = 100  # levels of nesting, through aliases too


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
    if depth > MAX_DEPTH:  # the composer stops such documents first; this guards other callers
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


class DocumentLimitReached(Exception):
    """A document crossed :data:`MAX_NODES` or :data:`MAX_DEPTH`, or holds an alias cycle."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line  # 1-based
        self.column = column  # 1-based


def _bounded_composer(max_nodes: int, max_depth: int) -> type[Any]:
    """A ruamel Composer that counts the expanded size of the document while composing it.

    ruamel composes an alias as the node it names (shared, not copied), so parsing stays
    linear; what explodes is every walk over the result afterwards. Each node composed
    counts one; an alias counts the expanded size and height of its node, known once that
    node is finished (an alias met while its node is still open is a cycle).
    """
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent

    class BoundedComposer(Composer):
        def __init__(self, loader: Any = None) -> None:
            super().__init__(loader)
            self._reset()

        def _reset(self) -> None:
            self.expanded = 0  # values so far, aliases expanded
            self.level = 0  # nodes enclosing the one being composed
            self.reach = 0  # deepest level reached, aliases expanded
            self.sizes: dict[Any, tuple[int, int] | None] = {}  # anchor -> (size, height)

        def compose_document(self) -> Any:
            self._reset()
            return super().compose_document()

        def _count(self, event: Any, size: int, height: int) -> None:
            self.expanded += size
            self.reach = max(self.reach, self.level + height)
            if self.expanded > max_nodes:
                what = "with its aliases expanded, the document" if size > 1 else "the document"
                raise _limit(event, f"{what} holds more than {max_nodes} values (the limit)")
            if self.level + height > max_depth:
                raise _limit(event, f"the document is nested deeper than {max_depth} levels")

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                if event.anchor in self.sizes:
                    known = self.sizes[event.anchor]
                    if known is None:
                        raise _limit(event, f"alias *{event.anchor} is inside the node it names")
                    self._count(event, *known)
                return super().compose_node(parent, index)  # ruamel reports undefined aliases
            self._count(event, 1, 1)
            anchor = event.anchor
            expanded, reach, level = self.expanded, self.reach, self.level
            if anchor is not None:
                self.sizes[anchor] = None
                self.reach = level + 1
            self.level += 1
            node = super().compose_node(parent, index)
            self.level -= 1
            if anchor is not None:
                self.sizes[anchor] = (self.expanded - expanded + 1, self.reach - level)
                self.reach = max(reach, self.reach)
            return node

    return BoundedComposer


def _bounded_scanner(max_depth: int) -> type[Any]:
    """A ruamel Scanner that stops at the ``[`` or ``{`` opening level ``max_depth + 1``.

    The composer would stop there too, but the scanner runs ahead of it: every open flow
    level keeps a possible simple key that each later token re-examines, so a line of
    50,000 ``[`` costs seconds before the composer sees the first node.
    """
    from ruamel.yaml.scanner import RoundTripScanner

    class BoundedScanner(RoundTripScanner):
        def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
            if len(self.flow_context) >= max_depth:
                reader = self.reader
                raise DocumentLimitReached(
                    f"the document is nested deeper than {max_depth} levels",
                    reader.line + 1,
                    reader.column + 1,
                )
            super().fetch_flow_collection_start(TokenClass, to_push)

    return BoundedScanner


def _limit(event: Any, message: str) -> DocumentLimitReached:
    mark = event.start_mark
    return DocumentLimitReached(message, mark.line + 1, mark.column + 1)


def parse_yaml(
    text: str, source: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH
) -> YamlDocument:
    """Parse one YAML document; any YAML problem becomes an :class:`AnswerFileError`.

    Error lines never quote the document's text: a secrets file must not leak into a
    message, so only the problem, its position and (for duplicates) the key are said.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    yaml.Scanner = _bounded_scanner(max_depth)
    yaml.Composer = _bounded_composer(max_nodes, max_depth)
    try:
        tree = yaml.load(io.StringIO(text))
    except DocumentLimitReached as e:
        _fail(source, e.message, e.line, e.column)
    except DuplicateKeyError as e:
        match = _DUPLICATE.search(str(e.problem or ""))
        key = match.group("key") if match else "?"
        mark = e.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        _fail(source, f"duplicate key {key!r}: each key may appear once", line, col)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = (e.problem or e.context or "malformed YAML").strip()
        _fail(source, f"not valid YAML: {what}", line, col)
    except (YAMLError, ValueError, TypeError, RecursionError) as e:
        _fail(source, f"not valid YAML: {type(e).__name__}")
    try:
        return YamlDocument(source, tree)
    except RecursionError:
        _fail(source, "the document is nested too deeply")


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str | None:
    """What a file that is not a regular file is (``None`` for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of ``path``, which must be a regular file.

    ``stat`` refuses a pipe, a device or a directory without opening it; the file is then
    opened non-blocking and checked again with ``fstat`` (it may have been swapped in
    between), so nothing here can wait on a pipe's writer. Raises :class:`OSError`, or
    :class:`IsADirectoryError` / :class:`NotRegularFile` for the wrong kind of file.
    """
    kind = _not_regular(os.stat(path).st_mode)
    if kind is not None:
        raise NotRegularFile(kind)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        kind = _not_regular(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFile(kind)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class NotRegularFile(OSError):
    """The path names a pipe, a device, a socket or a directory."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def position_of(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    return position_of(data[:offset].decode("utf-8", errors="replace"), offset)


def read_yaml(path: str, *, what: str = "answer file") -> YamlDocument:
    """Read and parse ``path`` (``-`` for standard input) as one YAML mapping.

    Only a regular file (or standard input, ``-``) is read; see the module text for the
    limits and how they are reported.
    """
    import sys

    source = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read(MAX_DOCUMENT_BYTES + 1)
        else:
            data = read_regular_file(path, MAX_DOCUMENT_BYTES)
            if len(data) > MAX_DOCUMENT_BYTES:
                line, col = _byte_position(data, MAX_DOCUMENT_BYTES)
                _fail(source, _too_large(what), line, col)
            text = data.decode("utf-8")
    except FileNotFoundError:
        _fail(source, f"the {what} does not exist")
    except NotRegularFile as e:
        _fail(source, f"the {what} is {e.kind}, not a regular file")
    except IsADirectoryError:
        _fail(source, f"the {what} is a directory, not a regular file")
    except PermissionError:
        _fail(source, f"the {what} cannot be read (permission denied)")
    except UnicodeDecodeError as e:
        offset = e.start if isinstance(e.object, bytes) else 0
        line, col = _byte_position(e.object, offset) if isinstance(e.object, bytes) else (1, 1)
        _fail(source, f"the {what} is not UTF-8 text", line, col)
    except OSError as e:
        _fail(source, f"the {what} cannot be read: {e.strerror or type(e).__name__}")
    if len(text) > MAX_DOCUMENT_BYTES:
        _fail(source, _too_large(what), *position_of(text, MAX_DOCUMENT_BYTES))
    if "\x00" in text:
        _fail(
            source,
            f"the {what} is not text (it holds NUL bytes)",
            *position_of(text, text.index("\x00")),
        )
    document = parse_yaml(text, source)
    if document.data is None:
        _fail(source, f"the {what} is empty; start from `codequal-installer answers example`")
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        kind = {"list": "a list", "str": "a single string", "int": "a number"}.get(kind, kind)
        _fail(source, f"the {what} must be a mapping of keys to values, not {kind}")
    return document


def _too_large(what: str) -> str:
    return f"the {what} is larger than {MAX_DOCUMENT_BYTES // 1024} KiB; reading stopped here"


def _fail(source: str, message: str, line: int = 1, column: int = 1) -> NoReturn:
    problem = Problem(source, line, column, "", message)
    raise AnswerFileError(str(problem), problems=[str(problem)]) from None
