"""Environment detection: what kind of place the installer is running in.

Container runtimes present, whether the installer itself runs inside a container, the
Kubernetes flavour (OpenShift by its API groups), the cloud provider from DMI data in
sysfs, and whether the host looks air-gapped. Everything is read from files under a
root directory and from measurements already taken, so tests point ``root`` at a
directory tree of their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeAlias

from installer.checks.docker_probe import which
from installer.checks.measurements import DockerInfo, Environment, KubernetesInfo, Resolution

# The file system to read: "/" on a real host, a directory of fixtures in tests.
Root: TypeAlias = "str | os.PathLike[str]"

# Azure writes this asset tag into every VM's chassis record.
_AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
# (DMI file, substring, provider), first match wins; compared case-insensitively.
_DMI_SIGNATURES: tuple[tuple[str, str, str], ...] = (
    ("chassis_asset_tag", _AZURE_ASSET_TAG, "azure"),
    ("chassis_asset_tag", "OracleCloud.com", "oracle"),
    ("sys_vendor", "Amazon EC2", "aws"),
    ("bios_vendor", "Amazon EC2", "aws"),
    ("product_version", "amazon", "aws"),
    ("sys_vendor", "Google", "gcp"),
    ("product_name", "Google Compute Engine", "gcp"),
    ("sys_vendor", "DigitalOcean", "digitalocean"),
    ("sys_vendor", "Hetzner", "hetzner"),
    ("sys_vendor", "Alibaba Cloud", "alibaba"),
    ("product_name", "Alibaba Cloud ECS", "alibaba"),
    ("sys_vendor", "Tencent Cloud", "tencent"),
    ("sys_vendor", "Scaleway", "scaleway"),
    ("sys_vendor", "Linode", "linode"),
    ("sys_vendor", "Akamai", "linode"),
    ("sys_vendor", "Vultr", "vultr"),
    ("sys_vendor", "Exoscale", "exoscale"),
    ("sys_vendor", "OpenStack Foundation", "openstack"),
    ("product_name", "OpenStack Nova", "openstack"),
)
_DMI_FILES = ("sys_vendor", "product_name", "product_version", "bios_vendor", "chassis_asset_tag")

# Container runtime: (name, executables, sockets relative to root). Docker's socket is the
# one the endpoint resolver names (installer.engine.endpoint), not a list of its own.
_RUNTIMES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("docker", ("dockerd", "docker"), ()),
    ("podman", ("podman",), ("run/podman/podman.sock",)),
    ("containerd", ("containerd",), ("run/containerd/containerd.sock",)),
    ("cri-o", ("crio",), ("var/run/crio/crio.sock", "run/crio/crio.sock")),
)

# Kubernetes distributions recognisable from the server's gitVersion.
_GIT_VERSION_FLAVOURS = (
    ("+k3s", "k3s"),
    ("+rke2", "rke2"),
    ("-eks-", "eks"),
    ("-gke.", "gke"),
)
_PROVIDER_FLAVOURS = (("aws://", "eks"), ("gce://", "gke"), ("azure://", "aks"))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().strip()
    except OSError:
        return None


def container_runtimes(
    root: Root, environ: Mapping[str, str], docker: DockerInfo | None = None
) -> tuple[str, ...]:
    """Container runtimes installed here: an executable on PATH or a socket in place."""
    from installer.engine.endpoint import docker_endpoint

    path = environ.get("PATH", os.defpath)
    docker_socket = docker_endpoint(environ).socket_path
    found = []
    for name, executables, listed in _RUNTIMES:
        sockets = (docker_socket.lstrip("/"),) if name == "docker" and docker_socket else listed
        present = any(which(exe, path) for exe in executables) or any(
            os.path.exists(os.path.join(root, s)) for s in sockets
        )
        if name == "docker" and docker is not None and docker.reachable:
            present = True
        if present:
            found.append(name)
    return tuple(found)


def inside_container(root: Root, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(kind, evidence) when this process runs in a container, else (None, None)."""
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes", "KUBERNETES_SERVICE_HOST is set (a pod)"
    if os.path.exists(os.path.join(root, "run/.containerenv")):
        return "podman", "/run/.containerenv exists"
    if os.path.exists(os.path.join(root, ".dockerenv")):
        return "docker", "/.dockerenv exists"
    container = environ.get("container")
    if container:
        return container, f"container={container} is set"
    cgroup = _read(os.path.join(root, "proc/1/cgroup")) or ""
    for marker, kind in (
        ("kubepods", "kubernetes"),
        ("/docker/", "docker"),
        ("/docker-", "docker"),
        ("/lxc/", "lxc"),
        ("/libpod-", "podman"),
    ):
        if marker in cgroup:
            return kind, f"/proc/1/cgroup names {marker.strip('/-')}"
    return None, None


