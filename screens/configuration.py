"""Step 4, configuration: a form bound to the answer-file model, checked as you type.

Every field writes straight into the draft answers and the whole draft is validated by
the model after each change; its own messages appear under the fields they are about.
Only the sections the chosen target uses are shown. Opened from a pre-filled answer
file, the form shows only the answers that are missing or invalid (and any field that a
change there brings into question); "Show all" opens the whole form.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Header,
    Input,
    Label,
    Select,
    SelectionList,
    Static,
)

from screens.form import (
    FormField,
    FormSection,
    is_shown,
    mapping_text,
    parse_mapping,
    parse_words,
    sections_for,
    target_defaults,
    words_text,
)
from screens.state import Validation
from screens.step import StepScreen

_INDEX = re.compile(r"\[\d+\]")
_CURRENT_CONTEXT = "(current context)"


def _field_path(problem_path: str) -> str:
    """``providers[1]`` -> ``providers``: list items are edited as their list."""
    return _INDEX.sub("", problem_path)


class FieldRow(Vertical):
    """One form field: its label and input, the model's description, its problems."""

    def __init__(self, form_field: FormField, value: Any) -> None:
        super().__init__(classes="field-row", id=f"row-{form_field.widget_id}")
        self.form_field = form_field
        self.value = value
        self.shown_problems: list[str] | None = None

    def compose(self) -> ComposeResult:
        form_field, value = self.form_field, self.value
        with Horizontal(classes="field-line"):
            yield Label(form_field.label, classes="field-label")
            yield _input_for(form_field, value)
        if form_field.help:
            yield Static(form_field.help, classes="field-help", markup=False)
        yield Static("", classes="field-error", markup=False)

    def show_problems(self, messages: list[str]) -> None:
        if messages == self.shown_problems:
            return
        self.shown_problems = list(messages)
        error = self.query_one(".field-error", Static)
        error.update("\n".join(f"✗ {m}" for m in messages))
        error.display = bool(messages)
        self.set_class(bool(messages), "-invalid")


def _show_text(static: Static, text: str) -> None:
    """Show ``text`` unless it is shown already: every ``update`` lays the whole form out
    again, which a keystroke that changes nothing there must not cost."""
    if static.content != text:
        static.update(text)


def _input_for(form_field: FormField, value: Any) -> Widget:
    widget_id = form_field.widget_id
    kind = form_field.kind
    if kind == "bool":
        return Checkbox("", value=bool(value), id=widget_id, compact=True)
    if kind == "present":
        return Checkbox("", value=value is not None, id=widget_id, compact=True)
    if kind in ("words", "mapping"):
        shown = words_text(value) if kind == "words" else mapping_text(value)
        return Input(
            value=shown,
            placeholder=(
                (words_text(form_field.default) or "separated by commas")
                if kind == "words"
                else "name=" + "|".join(form_field.options or ("value",)) + ", ..."
            ),
            id=widget_id,
            compact=True,
        )
    if kind == "choice":
        if form_field.optional:  # not set is an answer of its own (the services' default)
            return Select(
                [(option, option) for option in form_field.options],
                value=value if value in form_field.options else Select.NULL,
                prompt="not set",
                allow_blank=True,
                id=widget_id,
                compact=True,
            )
        return Select(
            [(option, option) for option in form_field.options],
            value=value if value in form_field.options else form_field.options[0],
            allow_blank=False,
            id=widget_id,
            compact=True,
        )
    if kind == "multi":
        chosen = set(value or [])
        return SelectionList[str](
            *[(option, option, option in chosen) for option in form_field.options],
            id=widget_id,
            compact=True,
        )
    if kind == "context":
        options = [(value, value)] if value else []
        return Select(
            options,
            value=value if value else Select.NULL,
            prompt=_CURRENT_CONTEXT,
            allow_blank=True,
            id=widget_id,
            compact=True,
        )
    if kind == "secret":
        return Input(
            value="" if value is None else str(value),
            password=True,
            placeholder="generated when empty"
            if form_field.label in ("database_password", "grafana_admin_password")
            else "not set",
            id=widget_id,
            compact=True,
        )
    placeholder = "" if form_field.default is None else str(form_field.default)
    return Input(
        value="" if value is None else str(value),
        placeholder=placeholder or ("required" if form_field.path == "domain" else "not set"),
        type="integer" if kind == "int" else "text",
        id=widget_id,
        compact=True,
    )


