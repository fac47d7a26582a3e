"""One image reference parser (``installer.engine.images``): what it reads, and that the
plan, both targets' apply and the bundle all read references through it and nothing else."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from installer.engine.images import (
    DOCKER_HUB,
    ImageReference,
    InvalidImageReference,
)
from installer.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("nginx", DOCKER_HUB, "library/nginx", None, None),
        ("nginx:1.27-alpine", DOCKER_HUB, "library/nginx", "1.27-alpine", None),
        ("docker.io/nginx:1", DOCKER_HUB, "library/nginx", "1", None),
        ("index.docker.io/library/nginx:1", DOCKER_HUB, "library/nginx", "1", None),
        ("prom/prometheus:v2.53.2", DOCKER_HUB, "prom/prometheus", "v2.53.2", None),
        ("ghcr.io/codequal/api:1@" + DIGEST, "ghcr.io", "codequal/api", "1", DIGEST),
        ("ghcr.io/codequal/api@" + DIGEST, "ghcr.io", "codequal/api", None, DIGEST),
        ("localhost/app", "localhost", "app", None, None),
        ("127.0.0.1:5000/corp/a/b:c", "127.0.0.1:5000", "corp/a/b", "c", None),
        ("registry.corp:5000/x", "registry.corp:5000", "x", None, None),
        ("codequal-test/standin:1", DOCKER_HUB, "codequal-test/standin", "1", None),
    ],
)
def test_references_read_as_docker_reads_them(
    text: str, domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    parsed = ImageReference.parse(text)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (domain, path, tag, digest)


def test_printing_adds_nothing_the_author_did_not_write_except_hub_names() -> None:
    assert str(ImageReference.parse("nginx")) == "docker.io/library/nginx"
    assert str(ImageReference.parse("nginx").with_default_tag()) == "docker.io/library/nginx:latest"
    pinned = ImageReference.parse(f"ghcr.io/a/b:1@{DIGEST}")
    assert str(pinned) == f"ghcr.io/a/b:1@{DIGEST}"
    assert str(pinned.without_digest()) == "ghcr.io/a/b:1"
    assert pinned.manifest_reference == DIGEST
    assert ImageReference.parse("a/b").manifest_reference == "latest"


def test_names_for_the_api_and_for_docker() -> None:
    hub = ImageReference.parse("nginx:1")
    assert (hub.api_host, hub.familiar_name, hub.name) == (
        "registry-1.docker.io",
        "nginx",
        "docker.io/library/nginx",
    )
    other = ImageReference.parse("ghcr.io/codequal/api:1")
    assert (other.api_host, other.familiar_name) == ("ghcr.io", "ghcr.io/codequal/api")


@pytest.mark.parametrize(
    ("text", "mirror", "expected"),
    [
        ("docker.io/library/nginx:1.27", "reg.corp:5000", "reg.corp:5000/library/nginx:1.27"),
        ("nginx", "reg.corp:5000/", "reg.corp:5000/library/nginx"),
        ("ghcr.io/codequal/api:1", "reg.corp:5000/cq", "reg.corp:5000/cq/codequal/api:1"),
        (f"ghcr.io/a/b@{DIGEST}", "reg.corp/x/y/", f"reg.corp/x/y/a/b@{DIGEST}"),
    ],
)
def test_with_mirror_keeps_the_path_under_the_mirrors(
    text: str, mirror: str, expected: str
) -> None:
    assert str(ImageReference.parse(text).with_mirror(mirror)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Nginx:1",
        "a:b:c",
        "a/b:-x",
        "x@sha256:zz",
        "bad_host.io:port/x",
        "a//b",
        "a/b:" + "t" * 129,
    ],
)
def test_what_is_not_a_reference_is_a_usage_error(text: str) -> None:
    with pytest.raises(InvalidImageReference) as caught:
        ImageReference.parse(text)
    assert caught.value.exit_code == ExitCode.USAGE
    assert repr(text) in caught.value.message
    assert caught.value.hint and "[registry[:port]/]path[:tag]" in caught.value.hint


# -- one parser for every path ----------------------------------------------------------


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every reference read through ``ImageReference.parse`` while the test runs."""
    calls: list[str] = []
    original = ImageReference.parse.__func__  # type: ignore[attr-defined]

    def spy(cls: type[ImageReference], reference: str) -> ImageReference:
        calls.append(reference)
        result: ImageReference = original(cls, reference)
        return result

    monkeypatch.setattr(ImageReference, "parse", classmethod(spy))
    return calls


