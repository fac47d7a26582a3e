"""Container deployment pulls what is missing, through ``registry.mirror``, with progress:
against a real registry (Debian's docker-registry on 127.0.0.1)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.apply_support import Install
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

IMAGES = ("codequal-test/standin:1", "codequal-test/postgres:1", "codequal-test/nginx:1")


@pytest.fixture
def mirrored(docker_engine: Any, registry: LocalRegistry) -> Iterator[list[str]]:
    """The release's images pushed to the registry, and not present locally under its name."""
    references = []
    for image in IMAGES:
        reference = registry.reference(image)
        repository, tag = reference.rsplit(":", 1)
        docker_engine.images.get(image).tag(repository, tag)
        for chunk in docker_engine.api.push(repository, tag=tag, stream=True, decode=True):
            assert "error" not in chunk, chunk
        docker_engine.images.remove(reference)
        references.append(reference)
    yield references
    for reference in references:
        with contextlib.suppress(Exception):
            docker_engine.images.remove(reference, force=True)


def test_missing_images_are_pulled_from_the_mirror_with_per_image_progress(
    install: Install, registry: LocalRegistry, mirrored: list[str]
) -> None:
    answers = install.answers("production", registry={"mirror": registry.address})
    run = install.apply(answers)
    assert run.exit_code == 0, run.describe()
    messages = run.step_messages("containers")
    for reference in mirrored:
        assert f"pulling   {reference}" in messages
        assert f"pulled    {reference}" in messages
    progress = [
        e
        for e in run.of_type("step.progress")
        if e["step"] == "containers" and e["unit"] == "images"
    ]
    assert [(e["current"], e["total"]) for e in progress][-1] == (3, 3)
    images = {
        c.labels["com.docker.compose.service"]: c.attrs["Config"]["Image"]
        for c in install.containers()
    }
    assert images["codequal"] == registry.reference("codequal-test/standin:1")
    assert images["postgres"] == registry.reference("codequal-test/postgres:1")
    status, body = install.https_get("/health")
    assert status == 200 and body["database"]["migrated"] is True
