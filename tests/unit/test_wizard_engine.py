"""The wizard's backend on the real engine: translations, the target it pre-selects, and a
review that renders without touching the installation (pure Python, no terminal)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from installer.answers import AnswerFile
from installer.checks import run_prerequisites
from installer.checks.detect import Environment
from installer.credentials import Secrets
from installer.release import release_for
from installer.render import preview
from installer.resources import GIB, Capacity
from screens.engine import plan_view, recommend_target, report_view
from screens.form import is_shown, required_secrets, sections_for


def environment(**changes: object) -> Environment:
    base: dict[str, object] = {
        "container_runtimes": ("docker",),
        "in_container": None,
        "container_evidence": None,
        "kubernetes_flavour": None,
        "cloud": None,
        "cloud_evidence": None,
        "airgapped": False,
        "airgap_evidence": "the public registry resolves",
    }
    base.update(changes)
    return Environment(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "docker", "contexts", "expected"),
    [
        (environment(), True, [], "development"),
        (environment(cloud="aws"), True, [], "production"),
        (environment(), False, ["prod"], "kubernetes"),
        (environment(), True, ["kind"], "development"),
        (environment(kubernetes_flavour="openshift"), False, ["ocp"], "enterprise"),
        (environment(airgapped=True), False, ["onprem"], "enterprise"),
        (environment(container_runtimes=()), False, [], "development"),
    ],
)
def test_recommended_target(
    env: Environment, docker: bool, contexts: list[str], expected: str
) -> None:
    target, reason = recommend_target(env, docker, contexts)
    assert target == expected
    assert reason


def test_report_view_keeps_every_verdict_and_names_skippable_checks() -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "development", "checks": {"skip": ["cpu"]}}
    )
    report = run_prerequisites(answers)
    view = report_view(report)
    assert [r.name for r in view.rows] == [r.name for r in report.results]
    assert [r.status for r in view.rows] == [r.status for r in report.results]
    assert view.rows[0].status == "skipped"
    assert all(row.skip_name == row.name for row in view.rows)
    assert all(row.measured and row.required for row in view.rows)


def test_the_review_renders_without_touching_the_installation(tmp_path: Path) -> None:
    install_dir = tmp_path / "install"
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "domain": "codequal.example.com",
            "install_dir": str(install_dir),
        }
    )
    secrets = Secrets.model_validate({"anthropic_api_key": "sk-ant-review-secret-000"})
    steps = [("prerequisites", "Prerequisite check")]
    rendering = preview(answers, secrets, release_for(answers), install_dir, Capacity(4, 8 * GIB))
    view = plan_view(answers, rendering, steps)
    assert not install_dir.exists()
    assert {f.change for f in view.files} == {"new"}
    assert view.root == str(install_dir)
    assert view.steps == steps
    env = next(f for f in view.files if f.path == ".env")
    assert env.holds_secrets and env.preview == "" and env.mode == 0o600
    assert all("sk-ant-review-secret-000" not in f.preview + f.diff for f in view.files)
    assert ("anthropic_api_key", "<from secrets file>") in view.secrets
    assert ("database_password", "<generated>") in view.secrets


def test_the_review_diffs_against_an_existing_installation(tmp_path: Path) -> None:
    from installer.render import render_plan, write_plan

    install_dir = tmp_path / "install"
    base = {"version": 1, "target": "development", "install_dir": str(install_dir)}
    before = AnswerFile.model_validate({**base, "monitoring": {"enabled": True}})
    write_plan(render_plan(before, Secrets(), release_for(before), install_dir), install_dir)
    generated = (install_dir / "state" / "generated-secrets.json").read_bytes()
    after = AnswerFile.model_validate(
        {**base, "monitoring": {"enabled": True, "components": ["prometheus"]}}
    )
    view = plan_view(after, preview(after, Secrets(), release_for(after), install_dir), [])
    changes = {f.path: f.change for f in view.files}
    assert changes["docker-compose.yml"] == "changed"
    assert changes["monitoring/loki/loki.yml"] == "removed"
    compose = next(f for f in view.files if f.path == "docker-compose.yml")
    assert compose.diff.startswith("--- a/docker-compose.yml")
    # Reviewing wrote nothing: the state the next install reuses is as it was.
    assert (install_dir / "state" / "generated-secrets.json").read_bytes() == generated
    assert (install_dir / "monitoring/loki/loki.yml").exists()


@pytest.mark.parametrize("target", ["development", "production", "kubernetes", "enterprise"])
def test_the_form_shows_only_the_sections_the_target_uses(target: str) -> None:
    names = {section.name for section in sections_for(target)}
    compose = target in ("development", "production")
    assert ("kubernetes" in names) is not compose
    assert ("ldap" in names) is not compose
    paths = {f.path for section in sections_for(target) for f in section.fields}
    assert ("install_dir" in paths) is compose
    assert "release.version" not in paths and "checks.skip" not in paths


def test_help_text_is_the_models_description() -> None:
    fields = {f.path: f for s in sections_for("production") for f in s.fields}
    assert (
        fields["database.sslmode"].help
        == AnswerFile.model_fields["database"].annotation.model_fields["sslmode"].description
    )  # type: ignore[union-attr]
    assert fields["database.sslmode"].options == (
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    )


def test_secret_fields_follow_the_answers_that_use_them() -> None:
    secrets = {f.label: f for f in sections_for("development")[-1].fields}
    answers: dict[str, object] = {"providers": ["openai"], "git.github": True}
    assert is_shown(secrets["openai_api_key"], answers.get)
    assert not is_shown(secrets["anthropic_api_key"], answers.get)
    assert is_shown(secrets["github_token"], answers.get)
    assert not is_shown(secrets["ldap_bind_password"], answers.get)


def test_required_secrets_come_from_the_engine() -> None:
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "production",
            "domain": "a.example.com",
            "database": {"managed": True, "host": "db.example.com"},
        }
    )
    assert required_secrets(answers) == ["database_password"]


def test_loaded_secrets_take_the_environment_too(monkeypatch: pytest.MonkeyPatch) -> None:
    from screens.engine import loaded_secrets

    monkeypatch.setenv("CODEQUAL_OPENAI_API_KEY", "sk-openai-from-env-0001")
    typed = Secrets.model_validate({"anthropic_api_key": "sk-ant-typed-0001"})
    loaded = loaded_secrets(typed)
    assert loaded.secrets.get("openai_api_key") == os.environ["CODEQUAL_OPENAI_API_KEY"]
    assert loaded.origin == {"openai_api_key": "environment", "anthropic_api_key": "secrets file"}


def test_the_review_renders_the_plan_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The review shows the target's own preview (``apply --dry-run``'s): one rendering,
    into a scratch directory, not a second one of its own."""
    import installer.render.files
    from screens.engine import EngineBackend

    roots: list[Path] = []
    real_render_plan = installer.render.files.render_plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        roots.append(Path(args[3]))
        return real_render_plan(*args, **kwargs)

    monkeypatch.setattr(installer.render.files, "render_plan", counting)
    install_dir = tmp_path / "install"
    answers = AnswerFile.model_validate(
        {
            "version": 1,
            "target": "development",
            "install_dir": str(install_dir),
            "resources": {"profile": "minimal"},
        }
    )
    view = EngineBackend().plan(answers, Secrets())
    assert len(roots) == 1 and roots[0] != install_dir
    assert not install_dir.exists()
    assert view.root == str(install_dir)
    assert [name for name, _ in view.steps][:2] == ["prerequisites", "configuration"]
    assert any(f.path == "docker-compose.yml" and f.change == "new" for f in view.files)
