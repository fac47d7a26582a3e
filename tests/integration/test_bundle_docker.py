"""Bundles made from real images in the real Docker Engine: reproducible, verified after a
copy, damage named with exit 4, images loaded back into a Docker that lacks them."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from installer.bundle import open_bundle, verify_bundle
from installer.bundle.create import create_bundle, needs_staging
from installer.bundle.docker_load import load_images_into_docker
from installer.bundle.reader import locate_bundle, read_index
from installer.errors import BundleIntegrityError, ExitCode
from installer.release import load_release
from tests.bundle_helpers import RawMember, rewrite_bundle
from tests.integration.bundle_support import (
    APP,
    BASE,
    TOOL,
    cached_wheelhouse,
    ensure_bundle_images,
    release_file,
)
from tests.unit.cli_helpers import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images(docker_engine: Any) -> dict[str, str]:
    return ensure_bundle_images(docker_engine)


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    return cached_wheelhouse()


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, str], wheelhouse: Path
) -> tuple[Path, Path]:
    """A signed bundle of base, app and tool (base is also app's lower layer)."""
    directory = tmp_path_factory.mktemp("signed")
    assert run_cli("bundle", "keygen", "--out", str(directory / "k")).exit_code == 0
    release = release_file(directory, "7.0.0-bundle", with_base=True)
    out = directory / "codequal-7.0.0-bundle.bundle"
    result = run_cli(
        "bundle", "create", "--release", str(release), "--out", str(out),
        "--wheelhouse", str(wheelhouse), "--sign-key", str(directory / "k.key"),
        "--no-installer-image",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, directory / "k.pub"


def test_create_holds_every_part_and_verifies_after_a_copy(
    signed: tuple[Path, Path], tmp_path: Path, images: dict[str, str]
) -> None:
    bundle, public = signed
    copy = tmp_path / "elsewhere" / bundle.name
    copy.parent.mkdir()
    shutil.copy(bundle, copy)
    result = run_cli("bundle", "verify", str(copy), "--key", str(public))
    assert result.exit_code == 0, result.output

    index = read_index(locate_bundle(copy))
    names = set(index.sums)
    assert {"release.yaml", "answers.example.yaml", "codequal-installer"} <= names
    assert "wheelhouse/wheels.tar.zst" in names  # the installer's, pip's and the others
    assert any(n.startswith("wheelhouse/zstandard-") for n in names)
    assert any(n.startswith("templates/") for n in names)
    by_reference = {ref: image for image in index.metadata.images for ref in image.references}
    assert {by_reference[ref].id for ref in (BASE, APP, TOOL)} == {
        images[BASE],
        images[APP],
        images[TOOL],
    }
    # The base layer is stored once: as data under one path, a link under the other.
    layer_files = [n for n in names if n.endswith("/layer.tar")]
    assert len(layer_files) == 3  # base, app's own, tool's own
    assert len(index.metadata.symlinks) == 1
    assert index.metadata.images_size < sum(i.size for i in index.metadata.images)

    result = run_cli("bundle", "inspect", str(copy), "--key", str(public))
    assert result.exit_code == 0
    for reference in (BASE, APP, TOOL):
        assert reference in result.stdout
    assert "signature valid" in result.stdout


@pytest.mark.parametrize("with_base", [True, False])
def test_the_same_inputs_give_the_same_bytes(
    tmp_path: Path, images: dict[str, str], wheelhouse: Path, docker_engine: Any, with_base: bool
) -> None:
    release = load_release(str(release_file(tmp_path, "7.0.1-bundle", with_base=with_base)))
    references = [APP, TOOL, *([BASE] if with_base else [])]
    # With base, Docker links its layer in a direction it picks at random: staged path.
    assert needs_staging(docker_engine, references) is with_base
    outputs = [
        create_bundle(release, tmp_path / f"{n}.bundle", wheelhouse=wheelhouse).path
        for n in range(3)
    ]
    assert outputs[0].read_bytes() == outputs[1].read_bytes() == outputs[2].read_bytes()


def test_damage_to_a_real_bundle_is_named(signed: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, public = signed
    index = read_index(locate_bundle(bundle))
    layer = next(
        path for image in index.metadata.images for path in image.layer_paths
        if path not in index.metadata.symlinks
    )  # fmt: skip

    def flip(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == layer:
                data = bytearray(member.data)
                data[-1000] ^= 0x40
                member.data = bytes(data)
        return found

    bad = rewrite_bundle(bundle, tmp_path / "bad.bundle", flip)
    result = run_cli("bundle", "verify", str(bad), "--key", str(public))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert f"member {layer!r}: SHA-256 mismatch" in result.stderr

    truncated = tmp_path / "truncated.bundle"
    truncated.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    result = run_cli("bundle", "verify", str(truncated))
    assert result.exit_code == ExitCode.BUNDLE_INTEGRITY
    assert "truncated" in result.stderr


def test_parts_of_a_real_bundle(tmp_path: Path, images: dict[str, str], wheelhouse: Path) -> None:
    release = release_file(tmp_path, "7.0.2-bundle", with_base=False)
    out = tmp_path / "split" / "codequal-7.0.2-bundle.bundle"
    result = run_cli(
        "bundle", "create", "--release", str(release), "--out", str(out),
        "--wheelhouse", str(wheelhouse), "--part-size", "4M", "--no-installer-image",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    header = out.with_name(out.name + ".parts")
    parts = sorted(out.parent.glob(out.name + ".part0*"))
    assert header.is_file() and len(parts) > 2 and not out.exists()
    assert verify_bundle(header).verified
    data = bytearray(parts[-2].read_bytes())
    data[0] ^= 1
    parts[-2].write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError) as caught:
        verify_bundle(header)
    assert caught.value.problems == [
        f"part {len(parts) - 1} ({parts[-2].name}): SHA-256 mismatch: the part is corrupt"
    ]


def _remove(client: Any, references: list[str]) -> None:
    import docker

    for reference in references:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(reference, force=True)


@pytest.mark.parametrize("from_extraction", [False, True])
def test_images_load_into_a_docker_that_lacks_them(
    signed: tuple[Path, Path],
    tmp_path: Path,
    docker_engine: Any,
    images: dict[str, str],
    from_extraction: bool,
) -> None:
    import docker

    bundle, public = signed
    opened = open_bundle(bundle, tmp_path / "work", key=public, extract_images=from_extraction)
    _remove(docker_engine, [APP, TOOL, BASE])
    for reference in (APP, TOOL, BASE):
        with pytest.raises(docker.errors.ImageNotFound):
            docker_engine.images.get(reference)
    seen: list[Any] = []
    try:
        loaded = opened.load_images(progress=seen.append)
    finally:
        ensure_bundle_images(docker_engine)  # put them back for the other tests
    assert {(image.reference, image.id) for image in loaded} == {
        (APP, images[APP]), (TOOL, images[TOOL]), (BASE, images[BASE])
    }  # fmt: skip
    assert seen and seen[-1].finished and seen[-1].done >= opened.metadata.images_size
    output = docker_engine.containers.run(APP, ["cat", "/content"], remove=True)
    assert output == b"app\n"


def test_a_damaged_bundle_is_not_loaded(
    signed: tuple[Path, Path], tmp_path: Path, docker_engine: Any
) -> None:
    bundle, _ = signed
    index = read_index(locate_bundle(bundle))
    victim = index.metadata.images[0].config

    def flip(found: list[RawMember]) -> list[RawMember]:
        for member in found:
            if member.info.name == victim:
                member.data = member.data.replace(b'"', b"'", 1)
        return found

    bad = rewrite_bundle(bundle, tmp_path / "bad.bundle", flip)
    with pytest.raises(BundleIntegrityError, match="SHA-256 mismatch"):
        load_images_into_docker(read_index(locate_bundle(bad)), docker_client=docker_engine)


def test_a_missing_image_is_a_prerequisite_error(tmp_path: Path, wheelhouse: Path) -> None:
    release = tmp_path / "r.yaml"
    release.write_text(
        release_file(tmp_path, "x", with_base=False)
        .read_text()
        .replace(APP, "cqbundle-test/none:1")
    )
    result = run_cli(
        "bundle", "create", "--release", str(release), "--out", str(tmp_path / "o.bundle"),
        "--wheelhouse", str(wheelhouse), "--no-installer-image",
    )  # fmt: skip
    assert result.exit_code == ExitCode.PREREQUISITES
    assert "cqbundle-test/none:1" in result.stderr
    assert not (tmp_path / "o.bundle").exists()


def _save_members(stream: Any) -> list[tuple[str, str, str]]:
    """(name, SHA-256 of the data, link target) of every member of a docker save stream."""
    import hashlib

    from installer.bundle.create import _sorted_manifest
    from installer.bundle.tarstream import ChunkReader, iter_tar

    found = []
    reader = ChunkReader(lambda: stream.read(1 << 20))
    for info, data in iter_tar(reader, require_end=True):
        digest = hashlib.sha256()
        if info.name == "manifest.json":  # its images come in Go's random map order
            digest.update(_sorted_manifest(data.read()))
        while chunk := data.read_chunk(1 << 20):
            digest.update(chunk)
        found.append((info.name, digest.hexdigest(), info.linkname))
    return found


def test_the_engine_socket_gives_the_save_the_docker_command_gives(
    images: dict[str, str], docker_engine: Any
) -> None:
    """``bundle create`` reads the save straight from the Engine the resolver names (HTTP
    over its socket, chunked encoding and all): member for member, the bytes the docker
    command writes."""
    from installer.bundle.create import _cli_save_stream, _engine_save_stream
    from installer.engine.endpoint import docker_endpoint

    endpoint = docker_endpoint()
    assert endpoint.socket_path is not None
    references = [APP, TOOL]  # no shared base: Docker's output is the same every time
    with _engine_save_stream(endpoint, references) as stream:
        from_socket = _save_members(stream)
    docker = shutil.which("docker")
    assert docker is not None
    with _cli_save_stream(docker, references) as stream:
        from_command = _save_members(stream)
    assert from_socket == from_command
    assert any(name.endswith("/layer.tar") for name, _, _ in from_socket)


def test_a_save_the_engine_refuses_names_the_images_and_docker_s_reason(
    images: dict[str, str], docker_engine: Any
) -> None:
    from installer.bundle.create import _engine_save_stream
    from installer.engine.endpoint import docker_endpoint
    from installer.errors import ImageSaveError

    with (
        pytest.raises(ImageSaveError, match=r"docker save of cqbundle-test/none:1 failed: \w+"),
        _engine_save_stream(docker_endpoint(), ["cqbundle-test/none:1"]) as stream,
    ):
        stream.read(1 << 20)  # the answer comes with the first read
