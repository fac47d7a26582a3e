"""The Jinja2 environment: created once per process, templates compiled on first use.

jinja2 is imported here and only here, when the first file is rendered, so commands that
render nothing never pay for it.
"""

from __future__ import annotations

import contextlib
import io
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
    from ruamel.yaml import YAML

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
_WRAPPER_KEY = "_"
_yaml_emitter: YAML | None = None


class _PlainKey(str):
    """A mapping key written plain: a word no YAML 1.1 or 1.2 reader takes for anything else."""

    __slots__ = ()


def _plain_data(value: Any) -> Any:
    """``value`` with the mapping keys that may stay plain marked (the rest are quoted)."""
    if isinstance(value, dict):
        return {
            (
                _PlainKey(key)
                if _PLAIN_KEY.fullmatch(str(key)) and str(key).lower() not in _YAML_WORDS
                else str(key)
            ): _plain_data(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain_data(item) for item in value]
    return value


def _emitter() -> YAML:
    """ruamel.yaml set up for manifest fragments: block style, every string double-quoted,
    sequences indented under their key, no line folding."""
    global _yaml_emitter  # noqa: PLW0603 - one configured emitter per process
    if _yaml_emitter is None:
        from ruamel.yaml import YAML
        from ruamel.yaml.representer import SafeRepresenter

        class FragmentRepresenter(SafeRepresenter):
            def represent_quoted(self, data: str) -> Any:
                return self.represent_scalar("tag:yaml.org,2002:str", str(data), style='"')

            def represent_plain_key(self, data: str) -> Any:
                return self.represent_scalar("tag:yaml.org,2002:str", str(data))

        FragmentRepresenter.add_representer(str, FragmentRepresenter.represent_quoted)
        FragmentRepresenter.add_representer(_PlainKey, FragmentRepresenter.represent_plain_key)
        emitter = YAML(typ="safe", pure=True)
        emitter.Representer = FragmentRepresenter
        emitter.default_flow_style = False
        emitter.allow_unicode = True
        emitter.width = 2**30  # a long string stays on its line
        emitter.indent(mapping=2, sequence=4, offset=2)
        emitter.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
        _yaml_emitter = emitter
    return _yaml_emitter


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for plain data (dicts, lists, scalars), every string quoted.

    For the data-shaped parts of manifests (rules, selectors, environment lists), which
    read better built in Python than spelled out in template loops: the template writes
    ``key:{{ value | toyaml(indent) }}``. The result is what follows ``key:``: a new line
    and the block indented by ``indent``, or a space and a scalar (empty collections in
    flow form). ruamel.yaml emits it, as the value of a one-key document.
    """
    buffer = io.StringIO()
    _emitter().dump({_PlainKey(_WRAPPER_KEY): _plain_data(value)}, buffer)
    text = buffer.getvalue()
    prefix = _WRAPPER_KEY + ":"
    if not text.startswith(prefix):  # pragma: no cover - ruamel writes the key first
        raise ValueError(f"unexpected YAML for {type(value).__name__}: {text[:40]!r}")
    head, *rest = text[len(prefix) :].rstrip("\n").split("\n")
    pad = " " * indent
    # The emitter indents the value by 2 under the wrapper key: re-indent by ``indent``.
    return "\n".join([head, *(pad + line[2:] for line in rest)])


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
