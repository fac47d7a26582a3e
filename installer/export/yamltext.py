"""YAML text of exported objects: block style, multi-line text as literal blocks."""

from __future__ import annotations

import io
import re
from typing import Any

# Text a literal block carries as itself: printable ASCII and newlines, no trailing spaces,
# no leading space on the first line, at most one final newline.
_BLOCK_SAFE = re.compile(r"[\x20-\x7e\n]*")
_TRAILING_SPACE = re.compile(r" $", re.MULTILINE)
# Plain words that YAML 1.1 (Go's yaml, which kubectl, Helm and Kustomize read with) takes
# for a boolean, null or number, though YAML 1.2 reads them as text: always quoted.
_YAML11_NOT_TEXT = re.compile(
    r"(?i:y|n|yes|no|on|off|true|false|null|~)|[-+]?[0-9][0-9_:.]*|[-+]?\.[0-9_]+|"
    r"[-+]?0[xob][0-9a-f_]+|[-+]?\.(?i:inf|nan)"
)


def _block_safe(text: str) -> bool:
    return (
        "\n" in text.rstrip("\n")
        and not text.startswith(" ")
        and not text.endswith("\n\n")
        and bool(_BLOCK_SAFE.fullmatch(text))
        and not _TRAILING_SPACE.search(text)
    )


def _styled(value: Any) -> Any:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, CommentedMap):  # keep its comments: restyle in place
        for key in value:
            value[key] = _styled(value[key])
        return value
    if isinstance(value, dict):
        return {k: _styled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_styled(v) for v in value]
    if isinstance(value, str) and _block_safe(value):
        return LiteralScalarString(value)
    return value


def _represent_str(representer: Any, data: str) -> Any:
    style = "'" if _YAML11_NOT_TEXT.fullmatch(data) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def dump(value: Any) -> str:
    """``value`` as one YAML document, starting ``---``, keys in their given order."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.representer.add_representer(str, _represent_str)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.allow_unicode = True
    yaml.explicit_start = True
    buffer = io.StringIO()
    yaml.dump(_styled(value), buffer)
    return buffer.getvalue()


def load(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)
