"""The review step's export for the Kubernetes targets, driven with Pilot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from textual.widgets import Button, Input, Static

from screens.app import InstallerApp
from screens.export import ExportDialog
from screens.state import WizardState
from tests.ui.conftest import wait_for_screen, wait_until

KUBERNETES_DRAFT = {
    "version": 1,
    "target": "kubernetes",
    "domain": "codequal.example.com",
    "checks": {"skip": ["cpu"]},
}


async def open_review(pilot: Any) -> None:
    await wait_for_screen(pilot, "review")
    await wait_until(pilot, lambda: not pilot.app.screen.query_one("#install").disabled)


async def export_to(pilot: Any, directory: Path) -> str:
    dialog = pilot.app.screen
    assert isinstance(dialog, ExportDialog)
    dialog.query_one("#export-dir", Input).value = str(directory)
    await pilot.click("#export-write")
    status = dialog.query_one("#export-status", Static)
    await wait_until(pilot, lambda: "files in" in str(status.render()), timeout=30)
    return str(status.render())


async def test_the_review_exports_a_chart_and_a_kustomize_tree(
    make_app: Callable[..., InstallerApp], tmp_path: Path
) -> None:
    app = make_app(first_step="review", state=WizardState(draft=dict(KUBERNETES_DRAFT)))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_review(pilot)
        assert not app.screen.query_one("#export", Button).disabled
        await pilot.press("ctrl+e")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportDialog))
        # The directory offered is beside the answer file Install would save.
        directory = app.screen.query_one("#export-dir", Input)
        assert directory.value == str(tmp_path / "codequal-chart")
        await pilot.click("#format-kustomize")
        await pilot.pause()
        assert directory.value == str(tmp_path / "codequal-kustomize")
        await pilot.click("#format-helm")
        await pilot.pause()
        assert directory.value == str(tmp_path / "codequal-chart")

        said = await export_to(pilot, tmp_path / "chart")
        assert "Helm chart" in said
        chart = yaml.safe_load((tmp_path / "chart/Chart.yaml").read_text())
        assert chart["apiVersion"] == "v2"
        assert (tmp_path / "chart/templates/01-namespace-codequal.yaml").exists()
        assert (tmp_path / "chart/create-secrets.sh").stat().st_mode & 0o111

        await pilot.click("#format-kustomize")
        await pilot.pause()
        assert directory.value == str(tmp_path / "chart")  # chosen by hand: kept
        said = await export_to(pilot, tmp_path / "kustomize")
        assert "Kustomize" in said
        overlay = tmp_path / "kustomize/overlays/codequal-answers"
        assert (
            yaml.safe_load((overlay / "kustomization.yaml").read_text())["namespace"] == "codequal"
        )

        await pilot.click("#export-close")
        await wait_for_screen(pilot, "review")
        # Exporting saved nothing and installed nothing.
        assert not (tmp_path / "codequal-answers.yaml").exists()
        assert app.backend.runs == 0  # type: ignore[attr-defined]


async def test_a_failed_export_says_why_and_writes_nothing(
    make_app: Callable[..., InstallerApp], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = make_app(first_step="review", state=WizardState(draft=dict(KUBERNETES_DRAFT)))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_review(pilot)
        await pilot.click("#export")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one("#export-dir", Input).value = str(blocker / "chart")
        await pilot.click("#export-write")
        status = app.screen.query_one("#export-status", Static)
        await wait_until(pilot, lambda: "Not exported" in str(status.render()), timeout=30)
        assert "cannot write" in str(status.render())


async def test_compose_targets_offer_no_export(
    make_app: Callable[..., InstallerApp], tmp_path: Path
) -> None:
    draft = {**KUBERNETES_DRAFT, "target": "production"}
    app = make_app(first_step="review", state=WizardState(draft=draft))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_review(pilot)
        assert not app.screen.query("#export")
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert not isinstance(app.screen, ExportDialog)
