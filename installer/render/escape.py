"""Escaping operator values for the file formats they land in.

The answer model already rejects most hostile values (a ``domain`` must be a host name,
paths must be absolute, URLs must look like URLs). These functions are the second wall:
every value a template writes goes through the escaper of its format, so even a value
that slipped past validation stays one value and cannot add a key, a directive or a
variable. Each escaper either produces a literal that the consuming tool reads back as
exactly the input, or raises :class:`RenderError` when the format has no safe spelling.
"""

from __future__ import annotations

import json
import re

from installer.errors import ExitCode, InstallerError

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RenderError(InstallerError):
    """A value cannot be written safely into a generated file, or an input file is unusable.

    An input problem (exit 2): nothing was changed outside the state directory.
    """

    exit_code = ExitCode.USAGE


# Characters YAML cannot carry literally in a double-quoted scalar, or reads as line breaks
# (NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR in YAML 1.1), or strips (a byte-order mark).
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def yaml_string(value: object) -> str:
    """A YAML double-quoted scalar that reads back as ``str(value)``.

    JSON string syntax is a subset of YAML's double-quoted style. Characters outside the
    ASCII range stay literal (YAML's ``\\u`` escape cannot pair surrogates), except those
    YAML does not allow or reads as line breaks, which become ``\\uXXXX`` escapes.
    """
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def compose_string(value: object) -> str:
    """A YAML string for a Compose file: ``$`` doubled so Compose does not interpolate it."""
    return yaml_string(str(value).replace("$", "$$"))


def dotenv_value(value: object) -> str:
    """A value for Compose's ``.env`` file that reads back unchanged.

    Single quotes are literal (no escapes, no interpolation), so they are used whenever the
    value has no single quote and no line break. Otherwise double quotes, where backslash,
    double quote and dollar are escaped and line breaks are written as ``\\n``.
    """
    text = str(value)
    if "\x00" in text:
        raise RenderError("a value for the .env file contains a NUL byte")
    if "'" not in text and not _CONTROL.search(text) and "\n" not in text and "\r" not in text:
        return f"'{text}'"
    if _CONTROL.search(text.replace("\n", "").replace("\r", "").replace("\t", "")):
        raise RenderError("a value for the .env file contains a control character")
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def nginx_string(value: object) -> str:
    """A double-quoted nginx parameter that is one token, whatever the value.

    nginx expands ``$name`` inside quoted strings and has no escape for ``$``, so a value
    holding one (or a control character) is refused rather than quoted.
    """
    text = str(value)
    if "$" in text or _CONTROL.search(text) or "\n" in text or "\r" in text or "\t" in text:
        raise RenderError("a value for the nginx configuration contains '$' or a control character")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def label_value(value: object) -> str:
    """A Kubernetes label value (63 characters of ``[A-Za-z0-9_.-]``), quoted for YAML."""
    text = str(value)
    if len(text) > 63 or not _LABEL_VALUE.match(text):
        raise RenderError(f"{text!r} cannot be a Kubernetes label value")
    return yaml_string(text)
