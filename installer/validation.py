"""Loading answer and secrets files, with every problem reported at its line and column.

``load_answers`` is what ``answers validate``, ``plan``, ``apply`` and the wizard use:
it returns a validated :class:`AnswerFile` or raises :class:`AnswerFileError` holding one
``FILE:LINE:COL: key.path: message`` line per problem, all of them at once.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from installer.answers import SECRET_KEYS, AnswerFile, CrossFieldError
from installer.credentials import (
    LoadedSecrets,
    Secrets,
    build_secrets,
    env_name,
    file_permission_warning,
)
from installer.errors import AnswerFileError
from installer.yamlsource import Problem, YamlDocument, format_path, parse_yaml, read_yaml


def _model_at(model: type[BaseModel], loc: Sequence[Hashable]) -> type[BaseModel] | None:
    """The section model that holds the last key of ``loc`` (for key suggestions)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        current = annotation
    return current


def _closest(word: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_key_message(root: type[BaseModel], loc: Sequence[Hashable]) -> str:
    key = str(loc[-1])
    if root is AnswerFile and len(loc) == 1 and key in SECRET_KEYS:
        return (
            f"{key} is a secret and does not belong in the answer file: put it in the secrets "
            f"file (--secrets) or the {env_name(key)} environment variable"
        )
    holder = _model_at(root, loc)
    if holder is None:
        return f"unknown key {key!r}"
    choices = list(holder.model_fields)
    suggestion = _closest(key, choices)
    if suggestion:
        return f"unknown key {key!r}; did you mean {suggestion!r}?"
    return f"unknown key {key!r}; valid keys here: {', '.join(choices)}"


def problems_from_error(
    error: ValidationError, document: YamlDocument, root: type[BaseModel]
) -> list[Problem]:
    """Every error of ``error`` as a positioned :class:`Problem` (input values never quoted)."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False, include_input=False, include_context=True):
        loc: tuple[Hashable, ...] = tuple(item["loc"])
        kind = item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, CrossFieldError):
            for sub, message in cause.problems:
                full = loc + tuple(sub)
                line, col = document.position(full)
                problems.append(Problem(document.source, line, col, format_path(full), message))
            continue
        if len(loc) > 1 and loc[-1] == "[key]" and kind != "extra_forbidden":
            # a map's key refused by its type (pydantic appends "[key]"); a key literally
            # named "[key]" where none is allowed is an unknown key like any other
            loc = loc[:-1]
            line, col = document.position(loc, of_key=True)
            message = f"{loc[-1]!r} is not a known name here; {item['msg']}"
        elif kind == "extra_forbidden":
            line, col = document.position(loc, of_key=True)
            message = _unknown_key_message(root, loc)
        elif kind == "missing":
            line, col = document.position(loc)
            message = "required key is missing"
        else:
            line, col = document.position(loc)
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if kind == "literal_error":
                value = _value_at(document.data, loc)
                expected = (item.get("ctx") or {}).get("expected", "")
                options = [o.strip(" '") for o in str(expected).replace(" or ", ",").split(",")]
                if isinstance(value, str) and (hint := _closest(value, options)):
                    message += f"; did you mean {hint!r}?"
        problems.append(Problem(document.source, line, col, format_path(loc), message))
    problems.sort(key=lambda p: (p.line, p.column, p.path))
    return problems


def _value_at(data: Any, loc: Sequence[Hashable]) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def validate_answers_document(document: YamlDocument) -> tuple[AnswerFile | None, list[Problem]]:
    """Validate a parsed answer file: the model, or every problem found.

    Rules between sections only run once every field is valid, so a file with a bad
    field would hide its cross-field problems until the next run. To report everything
    at once, the bad keys are set aside (their defaults stand in) and the rest is
    validated again; cross-field problems that concern a key set aside are dropped, since
    that key is already reported.
    """
    try:
        return AnswerFile.model_validate(document.data), []
    except ValidationError as e:
        problems = problems_from_error(e, document, AnswerFile)
        problems += _problems_behind(e, document, problems)
        return None, sorted(problems, key=lambda p: (p.line, p.column, p.path))


def _problems_behind(
    error: ValidationError, document: YamlDocument, reported: list[Problem]
) -> list[Problem]:
    removed = [tuple(item["loc"]) for item in error.errors(include_url=False)]
    if any(len(loc) == 0 or loc[0] in ("version", "target") for loc in removed):
        return []  # without a valid target, rules between sections say nothing useful
    data = copy.deepcopy(document.data)
    for loc in removed:
        _remove(data, loc)
    try:
        AnswerFile.model_validate(data)
    except ValidationError as second:
        seen = {(p.path, p.message) for p in reported}
        set_aside = [format_path(loc) for loc in removed]
        return [
            p
            for p in problems_from_error(second, document, AnswerFile)
            if (p.path, p.message) not in seen
            and not any(p.path.startswith(gone) or gone.startswith(p.path) for gone in set_aside)
        ]
    return []


def _remove(data: Any, loc: Sequence[Hashable]) -> None:
    """Delete the key at ``loc`` (for a list item or an unknown key: its holder's key)."""
    parent = data
    for part in loc[:-1]:
        if isinstance(parent, dict) and part in parent:
            child = parent[part]
        elif isinstance(parent, list) and isinstance(part, int) and 0 <= part < len(parent):
            child = parent[part]
        else:
            return
        if isinstance(child, list) and isinstance(parent, dict):
            del parent[part]  # a bad item: the whole list falls back to its default
            return
        if not isinstance(child, dict):
            return
        parent = child
    last = loc[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)


def _raise_problems(source: str, problems: list[Problem], what: str) -> AnswerFileError:
    count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
    return AnswerFileError(
        f"{source}: the {what} has {count}",
        problems=[str(p) for p in problems],
        hint="fix each line above, then run `codequal-installer answers validate` again",
    )


def load_answers(path: str) -> AnswerFile:
    """Read and validate an answer file (``-`` for standard input)."""
    document = read_yaml(path, what="answer file")
    answers, problems = validate_answers_document(document)
    if answers is None:
        raise _raise_problems(document.source, problems, "answer file")
    return answers


def parse_answers_text(text: str, source: str = "<answers>") -> AnswerFile:
    """Validate answers given as YAML text (the wizard's pre-fill and the tests)."""
    document = parse_yaml(text, source)
    if not isinstance(document.data, dict):
        raise AnswerFileError(f"{source}: the answer file must be a mapping")
    answers, problems = validate_answers_document(document)
    if answers is None:
        raise _raise_problems(source, problems, "answer file")
    return answers


def load_secrets(path: str | None, environ: Mapping[str, str] | None = None) -> LoadedSecrets:
    """Secrets from ``path`` (optional) and the environment; problems never quote values."""
    environ = os.environ if environ is None else environ
    warnings: list[str] = []
    from_file: dict[str, Any] = {}
    document: YamlDocument | None = None
    if path is not None:
        document = read_yaml(path, what="secrets file")
        from_file = document.data
        if path != "-" and (warning := file_permission_warning(Path(path))):
            warnings.append(warning)
    try:
        secrets, origin = build_secrets(from_file, environ)
    except ValidationError as e:
        if document is None:  # only the environment: name the variable, never its value
            names = sorted({env_name(str(err["loc"][0])) for err in e.errors()})
            raise AnswerFileError(
                f"invalid secret in the environment: {', '.join(names)}"
            ) from None
        problems = problems_from_error(e, document, Secrets)
        raise _raise_problems(document.source, problems, "secrets file") from None
    return LoadedSecrets(secrets=secrets, origin=origin, warnings=warnings)
