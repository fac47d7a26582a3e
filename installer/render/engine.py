"""The Jinja2 environment: created once per process, templates compiled on first use.

jinja2 is imported here and only here, when the first file is rendered, so commands that
render nothing never pay for it.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.render.escape import (
    compose_string,
    dotenv_value,
    label_value,
    nginx_string,
    yaml_string,
)

if TYPE_CHECKING:
    from jinja2 import Environment
    from jinja2.bccache import BytecodeCache

TEMPLATES_PACKAGE = "templates"
_environment: Environment | None = None

# Text a YAML block scalar carries as itself: printable ASCII and newlines, no trailing
# spaces on a line.
_BLOCK_SAFE = re.compile(r"[\x20-\x7e\n]*")
_TRAILING_SPACE = re.compile(r" $", re.MULTILINE)


def yaml_block(text: str, indent: int) -> str:
    """``text`` as a YAML literal block scalar indented by ``indent`` spaces.

    Falls back to a quoted scalar when the text has characters a block cannot hold
    literally, or leading spaces on its first line (which would need an indentation
    indicator), so the YAML always reads back as exactly ``text``.
    """
    if (
        not text.strip("\n")  # a block of empty lines reads back as ""
        or text[0] == " "
        or not _BLOCK_SAFE.fullmatch(text)
        or _TRAILING_SPACE.search(text)
    ):
        return yaml_string(text)
    chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else "-"
    if text.endswith("\n\n"):
        return yaml_string(text)
    body = text[:-1] if text.endswith("\n") else text
    pad = " " * indent
    return "|" + chomp + "\n" + "\n".join(pad + line if line else "" for line in body.split("\n"))


_PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")


# Plain words that YAML 1.1 (Kubernetes, Compose) reads as booleans or null.
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _key(key: object) -> str:
    text = str(key)
    if _PLAIN_KEY.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return yaml_string(text)


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return yaml_string(value)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for plain data (dicts, lists, scalars), every string quoted.

    For the data-shaped parts of manifests (rules, selectors, environment lists), which
    read better built in Python than spelled out in template loops. The result starts on
    a new line and is indented by ``indent``; empty collections are written in flow form.
    """
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return " {}"
        lines = []
        for key, item in value.items():
            lines.append(f"{pad}{_key(key)}:{to_yaml(item, indent + 2)}")
        return "\n" + "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return " []"
        lines = []
        for item in value:
            if isinstance(item, dict) and item:
                inner = to_yaml(item, indent + 2).lstrip("\n")
                lines.append(f"{pad}- {inner[indent + 2 :]}")
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-{to_yaml(item, indent + 2)}")
            else:
                lines.append(f"{pad}-{to_yaml(item, indent + 2)}")
        return "\n" + "\n".join(lines)
    return " " + _scalar(value)


def _cpus(value: float) -> str:
    return f"{value:.1f}"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _bytecode_cache() -> BytecodeCache | None:
    """Compiled templates kept beside the templates, as Python keeps ``__pycache__``.

    Compiling the templates costs several times more than rendering them; the cache makes
    every run after the first pay only for rendering. Entries are keyed by each template's
    checksum, so an edited template is compiled afresh. Where the installation is
    read-only, or Python is told not to write bytecode, nothing is written.
    """
    from importlib.resources import files

    from jinja2.bccache import Bucket, FileSystemBytecodeCache

    class QuietBytecodeCache(FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: Bucket) -> None:
            if sys.dont_write_bytecode:  # PYTHONDONTWRITEBYTECODE: read, never write
                return
            # A read-only installation: the next run compiles again.
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    package = files(TEMPLATES_PACKAGE)
    if not isinstance(package, Path):
        return None
    directory = package / "__pycache__"
    try:
        directory.mkdir(exist_ok=True)
    except OSError:
        if not directory.is_dir():
            return None
    return QuietBytecodeCache(str(directory), "%s.jinja")


def environment() -> Environment:
    """The process-wide Jinja2 environment (StrictUndefined, no HTML autoescape)."""
    global _environment  # noqa: PLW0603 - one environment per process, made on first use
    if _environment is None:
        from jinja2 import Environment, PackageLoader, StrictUndefined

        env = Environment(
            loader=PackageLoader(TEMPLATES_PACKAGE, "."),
            undefined=StrictUndefined,
            autoescape=False,  # noqa: S701 - no HTML here; each format has its own filter
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            bytecode_cache=_bytecode_cache(),
        )
        env.filters.update(
            yaml=yaml_string,
            compose=compose_string,
            dotenv=dotenv_value,
            nginx=nginx_string,
            label=label_value,
            block=yaml_block,
            cpus=_cpus,
            tojson_sorted=_json,
            toyaml=to_yaml,
        )
        _environment = env
    return _environment


def render(template: str, **context: Any) -> str:
    """Render one template by its path under ``templates/``."""
    return environment().get_template(template).render(**context)
