"""The wizard's behaviour beyond the straight walk: pre-filled answer files, keys, inline
validation, failure and retry, support information, NO_COLOR, and the exit codes."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from installer.answers import AnswerFile
from installer.errors import AnswerFileError, Interrupted, StepFailed
from installer.validation import load_answers, validate_answers_document
from installer.yamlsource import parse_yaml
from screens import app as app_module
from screens.app import ANSWERS_FILE_NAME, InstallerApp, WizardOutcome, load_prefill, run_wizard
from screens.failure import SUPPORT_FILE_NAME
from screens.install_log import InstallLog
from tests.ui.conftest import field_id, type_into, wait_for_screen, wait_until
from tests.ui.fixed_backend import STEPS, FixedBackend


def write_answers(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "prefilled.yaml"
    path.write_text(json.dumps(document))
    return path


def shown(app: InstallerApp, path: str) -> bool:
    return bool(app.screen.query_one(f"#row-{field_id(path)[1:]}").display)


class TestPrefilled:
    async def test_a_valid_file_asks_nothing_more(
        self, make_app: Callable[..., InstallerApp], tmp_path: Path, backend: FixedBackend
    ) -> None:
        document = {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "checks": {"skip": ["cpu"]},
        }
        path = write_answers(tmp_path, document)
        app = make_app(answers_path=str(path), state=load_prefill(str(path)))
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            assert "every answer is valid" in str(app.screen.query_one("#prefill").render())
            await pilot.press("enter")
            await wait_for_screen(pilot, "prerequisites")
            await wait_until(pilot, lambda: app.state.prerequisites is not None)
            await pilot.press("ctrl+s")
            # Target and configuration are settled by the file: straight to the review.
            await wait_for_screen(pilot, "review")
            await pilot.press("escape")
            await wait_for_screen(pilot, "prerequisites")

    async def test_only_missing_or_invalid_answers_are_asked(
        self, make_app: Callable[..., InstallerApp], tmp_path: Path, backend: FixedBackend
    ) -> None:
        document = {
            "version": 1,
            "target": "production",
            "databse": {"kind": "postgres"},
            "checks": {"skip": ["cpu"]},
        }
        path = write_answers(tmp_path, document)
        app = make_app(answers_path=str(path), state=load_prefill(str(path)))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_screen(pilot, "welcome")
            await pilot.press("enter")
            await wait_for_screen(pilot, "prerequisites")
            await wait_until(pilot, lambda: app.state.prerequisites is not None)
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, "configuration")
            problems = app.screen.query_one("#form-problems")
            assert "unknown key 'databse'; did you mean 'database'?" in " ".join(
                str(w.render()) for w in problems.query("Static")
            )
            # Nothing else is asked: the valid answers' fields are not shown.
            assert not shown(app, "install_dir")
            assert not shown(app, "tls.mode")
            await pilot.click("#form-problems Button")
            await pilot.pause()
            # With the unknown key gone, the model's next rule speaks: the domain is missing.
            assert shown(app, "domain")
            assert "a public host name is required for the production target" in str(
                app.screen.query_one(f"#row-{field_id('domain')[1:]} .field-error").render()
            )
            assert not shown(app, "install_dir")
            await type_into(pilot, "domain", "codequal.example.com")
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, "review")
            await wait_until(pilot, lambda: not app.screen.query_one("#install").disabled)
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, "done")
        # The file the wizard opened is completed in place.
        fixed = {k: v for k, v in document.items() if k != "databse"}
        assert load_answers(str(path)) == AnswerFile.model_validate(
            {**fixed, "domain": "codequal.example.com"}
        )

    async def test_a_missing_required_secret_is_the_only_question(
        self,
        make_app: Callable[..., InstallerApp],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.delenv("CODEQUAL_DATABASE_PASSWORD", raising=False)
        document = {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "database": {"managed": True, "host": "db.example.com"},
            "checks": {"skip": ["cpu"]},
        }
        path = write_answers(tmp_path, document)
        app = make_app(answers_path=str(path), state=load_prefill(str(path)))
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_screen(pilot, "welcome")
            await pilot.press("enter")
            await wait_for_screen(pilot, "prerequisites")
            await wait_until(pilot, lambda: app.state.prerequisites is not None)
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, "configuration")
            rows = [r for r in app.screen.query("FieldRow") if r.display]
            assert [r.form_field.path for r in rows] == ["secrets.database_password"]  # type: ignore[attr-defined]
            await type_into(pilot, "secrets.database_password", "managed-db-secret-01")
            await pilot.press("ctrl+s")
            await wait_for_screen(pilot, "review")
        assert app.state.secrets == {"database_password": "managed-db-secret-01"}

    def test_an_unreadable_file_is_a_usage_error_before_any_screen(self, tmp_path: Path) -> None:
        with pytest.raises(AnswerFileError) as caught:
            run_wizard(str(tmp_path / "missing.yaml"))
        assert caught.value.exit_code == 2
        (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
        with pytest.raises(AnswerFileError, match="must be a mapping"):
            run_wizard(str(tmp_path / "list.yaml"))
        (tmp_path / "v2.yaml").write_text("version: 2\ntarget: development\n")
        with pytest.raises(AnswerFileError, match="version 1") as caught:
            run_wizard(str(tmp_path / "v2.yaml"))
        assert caught.value.problems[0].startswith(f"{tmp_path / 'v2.yaml'}:1:10: version:")


class TestKeys:
    async def test_escape_goes_back_and_f1_shows_the_steps_help(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app()
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            await pilot.press("enter")
            await wait_for_screen(pilot, "prerequisites")
            await wait_until(pilot, lambda: app.state.prerequisites is not None)
            await pilot.press("f1")
            await pilot.pause()
            assert type(app.screen).__name__ == "HelpDialog"
            assert "re-runs every check" in str(app.screen.query_one(".help-text").render())
            await pilot.press("escape")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "prerequisites"
            await pilot.press("escape")
            await wait_for_screen(pilot, "welcome")
            # Esc on the first step stays there.
            await pilot.press("escape")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "welcome"

    async def test_tab_and_shift_tab_move_between_fields(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app(first_step="configuration")
        app.state.draft = {"version": 1, "target": "development"}
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "configuration")
            assert app.focused is not None and app.focused.id == field_id("install_dir")[1:]
            await pilot.press("tab")
            assert app.focused is not None and app.focused.id == field_id("domain")[1:]
            await pilot.press("shift+tab")
            assert app.focused is not None and app.focused.id == field_id("install_dir")[1:]

    async def test_ctrl_q_asks_before_quitting(self, make_app: Callable[..., InstallerApp]) -> None:
        app = make_app()
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "welcome")
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert "Nothing has been changed" in str(app.screen.query_one(".question").render())
            await pilot.press("n")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "welcome"
            await pilot.press("ctrl+q")
            await pilot.press("y")
            await pilot.pause()
        assert app.return_value == WizardOutcome.QUIT

    async def test_quitting_during_the_install_stops_between_steps(
        self, make_app: Callable[..., InstallerApp], backend: FixedBackend
    ) -> None:
        import threading

        backend.hold_loading = threading.Event()
        app = make_app(first_step="install")
        app.state.draft = {"version": 1, "target": "development"}
        app.state.plan_steps = list(STEPS)
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "install")
            await wait_until(pilot, backend.loading_images.is_set)
            await pilot.press("ctrl+q")
            await pilot.pause()
            assert "keeps its journal" in str(app.screen.query_one(".question").render())
            await pilot.press("y")
            await pilot.pause()
            install: Any = app.screen
            assert install.cancel.cancelled
            assert "Stopping after the current step" in str(
                install.query_one("#run-status").render()
            )
            backend.hold_loading.set()
            await wait_until(pilot, lambda: app.return_value is not None)
        assert app.return_value == WizardOutcome.INTERRUPTED
        # The run stopped at the step boundary: the steps after it never started.
        assert install.step_state["database"] == "pending"


class TestInlineValidation:
    async def test_the_models_own_message_appears_under_the_field(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app(first_step="configuration")
        app.state.draft = {"version": 1, "target": "production"}
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "configuration")
            await type_into(pilot, "domain", "not_a host")
            shown_error = str(
                app.screen.query_one(f"#row-{field_id('domain')[1:]} .field-error").render()
            )
            document = parse_yaml('{version: 1, target: production, domain: "not_a host"}', "x")
            _, problems = validate_answers_document(document)
            expected = next(p.message for p in problems if p.path == "domain")
            assert shown_error == f"✗ {expected}"
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert getattr(app.screen, "STEP", None) == "configuration"
            await type_into(pilot, "domain", "codequal.example.com")
            assert "✗" not in str(
                app.screen.query_one(f"#row-{field_id('domain')[1:]} .field-error").render()
            )

    async def test_secret_fields_are_password_inputs_and_never_reach_the_answer_file(
        self, make_app: Callable[..., InstallerApp], tmp_path: Path
    ) -> None:
        app = make_app(first_step="configuration")
        app.state.draft = {"version": 1, "target": "development"}
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "configuration")
            secret = app.screen.query_one(field_id("secrets.anthropic_api_key"), Input)
            assert secret.password
            await type_into(pilot, "secrets.anthropic_api_key", "sk-ant-never-in-answers")
            app.save_answers()
        text = (tmp_path / ANSWERS_FILE_NAME).read_text()
        assert "sk-ant-never-in-answers" not in text
        assert "anthropic_api_key" not in text

    async def test_fields_the_answers_do_not_use_are_hidden_and_dropped(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app(first_step="configuration")
        app.state.draft = {"version": 1, "target": "production", "domain": "a.example.com"}
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "configuration")
            assert not shown(app, "tls.cert_file")
            from tests.ui.conftest import choose

            await choose(pilot, "tls.mode", "provided")
            assert shown(app, "tls.cert_file")
            await type_into(pilot, "tls.cert_file", "/etc/tls.crt")
            await choose(pilot, "tls.mode", "self-signed")
            assert not shown(app, "tls.cert_file")
            assert app.state.get("tls.cert_file") is None
            assert app.state.validate().ok


class TestFailure:
    async def test_failure_shows_the_step_and_its_last_lines_and_retry_reaches_done(
        self, make_app: Callable[..., InstallerApp], backend: FixedBackend, tmp_path: Path
    ) -> None:
        backend.fail_at = "verification"
        app = make_app(first_step="install")
        app.state.draft = {"version": 1, "target": "development"}
        app.state.plan_steps = list(STEPS)
        app.state.secrets = {"anthropic_api_key": "sk-ant-support-secret-1"}
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "failure")
            title = str(app.screen.query_one("#failure-title").render())
            assert "failed at step verification" in title
            tail = str(app.screen.query_one("#failure-tail").render())
            assert tail == "\n".join(backend.failure_lines)
            assert "free port 3000" in str(app.screen.query_one("#failure-hint").render())
            await pilot.press("s")
            await pilot.pause()
            support = tmp_path / SUPPORT_FILE_NAME
            assert stat.S_IMODE(support.stat().st_mode) == 0o600
            text = support.read_text()
            assert "== failure at step verification" in text
            assert backend.failure_lines[-1] in text
            assert "sk-ant-support-secret-1" not in text
            # The cause is removed; Retry runs the install again and it succeeds.
            backend.fail_at = None
            await pilot.press("r")
            await wait_for_screen(pilot, "done")
            assert "http://localhost:3000/" in str(app.screen.query_one("#done-summary").render())
        assert backend.runs == 2

    async def test_show_full_log_lists_every_step(
        self, make_app: Callable[..., InstallerApp], backend: FixedBackend
    ) -> None:
        backend.fail_at = "database"
        app = make_app(first_step="install")
        app.state.draft = {"version": 1, "target": "development"}
        app.state.plan_steps = list(STEPS)
        async with app.run_test() as pilot:
            await wait_for_screen(pilot, "failure")
            await pilot.press("l")
            await pilot.pause()
            lines = app.screen.query_one(InstallLog).lines
            assert "==> Prerequisite check" in lines
            assert "==> Database initialization" in lines


class TestInstallLog:
    async def test_follows_the_end_only_while_the_reader_is_there(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for_screen(pilot, "welcome")
            from screens.dialogs import FullLogDialog

            app.push_screen(FullLogDialog("log", []))
            await pilot.pause()
            log = app.screen.query_one(InstallLog)
            log.write_lines(f"line {n}" for n in range(200))
            await pilot.pause()
            assert log.is_vertical_scroll_end and log.following
            log.scroll_home(animate=False, immediate=True)
            await pilot.pause()
            assert not log.following
            log.write_lines(f"more {n}" for n in range(30))
            await pilot.pause()
            assert log.scroll_y == 0
            assert log.unseen == 30
            assert "30 new" in str(log.border_subtitle)
            await pilot.press("end")
            await pilot.pause()
            assert log.following and log.unseen == 0
            log.write_line("last")
            await pilot.pause()
            assert log.is_vertical_scroll_end

    async def test_control_characters_cannot_move_the_terminal_cursor(
        self, make_app: Callable[..., InstallerApp]
    ) -> None:
        app = make_app()
        async with app.run_test() as pilot:
            from screens.dialogs import FullLogDialog

            app.push_screen(FullLogDialog("log", ["ok \x1b[2J cleared?", "tab\there"]))
            await pilot.pause()
            lines = app.screen.query_one(InstallLog).lines
            assert "\x1b" not in lines[0] and "\t" not in lines[1]


async def test_no_color_makes_the_screen_monochrome(
    make_app: Callable[..., InstallerApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    def colours(svg: str) -> set[str]:
        # The screenshot's own terminal theme (text and page) is not the app's doing.
        return set(re.findall(r"fill: (#[0-9a-f]{6})", svg.lower())) - {"#c5c8c6", "#292929"}

    def grey(colour: str) -> bool:
        return colour[1:3] == colour[3:5] == colour[5:7]

    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app()
    async with app.run_test() as pilot:
        await wait_for_screen(pilot, "welcome")
        coloured = colours(app.export_screenshot())
    assert not all(grey(c) for c in coloured)

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test() as pilot:
        await wait_for_screen(pilot, "welcome")
        plain = colours(app.export_screenshot())
    assert plain and all(grey(c) for c in plain), plain


@pytest.mark.parametrize(
    ("outcome", "error"),
    [(WizardOutcome.FAILED, StepFailed), (WizardOutcome.INTERRUPTED, Interrupted)],
)
def test_run_wizard_turns_the_outcome_into_the_documented_exit_code(
    monkeypatch: pytest.MonkeyPatch, outcome: str, error: type[Exception]
) -> None:
    monkeypatch.setattr(app_module.InstallerApp, "run", lambda self: outcome)
    with pytest.raises(error) as caught:
        run_wizard()
    assert caught.value.exit_code in (1, 130)  # type: ignore[attr-defined]
    assert "codequal-installer apply" in str(caught.value.hint)  # type: ignore[attr-defined]


def test_run_wizard_returns_quietly_after_an_install_or_a_quit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for outcome in (WizardOutcome.INSTALLED, WizardOutcome.QUIT):
        monkeypatch.setattr(app_module.InstallerApp, "run", lambda self, o=outcome: o)
        run_wizard()
