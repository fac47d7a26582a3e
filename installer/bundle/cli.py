"""``codequal-installer bundle ...``: create, verify, inspect, keygen, extract, load, push.

Imports nothing heavy at module level: the command line's start-up stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from installer.bundle.progress import TransferDisplay


@click.group("bundle")
def bundle() -> None:
    """Offline bundles: one (optionally signed) file that installs CodeQual without network."""


@bundle.command("create")
@click.option(
    "--release",
    "release_name",
    required=True,
    help="Release version (shipped or in CODEQUAL_RELEASES_DIR) or manifest path.",
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Answer file: its image overrides apply, and it ships as the example.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    help="Bundle file to write (default: ./codequal-<version>.bundle).",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, exists=True),
    help="ed25519 private key (PEM) to sign the bundle's metadata with.",
)
@click.option(
    "--part-size", help="Split into parts of this size (e.g. 700M, 4G) with a .parts header."
)
@click.option(
    "--wheelhouse",
    "wheelhouse_path",
    type=click.Path(file_okay=False),
    help="Reuse this wheelhouse; made (and kept) there when it is empty or missing.",
)
@click.option(
    "--python",
    "python_versions",
    multiple=True,
    metavar="X.Y",
    help="Python version the target runs (repeatable; default: this one's).",
)
@click.option(
    "--level",
    default=3,
    show_default=True,
    type=click.IntRange(1, 19),
    help="zstd compression level.",
)
@click.option(
    "--installer-image",
    metavar="REF",
    help="Ship this installer image instead of codequal/installer:<this installer's "
    "version> (made by packaging/build-installer-image).",
)
@click.option(
    "--no-installer-image",
    is_flag=True,
    help="Leave the installer image out: a bundle for hosts with Python 3.10+ only.",
)
def bundle_create(
    *,
    release_name: str,
    answers_path: str | None,
    out_path: str | None,
    sign_key: str | None,
    part_size: str | None,
    wheelhouse_path: str | None,
    python_versions: tuple[str, ...],
    level: int,
    installer_image: str | None,
    no_installer_image: bool,
) -> None:
    """Make codequal-<version>.bundle from the release's local images.

    Every bundle carries the installer image (codequal/installer:<this installer's
    version>, built with packaging/build-installer-image) for hosts without Python 3.10:
    when it is not in the local Docker Engine, nothing is written and the command exits 3.
    """
    import tempfile

    from installer.bundle.create import create_bundle
    from installer.bundle.format import parse_size
    from installer.bundle.wheelhouse import build_wheelhouse
    from installer.release import load_release
    from installer.sizes import human_size

    release = load_release(release_name)
    size = parse_size(part_size) if part_size else None
    installer_image = _installer_image(installer_image, no_installer_image)
    answers = None
    answers_text = None
    if answers_path is not None:
        from installer.validation import load_answers

        answers = load_answers(answers_path)
        answers_text = Path(answers_path).read_bytes()
    out = Path(out_path or f"codequal-{release.version}.bundle")
    with tempfile.TemporaryDirectory(prefix="codequal-wheelhouse-") as scratch:
        wheelhouse = Path(wheelhouse_path) if wheelhouse_path else Path(scratch)
        if not wheelhouse.is_dir() or not any(wheelhouse.glob("*.whl")):
            click.echo(
                f"making the wheelhouse in {wheelhouse} (pip, from the package index)", err=True
            )
            build_wheelhouse(wheelhouse, list(python_versions) or None)
        with TransferDisplay() as progress:
            created = create_bundle(
                release,
                out,
                wheelhouse=wheelhouse,
                answers_text=answers_text,
                answers=answers,
                sign_key=Path(sign_key) if sign_key else None,
                part_size=size,
                progress=progress,
                level=level,
                installer_image=installer_image,
            )
    metadata = created.metadata
    click.echo(
        f"{created.path}: {human_size(created.compressed_size)} "
        f"({human_size(metadata.uncompressed_size)} uncompressed), "
        f"{len(metadata.images)} image(s), {metadata.files} files, "
        f"{'signed' if metadata.key_id else 'unsigned'}"
    )
    for part in created.parts:
        click.echo(f"  {part}")


def _installer_image(reference: str | None, leave_out: bool) -> str | None:
    """The installer image the bundle ships (``None``: none), checked present before the
    wheelhouse or the bundle is written."""
    from installer.bundle import installer_image as image
    from installer.errors import UsageError

    if leave_out:
        if reference is not None:
            raise UsageError(
                "--installer-image and --no-installer-image contradict each other",
                hint="give one of them",
            )
        return None
    from installer.engine.docker import docker_client

    chosen = reference or image.default_reference()
    client = docker_client()
    try:
        image.check_ready(chosen, default=reference is None, client=client)
    finally:
        client.close()
    return chosen


def _report_json(report: Any) -> dict[str, Any]:
    metadata = report.metadata
    return {
        "bundle": report.index.source.display,
        "verified": report.verified,
        "method": report.method or None,
        "body_sha256": metadata.body_sha256,
        "signature": report.signature,
        "release": {"name": metadata.release_name, "version": metadata.release_version},
        "installer_version": metadata.installer_version,
        "platform": {
            "os": metadata.platform.os,
            "machine": metadata.platform.machine,
            "python": metadata.platform.python,
        },
        "compressed_size": report.index.compressed_size,
        "uncompressed_size": metadata.uncompressed_size,
        "files": metadata.files,
        "images_size": metadata.images_size,
        "images": [image.to_json() for image in metadata.images],
        "parts": len(report.index.source.parts_header.parts)
        if report.index.source.parts_header
        else None,
    }


def _print_report(report: Any) -> None:
    from installer.sizes import human_size

    metadata = report.metadata
    source = report.index.source
    click.echo(f"bundle:    {source.display}")
    if source.parts_header is not None:
        click.echo(
            f"parts:     {len(source.parts_header.parts)} of at most "
            f"{human_size(source.parts_header.part_size)}"
        )
    click.echo(
        f"release:   {metadata.release_name} {metadata.release_version} "
        f"(installer {metadata.installer_version})"
    )
    click.echo(f"platform:  {metadata.platform.describe()}")
    click.echo(f"signature: {report.signature}")
    click.echo(
        f"size:      {human_size(report.index.compressed_size)} compressed, "
        f"{human_size(metadata.uncompressed_size)} uncompressed, {metadata.files} files"
    )
    click.echo(f"images:    {human_size(metadata.images_size)} stored (shared layers once)")
    for image in metadata.images:
        refs = ", ".join(image.references) or image.id
        click.echo(
            f"  {refs}  {human_size(image.size)}  {len(image.layers)} layer(s)  {image.id[:19]}"
        )


@bundle.command("verify")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True),
    help="ed25519 public key (PEM) the bundle must be signed with.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Read and check every member even when the body hash matches.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bundle_verify(file: str, key: str | None, deep: bool, as_json: bool) -> None:
    """Check FILE (or its .parts): parts, signature, aggregate hash, body. Exit 4 if bad.

    The body is hashed once against the signed body hash; when it differs (or with
    --deep) every member is checked, and the damaged, missing or extra ones are named.
    """
    from installer.bundle import verify_bundle

    with TransferDisplay() as progress:
        report = verify_bundle(file, key=Path(key) if key else None, progress=progress, deep=deep)
    if as_json:
        click.echo(json.dumps(_report_json(report), indent=2))
        return
    click.echo(
        f"{report.index.source.display}: OK: {report.metadata.files} files and "
        f"{len(report.metadata.symlinks)} links match ({report.method}), {report.signature}"
    )


@bundle.command("inspect")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True),
    help="Also check the signature against this public key.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def bundle_inspect(file: str, key: str | None, as_json: bool) -> None:
    """Show release, images, platform and signature of FILE without extracting it."""
    from installer.bundle import inspect_bundle

    report = inspect_bundle(file, key=Path(key) if key else None)
    if as_json:
        click.echo(json.dumps(_report_json(report), indent=2))
    else:
        _print_report(report)


@bundle.command("keygen")
@click.option(
    "--out",
    "prefix",
    required=True,
    type=click.Path(dir_okay=False),
    help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub.",
)
def bundle_keygen(prefix: str) -> None:
    """Make an ed25519 key pair for signing bundles."""
    from installer.bundle.signing import generate_key_pair

    private, public = generate_key_pair(Path(prefix))
    click.echo(f"private key: {private} (keep it secret)\npublic key:  {public}")


@bundle.command("extract")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--key", type=click.Path(dir_okay=False, exists=True), help="Public key to check.")
@click.option("--no-images", is_flag=True, help="Leave the images in the bundle.")
def bundle_extract(file: str, directory: str, key: str | None, no_images: bool) -> None:
    """Verify FILE and extract it into DIRECTORY (new or empty), hardened."""
    from installer.bundle import open_bundle

    with TransferDisplay() as progress:
        opened = open_bundle(
            file,
            Path(directory),
            key=Path(key) if key else None,
            extract_images=not no_images,
            progress=progress,
        )
    click.echo(f"{directory}: {opened.metadata.files} files extracted, {opened.signature}")
    click.echo(f"run the installer from it: {Path(directory) / 'codequal-installer'} --help")


@bundle.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--key", type=click.Path(dir_okay=False, exists=True), help="Public key to check.")
def bundle_load(file: str, key: str | None) -> None:
    """Stream FILE's images into the local Docker Engine, verifying them on the way."""
    from installer.bundle.docker_load import load_images_into_docker
    from installer.bundle.reader import locate_bundle, read_index

    source = locate_bundle(file)
    source.check_parts()
    index = read_index(source)
    index.check_signature(Path(key) if key else None)
    with TransferDisplay() as progress:
        loaded = load_images_into_docker(index, progress=progress)
    for image in loaded:
        click.echo(f"loaded {image.reference} ({image.id[:19]})")


