"""The end of a good install: where CodeQual answers, where credentials and logs are."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Header, Static

from screens.step import StepScreen


def _urls(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, URL) pairs from the run's result, however the runner grouped them."""
    urls = result.get("urls") or {}
    if isinstance(urls, dict):
        return [(str(k), str(v)) for k, v in urls.items()]
    if isinstance(urls, list):
        pairs = []
        for item in urls:
            if isinstance(item, dict):
                pairs.append((str(item.get("name", "")), str(item.get("url", ""))))
            else:
                pairs.append(("", str(item)))
        return pairs
    return [("", str(urls))]


def summary_text(result: dict[str, Any], answers_path: str | None, secrets_path: str | None) -> str:
    """The done screen's text, from the run's result (what ``result.json`` holds)."""
    lines = ["[b]CodeQual is installed and running.[/b]"]
    if result.get("message"):
        lines.append(escape(str(result["message"])))
    lines.append("")
    urls = _urls(result)
    if urls:
        lines.append("[b]Open[/b]")
        width = max(len(name) for name, _ in urls)
        lines += [f"  {name:<{width}}  {escape(url)}" for name, url in urls]
        lines.append("")
    credentials = result.get("credentials")
    if isinstance(credentials, dict) and credentials:
        lines.append("[b]Credentials[/b] (never in the answer file or the log)")
        width = max(len(str(k)) for k in credentials)
        lines += [f"  {k!s:<{width}}  {escape(str(v))}" for k, v in credentials.items()]
        lines.append("")
    elif credentials:
        lines += [f"[b]Credentials[/b]  {escape(str(credentials))}", ""]
    facts = [
        ("Log", result.get("log_file")),
        ("Result", result.get("result_file")),
        ("Answers", answers_path),
        ("Secrets", f"{secrets_path} (mode 0600)" if secrets_path else None),
    ]
    release = result.get("release")
    if isinstance(release, dict) and release.get("version"):
        facts.append(("Release", f"CodeQual {release['version']}"))
    lines += [f"[b]{label:<8}[/b] {escape(str(value))}" for label, value in facts if value]
    apply = "codequal-installer apply"
    if answers_path:
        apply += f" --answers {answers_path}"
        if secrets_path:
            apply += f" --secrets {secrets_path}"
    lines += [
        "",
        "[b]Next steps[/b]",
        "  codequal-installer status     the health of every service",
        f"  {escape(apply)}",
        "                                after changing an answer",
    ]
    return "\n".join(lines)


class DoneScreen(StepScreen):
    """CodeQual is running."""

    STEP = "done"
    CSS_PATH = "done.tcss"
    CAN_GO_BACK = False
    QUIT_QUESTION = "Leave the installer? CodeQual keeps running."
    HELP = (
        "The install finished and every health check passed. The URLs are where CodeQual "
        "answers; generated passwords are in the state directory (mode 0600), never in "
        "the answer file or the log.\n\n"
        "[b]l[/b] shows the full log of the run, [b]q[/b] or Enter quits."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "show_log", "Full log"),
        Binding("q", "finish", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        state = self.wizard.state
        yield Header()
        with VerticalScroll(id="done-body"):
            yield Static(
                summary_text(state.result, state.saved_answers, state.saved_secrets),
                id="done-summary",
            )
        with Horizontal(classes="nav"):
            yield Button("Full log", id="log", compact=True)
            yield Button("Quit", id="quit", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#quit", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "log":
            self.action_show_log()
        else:
            self.action_finish()

    def action_show_log(self) -> None:
        from screens.dialogs import FullLogDialog

        self.app.push_screen(FullLogDialog("Full log", self.wizard.state.run_log))

    def action_finish(self) -> None:
        from screens.app import WizardOutcome

        self.app.exit(WizardOutcome.INSTALLED)

    def on_quit_confirmed(self) -> None:
        self.action_finish()


SCREEN = DoneScreen
