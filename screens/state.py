"""What the operator has entered so far: a draft of the answer file, and the secrets.

The draft is the answer-file data as a nested dict holding only what was entered or
pre-filled, so that the model's own rules (``domain`` required outside development, for
one) see exactly what an answer file written by hand would say. Every check is the
model's: :meth:`WizardState.validate` runs :class:`~installer.answers.AnswerFile` and
returns its messages keyed by the dotted path of the field they are about.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.credentials import Secrets
    from screens.backend import Detection, PrerequisiteView

_MISSING = object()


def get_path(data: dict[str, Any], path: str, default: Any = None) -> Any:
    """The value at dotted ``path`` in nested ``data``, or ``default``."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set dotted ``path`` in ``data``; ``None`` removes the key (an unset answer)."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if value is None:
                return
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(parts[-1], None)
        _prune(data, parts[:-1])
    else:
        node[parts[-1]] = value


def _prune(data: dict[str, Any], parents: list[str]) -> None:
    """Drop sections left empty by a removal, so the draft says only what was entered."""
    for depth in range(len(parents), 0, -1):
        holder = data
        for part in parents[: depth - 1]:
            holder = holder[part]
        if holder.get(parents[depth - 1]) == {}:
            del holder[parents[depth - 1]]
        else:
            break


@dataclass
class Validation:
    """The model's verdict on the draft: the answers, or its messages by field path."""

    answers: AnswerFile | None
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.answers is not None and not self.problems


@dataclass
class FailureInfo:
    """What the failure screen shows: the failing step, why, and its last log lines."""

    step: str
    message: str
    hint: str | None = None
    log_tail: list[str] = field(default_factory=list)
    rolled_back: bool = False


@dataclass
class WizardState:
    """One wizard session: the draft answers, the secrets typed in, what the engine said."""

    draft: dict[str, Any] = field(default_factory=lambda: {"version": 1})
    secrets: dict[str, str] = field(default_factory=dict)
    # Where a pre-filled answer file came from, and the paths it left missing or invalid.
    prefilled_from: str | None = None
    prefill_problems: dict[str, list[str]] = field(default_factory=dict)
    detection: Detection | None = None
    prerequisites: PrerequisiteView | None = None
    saved_answers: str | None = None
    saved_secrets: str | None = None
    failed_step: str | None = None
    # The install: its steps as planned, every log line of the current run (already
    # redacted by the engine), the result of a finished run or why it failed.
    plan_steps: list[tuple[str, str]] = field(default_factory=list)
    run_log: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    failure: FailureInfo | None = None

    @property
    def target(self) -> str | None:
        value = self.draft.get("target")
        return value if isinstance(value, str) else None

    def get(self, path: str, default: Any = None) -> Any:
        return get_path(self.draft, path, default)

    def set(self, path: str, value: Any) -> None:
        set_path(self.draft, path, value)

    def set_target(self, target: str) -> None:
        """Choose the target, dropping answers that only another kind of target uses."""
        from installer.answers import COMPOSE_TARGETS

        self.draft["target"] = target
        if target in COMPOSE_TARGETS:
            for section in ("kubernetes", "ldap"):
                self.draft.pop(section, None)
        if target == "development" and self.get("resources.profile") == "enterprise":
            self.set("resources.profile", None)

    def validate(self) -> Validation:
        """Run the answer-file model on the draft; its messages keyed by dotted path."""
        from pydantic import ValidationError

        from installer.answers import AnswerFile
        from installer.validation import problems_from_error
        from installer.yamlsource import YamlDocument

        data = copy.deepcopy(self.draft)
        try:
            return Validation(AnswerFile.model_validate(data))
        except ValidationError as e:
            document = YamlDocument("<wizard>", data)
            problems: dict[str, list[str]] = {}
            for problem in problems_from_error(e, document, AnswerFile):
                problems.setdefault(problem.path, []).append(problem.message)
            return Validation(None, problems)

    def secrets_model(self) -> Secrets:
        """The secrets typed in (empty ones left out, so the engine generates them)."""
        from installer.credentials import Secrets

        return Secrets.model_validate({k: v for k, v in self.secrets.items() if v})

    def answers_for_checks(self, target: str) -> AnswerFile:
        """The answers to check the machine against before the form is filled in.

        The draft when it is already valid for ``target``; otherwise the model's defaults
        for ``target`` with the checks the operator skipped (checks of answers not given
        yet, such as the domain's name resolution, then check the defaults).
        """
        from pydantic import ValidationError

        from installer.answers import AnswerFile

        data = copy.deepcopy(self.draft)
        data["target"] = target
        try:
            return AnswerFile.model_validate(data)
        except ValidationError:
            pass
        minimal: dict[str, Any] = {"version": 1, "target": target}
        skip = self.get("checks.skip")
        if skip:
            minimal["checks"] = {"skip": skip}
        if target != "development":
            minimal["domain"] = self.get("domain") or "localhost"
        try:
            return AnswerFile.model_validate(minimal)
        except ValidationError:
            minimal.pop("checks", None)
            minimal["domain"] = "localhost"
            return AnswerFile.model_validate(minimal)