def cloud_provider(root: Root) -> tuple[str | None, str | None]:
    """(provider, evidence) from DMI data in sysfs (and Xen's hypervisor UUID)."""
    dmi = os.path.join(root, "sys/class/dmi/id")
    values = {name: _read(os.path.join(dmi, name)) for name in _DMI_FILES}
    for name, needle, provider in _DMI_SIGNATURES:
        value = values.get(name)
        if value and needle.lower() in value.lower():
            return provider, f"DMI {name}: {value}"
    uuid = _read(os.path.join(root, "sys/hypervisor/uuid"))
    if uuid and uuid.lower().startswith("ec2"):
        return "aws", "Xen hypervisor UUID starts with ec2"
    if not any(values.values()):
        return None, "no DMI data readable"
    return None, f"DMI sys_vendor: {values.get('sys_vendor') or 'unknown'}"


def has_default_route(root: Root) -> bool | None:
    """Whether the kernel has an IPv4 or IPv6 default route; None when unreadable."""
    ipv4 = _read(os.path.join(root, "proc/net/route"))
    ipv6 = _read(os.path.join(root, "proc/net/ipv6_route"))
    if ipv4 is None and ipv6 is None:
        return None
    for line in (ipv4 or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "00000000" and int(fields[3], 16) & 0x1:
            return True
    for line in (ipv6 or "").splitlines():
        fields = line.split()
        if (
            len(fields) >= 10
            and fields[0] == "0" * 32
            and fields[1] == "00"
            and fields[9] != "lo"
            and int(fields[8], 16) & 0x1  # RTF_UP
            and not int(fields[8], 16) & 0x200  # RTF_REJECT: the unreachable placeholder
        ):
            return True
    return False


def looks_airgapped(
    root: Root,
    environ: Mapping[str, str],
    registry: Resolution | None,
    docker: DockerInfo | None = None,
) -> tuple[bool | None, str]:
    """(air-gapped?, evidence): no default route, or the public registry's name does not
    resolve. A configured proxy makes name resolution inconclusive."""
    route = has_default_route(root)
    if route is False:
        return True, "no default route"
    proxy = next(
        (environ[k] for k in ("HTTPS_PROXY", "https_proxy") if environ.get(k)),
        docker.https_proxy if docker is not None else None,
    )
    if registry is None:
        return None, "the public registry was not looked up"
    if registry.error is None:
        return False, f"{registry.host} resolves"
    if proxy:
        return None, f"{registry.host} does not resolve, but an HTTPS proxy is configured"
    if registry.error == "timeout":
        return True, f"{registry.host} did not resolve in time"
    return True, f"{registry.host} does not resolve"


def kubernetes_flavour(info: KubernetesInfo | None) -> str | None:
    """openshift (by its API groups), k3s, rke2, eks, gke, aks, or plain kubernetes."""
    if info is None or not info.reachable:
        return None
    groups = set(info.api_groups)
    if {"route.openshift.io", "config.openshift.io", "project.openshift.io"} & groups:
        return "openshift"
    git_version = (info.git_version or "").lower()
    for marker, name in _GIT_VERSION_FLAVOURS:
        if marker in git_version:
            return name
    for node in info.nodes or ():
        for prefix, name in _PROVIDER_FLAVOURS:
            if (node.provider_id or "").startswith(prefix):
                return name
    return "kubernetes"


def detect_environment(
    *,
    root: Root = "/",
    environ: Mapping[str, str] | None = None,
    docker: DockerInfo | None = None,
    kubernetes: KubernetesInfo | None = None,
    registry: Resolution | None = None,
) -> Environment:
    """Everything above, in one value for the report."""
    env = os.environ if environ is None else environ
    kind, container_evidence = inside_container(root, env)
    cloud, cloud_evidence = cloud_provider(root)
    airgapped, airgap_evidence = looks_airgapped(root, env, registry, docker)
    return Environment(
        container_runtimes=container_runtimes(root, env, docker),
        in_container=kind,
        container_evidence=container_evidence,
        kubernetes_flavour=kubernetes_flavour(kubernetes),
        cloud=cloud,
        cloud_evidence=cloud_evidence,
        airgapped=airgapped,
        airgap_evidence=airgap_evidence,
    )
