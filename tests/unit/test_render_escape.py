"""Escaping: each format's escaper reads back as the input, or refuses; templates use them.

The answer model already rejects these values; here they are forced past it
(``model_copy(update=...)`` does not validate) to prove the templates hold on their own.
The real tools read the same hostile output in tests/integration/test_validators.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from installer.answers import AnswerFile
from installer.credentials import Secrets
from installer.release import load_release
from installer.render import render_plan
from installer.render.engine import to_yaml, yaml_block
from installer.render.escape import (
    RenderError,
    compose_string,
    dotenv_value,
    label_value,
    nginx_string,
    yaml_string,
)

RELEASE = load_release("0.1.0")
# Any text YAML can carry: no lone surrogates (UTF-8 cannot encode them).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)

HOSTILE_DOMAIN = 'evil.example.com"; } server { listen 8443; } #'
HOSTILE_URL = "https://x.example.com/${HOME}\"\ninjected: true\n'$$"


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_yaml_string_reads_back_unchanged(value: str) -> None:
    assert yaml.safe_load(f"key: {yaml_string(value)}\n") == {"key": value}


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_compose_string_doubles_every_dollar(value: str) -> None:
    loaded = yaml.safe_load(f"key: {compose_string(value)}\n")["key"]
    assert loaded.replace("$$", "\x00").count("$") == 0
    assert loaded.replace("$$", "$") == value


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(min_value=0, max_value=8))
@example("\n", 0).via("found by this test: only empty lines")
@example("\n\n", 2)
def test_yaml_block_reads_back_unchanged(value: str, indent: int) -> None:
    pad = indent + 2
    document = f"key: {yaml_block(value, pad)}\nafter: 1\n"
    assert yaml.safe_load(document) == {"key": value, "after": 1}


def test_yaml_block_is_a_literal_block_for_ordinary_config() -> None:
    assert yaml_block("a: 1\nb: [2]\n", 4) == "|\n    a: 1\n    b: [2]"
    assert yaml_block("secret", 4) == "|-\n    secret"


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(TEXT.filter(bool), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(PLAIN)
def test_to_yaml_reads_back_unchanged(value: object) -> None:
    assert yaml.safe_load(f"root:{to_yaml(value, 2)}\n") == {"root": value}


def test_dotenv_value_prefers_literal_single_quotes() -> None:
    assert dotenv_value("p@ss w$rd#1") == "'p@ss w$rd#1'"
    assert dotenv_value("") == "''"


def test_dotenv_value_escapes_in_double_quotes_when_it_must() -> None:
    assert dotenv_value("it's") == '"it\'s"'
    assert dotenv_value("a'b\"c\\d$e\nf") == '"a\'b\\"c\\\\d\\$e\\nf"'


def test_dotenv_value_refuses_nul_and_control_characters() -> None:
    with pytest.raises(RenderError):
        dotenv_value("a\x00b")
    with pytest.raises(RenderError):
        dotenv_value("a'\x1bb")


def test_nginx_string_quotes_one_token_and_refuses_variables_and_line_breaks() -> None:
    assert nginx_string('a "b" \\ c; } {') == '"a \\"b\\" \\\\ c; } {"'
    for bad in ("$host", "a\nb", "a\rb", "a\tb", "a\x00b"):
        with pytest.raises(RenderError):
            nginx_string(bad)


def test_label_value_accepts_versions_and_refuses_the_rest() -> None:
    assert label_value("1.0.0-test") == '"1.0.0-test"'
    for bad in ("a b", "-x", "x" * 64, "v1+build"):
        with pytest.raises(RenderError):
            label_value(bad)


# --- through the templates ----------------------------------------------------------------


def _production() -> AnswerFile:
    return AnswerFile.model_validate(
        {"version": 1, "target": "production", "domain": "codequal.example.com"}
    )


def _with(answers: AnswerFile, **update: object) -> AnswerFile:
    return answers.model_copy(update=update)


def test_hostile_domain_with_a_line_break_is_refused_by_the_nginx_escaper(
    tmp_path: Path,
) -> None:
    answers = _with(_production(), domain="evil.example.com;\nserver { listen 8443; }")
    with pytest.raises(RenderError, match="nginx"):
        render_plan(answers, Secrets(), RELEASE, tmp_path)


def test_hostile_domain_stays_one_value_in_compose_and_one_token_in_nginx(
    tmp_path: Path,
) -> None:
    answers = _with(_production(), domain=HOSTILE_DOMAIN)
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path)
    compose = yaml.safe_load(plan.file("docker-compose.yml").content)
    assert compose["services"]["codequal"]["environment"]["PUBLIC_URL"] == (
        f"https://{HOSTILE_DOMAIN}"
    )
    conf = plan.file("nginx/conf.d/codequal.conf").content.decode()
    assert conf.count("listen 8443") == 2  # only inside the quoted server_name values
    assert 'server_name "evil.example.com\\"; } server { listen 8443; } #";' in conf


def test_hostile_url_cannot_add_a_key_or_a_variable_to_compose(tmp_path: Path) -> None:
    answers = _production()
    deepwiki = answers.deepwiki.model_copy(update={"mode": "external", "url": HOSTILE_URL})
    answers = _with(answers, deepwiki=deepwiki)
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path)
    compose = yaml.safe_load(plan.file("docker-compose.yml").content)
    environment = compose["services"]["codequal"]["environment"]
    assert "injected" not in environment and "injected" not in compose
    assert environment["DEEPWIKI_URL"].replace("$$", "$") == HOSTILE_URL


def test_hostile_values_stay_values_in_kubernetes_manifests(tmp_path: Path) -> None:
    answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    deepwiki = answers.deepwiki.model_copy(update={"mode": "external", "url": HOSTILE_URL})
    answers = _with(answers, domain=HOSTILE_DOMAIN, deepwiki=deepwiki)
    plan = render_plan(answers, Secrets(), RELEASE, tmp_path)
    by_name = {o.kind + "/" + o.name: o.path for o in plan.kubernetes_objects}
    ingress = yaml.safe_load(plan.file(by_name["Ingress/codequal"]).content)
    assert ingress["spec"]["rules"][0]["host"] == HOSTILE_DOMAIN
    assert list(ingress["spec"]["rules"][0]) == ["host", "http"]
    env = yaml.safe_load(plan.file(by_name["ConfigMap/codequal-env"]).content)["data"]
    assert env["DEEPWIKI_URL"] == HOSTILE_URL
    assert "injected" not in env


def test_hostile_secret_values_stay_values_in_env_and_kubernetes_secret(tmp_path: Path) -> None:
    hostile = "k'ey\"\nEVIL=1 $(touch /tmp/x) ${HOME}"
    answers = _production()
    plan = render_plan(answers, Secrets(anthropic_api_key=hostile), RELEASE, tmp_path)
    env_lines = plan.file(".env").content.decode().splitlines()
    assert not [line for line in env_lines if line.startswith("EVIL")]
    k8s_answers = AnswerFile.model_validate(
        {"version": 1, "target": "kubernetes", "domain": "codequal.example.com"}
    )
    k8s = render_plan(k8s_answers, Secrets(anthropic_api_key=hostile), RELEASE, tmp_path / "k")
    path = next(o.path for o in k8s.kubernetes_objects if o.name == "codequal-secrets")
    data = yaml.safe_load(k8s.file(path).content)["stringData"]
    assert data["ANTHROPIC_API_KEY"] == hostile
    assert "EVIL" not in data