class ConfigurationScreen(StepScreen):
    """The answers the chosen target needs."""

    STEP = "configuration"
    CSS_PATH = "configuration.tcss"
    HELP = (
        "The form holds the answer file's sections that your target uses; each field says "
        "what it is for, and problems appear under the field as you type, in the same words "
        "[b]codequal-installer answers validate[/b] uses.\n\n"
        "Secrets (API keys, tokens, passwords) go in password fields and never into the "
        "answer file. Passwords left empty are generated and kept, mode 0600, in the "
        "installation's state directory.\n\n"
        "Tab/Shift+Tab move between fields, Space toggles a check box or a list entry, "
        "Enter opens a choice. [b]Ctrl+S[/b] continues when every answer is valid."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "continue", "Continue"),
        Binding("ctrl+a", "show_all", "Show all", show=False),
    ]

    class ContextsLoaded(Message):
        def __init__(self, contexts: list[str]) -> None:
            super().__init__()
            self.contexts = contexts

    def __init__(self) -> None:
        super().__init__()
        state = self.wizard.state
        self.target = state.target or "development"
        self.sections: list[FormSection] = sections_for(self.target)
        self.defaults = target_defaults(self.target)
        self.fields: dict[str, FormField] = {
            f.path: f for section in self.sections for f in section.fields
        }
        # Pre-filled: ask only what is missing or invalid; a field once asked stays.
        self.only_asked = state.prefilled_from is not None
        self.asked: set[str] = set()
        self.validation: Validation = state.validate()
        self._elsewhere_shown: list[tuple[str, str]] | None = None
        self._rows: list[FieldRow] = []
        self._boxes: dict[str, tuple[Vertical, Static, list[FieldRow]]] = {}

    # -- building ----------------------------------------------------------------------

    def value_of(self, path: str) -> Any:
        """What a field shows: the operator's answer, else the target's default."""
        state = self.wizard.state
        if path.startswith("secrets."):
            return state.secrets.get(path.split(".", 1)[1])
        value = state.get(path, _UNSET)
        if value is _UNSET:
            from screens.state import get_path

            value = get_path(self.defaults, path, _UNSET)
            if value is _UNSET:  # inside a sub-section that is absent by default
                form_field = self.fields.get(path)
                return None if form_field is None else form_field.default
        return value

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="form-intro")
        with VerticalScroll(id="form"):
            yield Vertical(id="form-problems")
            for section in self.sections:
                with Vertical(classes="form-section", id=f"section-{section.name}"):
                    yield Static(section.title, classes="section-title")
                    yield Static(section.help, classes="section-help muted", markup=False)
                    yield Static("", classes="section-error field-error", markup=False)
                    for form_field in section.fields:
                        yield FieldRow(form_field, self.value_of(form_field.path))
                    if section.name == "identity":
                        yield Static("", id="identity-redirect", classes="field-help")
        with Horizontal(classes="nav"):
            yield Static("", id="form-status", classes="status")
            yield Button("Show all", id="show-all", compact=True)
            yield Button("Back", id="back", compact=True)
            yield Button("Continue", id="continue", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._rows = list(self.query(FieldRow))
        for section in self.sections:
            box = self.query_one(f"#section-{section.name}", Vertical)
            self._boxes[section.name] = (
                box,
                box.query_one(".section-error", Static),
                list(box.query(FieldRow)),
            )
        if self.only_asked:
            self.asked = self._problem_paths()
        self._refresh_form(focus_first=True)
        if any(f.kind == "context" for f in self.fields.values()):
            self._load_contexts()

    @work(thread=True, exclusive=True, group="contexts")
    def _load_contexts(self) -> None:
        try:
            contexts = self.wizard.backend.kube_contexts()
        except Exception:  # noqa: BLE001 - no kubeconfig is an ordinary situation
            contexts = []
        self.post_message(self.ContextsLoaded(contexts))

    def on_configuration_screen_contexts_loaded(self, message: ContextsLoaded) -> None:
        field = self.fields.get("kubernetes.context")
        if field is None:
            return
        select: Select[str] = self.query_one(f"#{field.widget_id}", Select)
        current = self.wizard.state.get("kubernetes.context")
        names = list(dict.fromkeys([*message.contexts, *([current] if current else [])]))
        with select.prevent(Select.Changed):
            select.set_options([(name, name) for name in names])
            if current:
                select.value = current

    # -- validation and visibility -----------------------------------------------------

    def _problem_paths(self) -> set[str]:
        paths = {_field_path(p) for p in self.validation.problems}
        paths |= {f"secrets.{key}" for key in self.wizard.missing_secrets()}
        return paths

    def _problems_by_field(self) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
        """The model's messages: per form field (or section), and the rest."""
        by_field: dict[str, list[str]] = {}
        elsewhere: list[tuple[str, str]] = []
        section_names = {s.name for s in self.sections}
        for path, messages in self.validation.problems.items():
            target = self._field_of_problem(_field_path(path))
            if target in self.fields or target in section_names:
                by_field.setdefault(target, []).extend(messages)
            else:
                elsewhere += [(path, m) for m in messages]
        for key in self.wizard.missing_secrets():
            by_field.setdefault(f"secrets.{key}", []).append(
                "required for these answers; it is not in the environment either"
            )
        return by_field, elsewhere

    def _field_of_problem(self, path: str) -> str:
        """The field a problem is about: ``identity.roles.admins`` is ``identity.roles``'s."""
        while path not in self.fields and "." in path:
            parent = path.rsplit(".", 1)[0]
            if parent not in self.fields:
                return path
            path = parent
        return path

    def _show_redirect_url(self) -> None:
        """The identity section names the redirect URL to register, from the domain."""
        from installer.identity import redirect_url

        for line in self.query("#identity-redirect").results(Static):
            state = self.wizard.state
            on = self.value_of("identity.enabled") is True
            line.display = on
            if on:
                url = redirect_url(
                    str(state.get("domain") or "localhost"), str(self.value_of("tls.mode"))
                )
                _show_text(line, f"Register this redirect URL with the provider: {url}")

    def _refresh_form(self, *, focus_first: bool = False) -> None:
        self.validation = self.wizard.state.validate()
        by_field, elsewhere = self._problems_by_field()
        if self.only_asked:
            self.asked |= set(by_field)
        first_invalid: Widget | None = None
        for row in self._rows:
            path = row.form_field.path
            problems = by_field.get(path, [])
            in_use = bool(problems) or is_shown(row.form_field, self.value_of)
            shown = in_use and (not self.only_asked or path in self.asked)
            if row.display != shown:
                row.display = shown
            row.show_problems(problems)
            if shown and problems and first_invalid is None:
                first_invalid = row.query_one(f"#{row.form_field.widget_id}")
        for section in self.sections:
            box, error, rows = self._boxes[section.name]
            problems = by_field.get(section.name, [])
            text = "\n".join(f"✗ {m}" for m in problems)
            _show_text(error, text)
            error.display = bool(problems)
            wanted = bool(problems) or any(row.display for row in rows)
            if box.display != wanted:
                box.display = wanted
        if elsewhere != self._elsewhere_shown:
            self._show_elsewhere(elsewhere)
        self._show_redirect_url()
        count = sum(len(v) for v in by_field.values()) + len(elsewhere)
        _show_text(
            self.query_one("#form-status", Static),
            "all answers valid" if not count else f"{count} to fix",
        )
        self.query_one("#show-all", Button).display = self.only_asked
        if focus_first:
            self.query_one("#form-intro", Static).update(
                f"Pre-filled from {self.wizard.state.prefilled_from}: only what is missing or "
                "invalid is asked."
                if self.only_asked
                else f"Answers for the [b]{self.target}[/b] target."
            )
            target = first_invalid or next(
                (w for w in self.query("#form Input, #form Select, #form Checkbox")),
                None,
            )
            if target is not None:
                target.focus()

    def _clear_unused(self, form_field: FormField) -> None:
        """A hidden field is unused by the answers as they stand: drop what it held."""
        state = self.wizard.state
        if state.get(form_field.path, _UNSET) is not _UNSET:
            state.set(form_field.path, None)

    def _show_elsewhere(self, problems: list[tuple[str, str]]) -> None:
        """Problems with keys the form has no field for (unknown keys in a pre-filled file)."""
        self._elsewhere_shown = problems
        box = self.query_one("#form-problems", Vertical)
        box.remove_children()
        box.display = bool(problems)
        if not problems:
            return
        box.mount(Static("Answers the form cannot edit", classes="section-title"))
        for index, (path, message) in enumerate(problems):
            line = Horizontal(classes="elsewhere")
            box.mount(line)
            line.mount(Static(f"✗ {path or 'answer file'}: {message}", classes="field-error"))
            if path:
                line.mount(Button("Remove", id=f"drop-{index}", name=path, compact=True))

    # -- editing -----------------------------------------------------------------------

    def _changed(self, form_field: FormField, value: Any) -> None:
        state = self.wizard.state
        if form_field.kind == "secret":
            key = form_field.path.split(".", 1)[1]
            if value:
                state.secrets[key] = value
            else:
                state.secrets.pop(key, None)
        else:
            if value == self.value_of(form_field.path):
                return
            within = form_field.within
            present = within is not None and state.get(within) is not None
            state.set(form_field.path, value)
            if present and state.get(within) is None:  # emptied, not removed: still on
                state.set(within, {})
            # A field this change made unused loses its answer (a certificate path once TLS
            # is self-signed again), as an operator editing the file by hand would delete it.
            for other in self.fields.values():
                if other.kind != "secret" and not is_shown(other, self.value_of):
                    self._clear_unused(other)
        self._refresh_form()

    def _field_for(self, widget: Widget) -> FormField | None:
        widget_id = widget.id or ""
        for form_field in self.fields.values():
            if form_field.widget_id == widget_id:
                return form_field
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        form_field = self._field_for(event.input)
        if form_field is None:
            return
        text = event.value
        value: Any
        if form_field.kind == "secret":
            value = text
        elif form_field.kind == "words":
            value = parse_words(text)
        elif form_field.kind == "mapping":
            value = parse_mapping(text)
        elif form_field.kind == "int":
            stripped = text.strip()
            value = int(stripped) if re.fullmatch(r"[+-]?\d+", stripped) else (stripped or None)
        else:
            value = text.strip() or None
        self._changed(form_field, value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        form_field = self._field_for(event.checkbox)
        if form_field is None:
            return
        if form_field.kind == "present":
            # On: the sub-section exists (its fields appear); off: it and its answers go.
            if event.value and self.value_of(form_field.path) is not None:
                return
            self._changed(form_field, {} if event.value else None)
        else:
            self._changed(form_field, event.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        form_field = self._field_for(event.select)
        if form_field is None:
            return
        value = None if event.value is Select.NULL else event.value
        self._changed(form_field, value)

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        event.stop()
        form_field = self._field_for(event.selection_list)
        if form_field is not None:
            chosen = set(event.selection_list.selected)
            self._changed(form_field, [o for o in form_field.options if o in chosen])

    # -- buttons -----------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        button = event.button
        if button.id == "back":
            self.action_back()
        elif button.id == "show-all":
            self.action_show_all()
        elif button.id == "continue":
            self.action_continue()
        elif button.id and button.id.startswith("drop-") and button.name is not None:
            self.wizard.state.set(button.name, None)
            self._refresh_form()

    def action_show_all(self) -> None:
        self.only_asked = False
        self._refresh_form(focus_first=True)

    def action_continue(self) -> None:
        self._refresh_form()
        by_field, elsewhere = self._problems_by_field()
        if not by_field and not elsewhere and self.validation.ok:
            self.wizard.advance(self.STEP)
            return
        count = sum(len(v) for v in by_field.values()) + len(elsewhere)
        self.notify(
            f"{count} answer{'s' if count != 1 else ''} to fix first (marked ✗).",
            severity="warning",
        )
        self._refresh_form(focus_first=True)


_UNSET: Any = object()

SCREEN = ConfigurationScreen