def test_the_plan_rewrites_images_to_the_mirror_through_the_parser(
    parsed: list[str], tmp_path: Path
) -> None:
    from installer.release import load_release
    from installer.render import render_plan
    from tests.support.render_matrix import case, materialize, write_test_pki

    release = load_release("0.1.0")
    answers, secrets = materialize(
        case("production-managed-db-provided-tls-mirror-no-monitoring"),
        write_test_pki(tmp_path / "pki"),
    )
    render_plan(answers, secrets, release, tmp_path / "root")
    assert "docker.io/library/nginx:1.27-alpine" in parsed


def test_the_compose_targets_pull_reads_the_reference_through_the_parser(
    parsed: list[str],
) -> None:
    from installer.engine.docker import DockerEngine

    pulled: list[tuple[str, str | None]] = []

    class API:
        def pull(self, repository: str, *, tag: str | None, **_: Any) -> list[dict[str, Any]]:
            pulled.append((repository, tag))
            return []

    engine = DockerEngine()
    engine._client = type("Client", (), {"api": API()})()
    list(engine.pull("docker.io/library/nginx:1.27-alpine"))
    list(engine.pull(f"ghcr.io/codequal/api:1@{DIGEST}"))
    assert parsed == ["docker.io/library/nginx:1.27-alpine", f"ghcr.io/codequal/api:1@{DIGEST}"]
    assert pulled == [("nginx", "1.27-alpine"), (f"ghcr.io/codequal/api:1@{DIGEST}", None)]


def test_the_kubernetes_apply_checks_images_through_the_parser(
    parsed: list[str], tmp_path: Path
) -> None:
    from tests.support.fake_kube_api import FakeKubeAPI
    from tests.support.kube_install import answers, install

    mirrored = answers(registry={"mirror": "127.0.0.1:9", "insecure": True})
    with FakeKubeAPI() as api:
        run = install(mirrored, api.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path / "root")
    assert run.exit_code == 0, run.text()
    checked = "\n".join(e.message for e in run.of("images"))
    assert "127.0.0.1:9/codequal-test/standin:1: cannot be checked from here" in checked
    # Rendered through the parser (the mirror rewrite), then checked through it.
    assert parsed.count("codequal-test/standin:1") >= 1
    assert parsed.count("127.0.0.1:9/codequal-test/standin:1") >= 1


def test_the_images_check_reads_the_references_through_the_parser(parsed: list[str]) -> None:
    """``check --answers`` (its live ``images`` check) reads every image through the parser."""
    from installer.live.images import check_images, release_images
    from installer.live.result import LiveInput
    from tests.support.kube_install import answers

    mirrored = answers(registry={"mirror": "127.0.0.1:9", "insecure": True})
    inputs = LiveInput.for_answers(mirrored, environ={})
    expected = set(release_images(inputs).values())  # the release's own references
    parsed.clear()
    result = check_images(dataclasses.replace(inputs, timeout=1.0))
    assert result.name == "images"
    assert expected and expected <= set(parsed), (expected, parsed)


def test_a_bundle_push_reads_the_references_through_the_parser(
    parsed: list[str], tmp_path: Path
) -> None:
    from installer.bundle.format import ImageInfo, LayerInfo
    from installer.bundle.registry import RegistryTarget, RegistryUnreachable, push_images

    image = ImageInfo(
        references=["cqbundle-test/app:1"],
        id=DIGEST,
        config="images/config.json",
        config_size=2,
        layers=[LayerInfo(DIGEST, 2)],
        layer_paths=["images/layer.tar"],
        manifest_digest=DIGEST,
    )
    with pytest.raises(RegistryUnreachable):
        push_images(RegistryTarget("127.0.0.1:9"), tmp_path, [image], sleep=lambda _: None)
    assert parsed == ["cqbundle-test/app:1"]


# -- nothing else parses references ------------------------------------------------------


def _installer_sources() -> list[Path]:
    return sorted((ROOT / "installer").rglob("*.py"))


def test_docker_hub_and_its_library_prefix_are_known_in_one_module() -> None:
    """A second parser would need Hub's name or its ``library/`` prefix: only one has them."""
    offenders = []
    for path in _installer_sources():
        if path == ROOT / "installer/engine/images.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            hub = ("library/", "docker.io/", "index.docker.io")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and (node.value.startswith(hub) or node.value == "docker.io")
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if text.startswith("library/"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: f-string")
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if "DOCKER_HUB" in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: DOCKER_HUB =")
    assert offenders == []