@bundle.command("push")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--mirror", help="Registry host[:port][/path] (default: the answer file's registry.mirror)."
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Answer file whose registry section to use.",
)
@click.option("--insecure", is_flag=True, default=None, help="Allow plain HTTP / unverified TLS.")
@click.option("--ca-file", type=click.Path(dir_okay=False, exists=True), help="Corporate CA (PEM).")
@click.option(
    "--username", help="Registry user; the password comes from CODEQUAL_REGISTRY_PASSWORD."
)
@click.option("--key", type=click.Path(dir_okay=False, exists=True), help="Public key to check.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="Directory to extract the images under (default: $TMPDIR); removed afterwards.",
)
def bundle_push(
    *,
    file: str,
    mirror: str | None,
    answers_path: str | None,
    insecure: bool | None,
    ca_file: str | None,
    username: str | None,
    key: str | None,
    workdir: str | None,
) -> None:
    """Verify and extract FILE's images, then push them to the registry mirror."""
    import os
    import shutil
    import tempfile

    from installer.bundle import open_bundle
    from installer.engine.registry import RegistryMirror
    from installer.errors import UsageError

    section: Any = None
    if answers_path is not None:
        from installer.validation import load_answers

        section = load_answers(answers_path).registry
    mirror = mirror or (section.mirror if section else None)
    if not mirror:
        raise UsageError(
            "no registry to push to", hint="give --mirror or an answer file with registry.mirror"
        )
    target = RegistryMirror(
        mirror=mirror,
        insecure=bool(
            insecure if insecure is not None else (section.insecure if section else False)
        ),
        ca_file=Path(ca_file)
        if ca_file
        else (Path(section.ca_file) if section and section.ca_file else None),
        username=username or (section.username if section else None),
        password=os.environ.get("CODEQUAL_REGISTRY_PASSWORD"),
    )
    # A new directory each run, removed at the end whatever happened: the same command can
    # be run again after a failure (the push then skips what reached the registry).
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="codequal-bundle-", dir=workdir))
    try:
        root = scratch / "bundle"
        with TransferDisplay() as progress:
            opened = open_bundle(file, root, key=Path(key) if key else None, progress=progress)
            pushed_images = opened.push_images(target, progress=progress)
        for pushed in pushed_images:
            state = (
                "present"
                if pushed.manifest_skipped
                else (
                    f"{pushed.uploaded_blobs} uploaded, {pushed.skipped_blobs} present, "
                    f"{pushed.mounted_blobs} mounted"
                )
            )
            click.echo(f"{pushed.pinned} ({pushed.source}): {state}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
