"""Real Prometheus, Alertmanager and blackbox exporter images for end-to-end alerting tests.

    codequal-test/prometheus:1     Debian's prometheus        (ENTRYPOINT prometheus)
    codequal-test/alertmanager:1   Debian's alertmanager      (ENTRYPOINT alertmanager)
    codequal-test/blackbox:1       Debian's blackbox exporter (ENTRYPOINT blackbox_exporter)
    codequal-test/standin:alerting the stand-in of this tree (tests/images/standin), under a tag
                                   of its own: the shared tags are rebuilt by whichever
                                   checkout's tests ran last, and these tests need its /metrics

No registry can be reached, so the images are made here: the binaries of this machine's Debian
packages (prometheus, prometheus-alertmanager, prometheus-blackbox-exporter; the same Debian
release as the test base) copied onto the debootstrap-made base of :mod:`tests.support.images`.
Each takes its arguments the way the official images do (the binary is the entrypoint), so
the Compose file's ``command:`` lines run as they would in production. Like the other test
images they carry the hash of their inputs and are built again only when those change.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.support.images import (
    INPUTS_LABEL,
    RECIPE_REVISION,
    ImageBuildError,
    Log,
    ServiceImage,
    _base_inputs,
    _build_lock,
    _build_service,
    _digest,
    _docker_client,
    _ensure_base,
    _label_of,
    _service_inputs,
    _stderr_log,
    _tree_digest,
)

PROMETHEUS = "codequal-test/prometheus:1"
ALERTMANAGER = "codequal-test/alertmanager:1"
BLACKBOX = "codequal-test/blackbox:1"

# reference -> (the Debian binary, its name in the image, the user it runs as, data directory)
# Debian's alertmanager reads its notification templates from the package's share directory
# (upstream's binary embeds them); the directory is copied along.
_SHARED: dict[str, str] = {"codequal-test/alertmanager:1": "/usr/share/prometheus/alertmanager"}
_PROGRAMS: dict[str, tuple[str, str, str, str]] = {
    PROMETHEUS: ("/usr/bin/prometheus", "prometheus", "65534:65534", "/prometheus"),
    ALERTMANAGER: (
        "/usr/bin/prometheus-alertmanager",
        "alertmanager",
        "65534:65534",
        "/alertmanager",
    ),
    BLACKBOX: (
        "/usr/bin/prometheus-blackbox-exporter",
        "blackbox_exporter",
        "65534:65534",
        "/tmp",  # it keeps no data
    ),
}
STANDIN = ServiceImage(
    "codequal-test/standin:alerting", "standin", {"STANDIN_VERSION": "1.0.0-alerting"}
)
MONITORING_IMAGES: tuple[str, ...] = (*_PROGRAMS, STANDIN.reference)

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
ARG PROGRAM
ARG DATA
ARG RUN_AS
ARG SHARE=/usr/local/share/monitoring-empty
COPY program /usr/local/bin/${PROGRAM}
COPY share ${SHARE}
RUN mkdir -p ${DATA} && chown ${RUN_AS} ${DATA} \\
 && ln -s /usr/local/bin/${PROGRAM} /usr/local/bin/entrypoint
USER ${RUN_AS}
WORKDIR ${DATA}
ENTRYPOINT ["/usr/local/bin/entrypoint"]
"""


def _inputs(reference: str, binary: bytes) -> str:
    _, name, user, data = _PROGRAMS[reference]
    shared = _SHARED.get(reference)
    share_digest = _tree_digest(Path(shared)) if shared else ""
    return _digest(
        RECIPE_REVISION,
        "monitoring",
        _base_inputs(),
        DOCKERFILE,
        name,
        user,
        data,
        binary,
        shared or "",
        share_digest,
    )


def ensure_monitoring_images(log: Log = _stderr_log) -> list[str]:
    """Build whichever of the three images is missing or stale; the references built."""
    import docker

    for binary, *_ in _PROGRAMS.values():
        if not Path(binary).is_file():
            raise ImageBuildError(
                f"{binary} is missing (apt-get install prometheus prometheus-alertmanager "
                "prometheus-blackbox-exporter)"
            )
    client = _docker_client()
    built: list[str] = []
    with _build_lock():
        for reference, (binary_path, name, user, data) in _PROGRAMS.items():
            binary = Path(binary_path).read_bytes()
            inputs = _inputs(reference, binary)
            if _label_of(client, reference) == inputs:
                continue
            base, _ = _ensure_base(client, False, log)
            log(f"building {reference} from {binary_path}")
            with tempfile.TemporaryDirectory(prefix="monitoring-image-") as context:
                (Path(context) / "Dockerfile").write_text(DOCKERFILE)
                shutil.copy2(binary_path, Path(context) / "program")
                shared = _SHARED.get(reference)
                if shared:
                    shutil.copytree(shared, Path(context) / "share")
                else:
                    (Path(context) / "share").mkdir()
                try:
                    client.images.build(
                        path=context,
                        tag=reference,
                        buildargs={
                            "BASE": base,
                            "PROGRAM": name,
                            "DATA": data,
                            "RUN_AS": user,
                            **({"SHARE": shared} if shared else {}),
                        },
                        labels={INPUTS_LABEL: inputs},
                        pull=False,
                        rm=True,
                        forcerm=True,
                        network_mode="none",
                    )
                except (docker.errors.BuildError, docker.errors.APIError) as e:
                    raise ImageBuildError(f"docker build {reference} failed: {e}") from e
            built.append(reference)
        inputs = _service_inputs(STANDIN, _base_inputs())
        if _label_of(client, STANDIN.reference) != inputs:
            base, _ = _ensure_base(client, False, log)
            _build_service(client, STANDIN, base, inputs, log)
            built.append(STANDIN.reference)
    return built


if __name__ == "__main__":
    print(ensure_monitoring_images())
