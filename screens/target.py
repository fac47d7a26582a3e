"""Step 3, target: the four targets with what each needs; detection's pick pre-selected."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Header, RadioButton, RadioSet, Static

from screens.step import StepScreen

# What runs the install on each target; the hardware comes from the engine's profiles.
_ENGINE: dict[str, str] = {
    "development": "Docker Engine and Compose v2 on this host; SQLite; hot reload",
    "production": "Docker Engine and Compose v2 on this server; PostgreSQL; nginx with TLS",
    "kubernetes": "a Kubernetes cluster reachable through a kubeconfig context",
    "enterprise": "Kubernetes or OpenShift on-premises; air-gap bundle, LDAP, corporate CA",
}


def _gib(value: int) -> str:
    return f"{value // 1024**3} GB"


def target_needs(target: str) -> str:
    """What ``target`` needs: its engine, then the hardware of its profile."""
    from installer.resources import PROFILES, TARGET_PROFILE

    profile = PROFILES[TARGET_PROFILE[target]]
    hardware = f"{profile.cpus} CPU, {_gib(profile.memory_bytes)} memory"
    if profile.nodes > 1:
        hardware = f"{profile.nodes}+ nodes of {hardware}, {_gib(profile.disk_bytes)} in all"
    else:
        hardware += f", {_gib(profile.disk_bytes)} disk"
    return f"Needs {_ENGINE[target]}.\n{profile.name.capitalize()} profile: {hardware}."


class TargetScreen(StepScreen):
    """Choose where CodeQual goes."""

    STEP = "target"
    CSS_PATH = "target.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+s", "continue", "Continue")]
    HELP = (
        "[b]development[/b]: Docker Compose on this machine, SQLite by default, source "
        "mounts for hot reload.\n"
        "[b]production[/b]: Docker Compose on one server, PostgreSQL, nginx with TLS, "
        "restart policies.\n"
        "[b]kubernetes[/b]: any conformant cluster, managed or in-cluster PostgreSQL, "
        "autoscaling, Ingress.\n"
        "[b]enterprise[/b]: on-premises Kubernetes or OpenShift, optionally air-gapped "
        "from the offline bundle, LDAP sign-in, a private registry.\n\n"
        "The recommended target comes from what the installer found on this machine. "
        "Arrow keys move, Enter chooses, Ctrl+S (or Continue) goes on."
    )

    def compose(self) -> ComposeResult:
        from installer.answers import TARGETS

        state = self.wizard.state
        detection = state.detection
        recommended = detection.recommended_target if detection is not None else None
        chosen = state.target or recommended or "development"
        yield Header()
        with Horizontal(id="target-body"):
            with RadioSet(id="targets"):
                for target in TARGETS:
                    label = f"{target} (recommended)" if target == recommended else target
                    yield RadioButton(label, value=target == chosen, name=target)
            with Vertical(id="target-details"):
                yield Static(id="target-needs")
                yield Static(id="target-description", classes="muted")
                if detection is not None:
                    yield Static(f"Recommended: {detection.reason}", id="target-why")
        with Horizontal(classes="nav"):
            yield Button("Back", id="back", compact=True)
            yield Button("Continue", id="continue", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        self._show(self.selected)
        self.query_one(RadioSet).focus()

    @property
    def selected(self) -> str:
        button = self.query_one(RadioSet).pressed_button
        return button.name if button is not None and button.name else "development"

    def _show(self, target: str) -> None:
        from installer.answers import AnswerFile

        self.query_one("#target-needs", Static).update(f"[b]{target}[/b]\n{target_needs(target)}")
        description = AnswerFile.model_fields["target"].description or ""
        for part in description.split("; "):
            if part.startswith(f"{target}:"):
                self.query_one("#target-description", Static).update(part.rstrip("."))

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        if event.pressed.name:
            self._show(event.pressed.name)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "back":
            self.action_back()
        else:
            self.action_continue()

    def action_continue(self) -> None:
        self.wizard.state.set_target(self.selected)
        self.wizard.advance(self.STEP)


SCREEN = TargetScreen
