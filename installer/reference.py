"""The answer file's JSON Schema and its Markdown reference, both from the model."""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from installer.answers import AnswerFile

REFERENCE_START = (
    "<!-- answers-reference:start (generated: codequal-installer answers reference) -->"
)
REFERENCE_END = "<!-- answers-reference:end -->"


def answers_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the answer file."""
    schema = AnswerFile.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def answers_schema_text() -> str:
    return json.dumps(answers_schema(), indent=2, sort_keys=False) + "\n"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(names) + " (optional)"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel):
            return ""
    else:
        value = info.default
    if value is PydanticUndefined:
        return ""
    return f"`{json.dumps(value)}`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        description = (info.description or "").replace("|", "\\|")
        rows.append(
            f"| `{path}` | {_type_name(info.annotation)} | {_default(info)} | {description} |"
        )
        # A section, or an optional one (``alerting.email``): its keys follow.
        for annotation in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                rows.extend(_rows(annotation, f"{path}."))
    return rows


def answers_reference_markdown() -> str:
    """The README's answer-file reference table."""
    lines = [
        "| key | type | default | description |",
        "|---|---|---|---|",
        *_rows(AnswerFile, ""),
    ]
    return "\n".join(lines) + "\n"
