"""The answer-file model: sections, defaults that follow the target, cross-field rules."""

from __future__ import annotations

from typing import Any

import pytest

from installer.answers import TARGETS, AnswerFile
from installer.errors import AnswerFileError
from installer.examples import dump_answers, example_answers
from installer.validation import parse_answers_text


def _answers(**kw: Any) -> dict[str, Any]:
    return {"version": 1, "target": "production", "domain": "cq.example.com", **kw}


def test_development_defaults_follow_the_target() -> None:
    a = AnswerFile.model_validate({"version": 1, "target": "development"})
    assert a.database.kind == "sqlite"
    assert a.tls.mode == "none"
    assert a.domain == "localhost"


def test_production_defaults_are_postgres_and_self_signed() -> None:
    a = AnswerFile.model_validate(_answers())
    assert a.database.kind == "postgres"
    assert a.tls.mode == "self-signed"


def test_an_empty_section_reads_as_defaults() -> None:
    a = AnswerFile.model_validate(_answers(supabase=None, monitoring=None))
    assert a.supabase.url is None
    assert a.monitoring.enabled is True


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"database": {"kind": "sqlite"}}, "database.kind", "development only"),
        ({"tls": {"mode": "none"}}, "tls.mode", "development only"),
        ({"tls": {"mode": "provided"}}, "tls.cert_file", "required"),
        ({"tls": {"cert_file": "/etc/x.pem"}}, "tls.cert_file", "only used with mode provided"),
        ({"deepwiki": {"mode": "external"}}, "deepwiki.url", "required"),
        ({"deepwiki": {"url": "https://dw.example.com"}}, "deepwiki.url", "only used"),
        ({"database": {"managed": True}}, "database.host", "required"),
        ({"database": {"host": "db.example.com"}}, "database.host", "managed"),
        ({"airgap": {"enabled": True}}, "airgap.bundle", "required"),
        ({"ldap": {"enabled": True, "url": "ldaps://l.example.com"}}, "ldap.bind_dn", "required"),
        ({"kubernetes": {"openshift": True}}, "kubernetes", "kubernetes and enterprise"),
        ({"monitoring": {"components": []}}, "monitoring.components", "at least one"),
        ({"registry": {"insecure": True}}, "registry.insecure", "registry.mirror"),
        ({"release": {"images": {"codequal": "UPPER CASE"}}}, "release.images", "image reference"),
    ],
)
def test_rules_are_reported_at_the_key_they_concern(
    changes: dict[str, Any], path: str, words: str
) -> None:
    import yaml

    text = yaml.safe_dump(_answers(**changes))
    with pytest.raises(AnswerFileError) as info:
        parse_answers_text(text, "a.yaml")
    lines = [p for p in info.value.problems if f": {path}: " in p]
    assert lines, info.value.problems
    assert words in lines[0]


def test_airgapped_kubernetes_needs_a_mirror() -> None:
    import yaml

    text = yaml.safe_dump(
        _answers(
            target="enterprise",
            database={"managed": True, "host": "pg.corp"},
            airgap={"enabled": True, "bundle": "/srv/b.bundle"},
        )
    )
    with pytest.raises(AnswerFileError) as info:
        parse_answers_text(text, "a.yaml")
    assert any("registry.mirror: required" in p for p in info.value.problems)


def test_production_needs_a_domain() -> None:
    with pytest.raises(AnswerFileError) as info:
        parse_answers_text("version: 1\ntarget: production\n", "a.yaml")
    assert any("domain: a public host name is required" in p for p in info.value.problems)


@pytest.mark.parametrize(
    "domain",
    ["codequal.example.com;", "a b", "example.com\nserver_name evil", "https://x.com", "-x.com"],
)
def test_hostile_or_malformed_domains_are_rejected(domain: str) -> None:
    with pytest.raises(ValueError, match="not a valid host name"):
        AnswerFile.model_validate(_answers(domain=domain))


@pytest.mark.parametrize("target", TARGETS)
def test_dumped_answers_load_back_equal(target: str) -> None:
    original = example_answers(target)  # type: ignore[arg-type]
    reloaded = parse_answers_text(dump_answers(original), "dump.yaml")
    assert reloaded == original


def test_dump_leaves_out_sections_compose_targets_do_not_use() -> None:
    text = dump_answers(example_answers("production"))
    assert "\nkubernetes:" not in text
    assert "\nldap:" not in text
    assert "\nkubernetes:" in dump_answers(example_answers("kubernetes"))
