"""Environment detection, on directory trees laid out like /proc and /sys of each case."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from installer.checks.detect import (
    cloud_provider,
    container_runtimes,
    detect_environment,
    has_default_route,
    inside_container,
    kubernetes_flavour,
    looks_airgapped,
)
from installer.checks.probes import DockerInfo, KubernetesInfo, NodeInfo, Resolution


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- cloud


@pytest.mark.parametrize(
    ("files", "provider"),
    [
        ({"sys_vendor": "Amazon EC2", "product_name": "m6i.xlarge"}, "aws"),
        ({"sys_vendor": "Xen", "bios_vendor": "Amazon EC2"}, "aws"),
        ({"sys_vendor": "Google", "product_name": "Google Compute Engine"}, "gcp"),
        (
            {
                "sys_vendor": "Microsoft Corporation",
                "product_name": "Virtual Machine",
                "chassis_asset_tag": "7783-7084-3265-9085-8269-3286-77",
            },
            "azure",
        ),
        ({"sys_vendor": "DigitalOcean", "product_name": "Droplet"}, "digitalocean"),
        ({"sys_vendor": "Hetzner", "product_name": "vServer"}, "hetzner"),
        ({"sys_vendor": "QEMU", "chassis_asset_tag": "OracleCloud.com"}, "oracle"),
        ({"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"}, "openstack"),
        ({"sys_vendor": "Alibaba Cloud", "product_name": "Alibaba Cloud ECS"}, "alibaba"),
        # Hyper-V on a desk is not Azure; plain QEMU/KVM is no cloud.
        ({"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, None),
        ({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, None),
    ],
)
def test_cloud_from_dmi(tmp_path: Path, files: dict[str, str], provider: str | None) -> None:
    for name, value in files.items():
        write(tmp_path, f"sys/class/dmi/id/{name}", value + "\n")
    found, evidence = cloud_provider(tmp_path)
    assert found == provider
    assert evidence and evidence.startswith("DMI")


def test_cloud_from_xen_hypervisor_uuid(tmp_path: Path) -> None:
    write(tmp_path, "sys/hypervisor/uuid", "ec2e1916-9099-7caf-fd21-012345abcdef\n")
    assert cloud_provider(tmp_path) == ("aws", "Xen hypervisor UUID starts with ec2")


def test_no_dmi_at_all(tmp_path: Path) -> None:
    assert cloud_provider(tmp_path) == (None, "no DMI data readable")


def test_unreadable_dmi_files_count_as_absent(tmp_path: Path) -> None:
    write(tmp_path, "sys/class/dmi/id/sys_vendor", "Amazon EC2\n")
    (tmp_path / "sys/class/dmi/id/sys_vendor").rename(tmp_path / "sys/class/dmi/id/other")
    (tmp_path / "sys/class/dmi/id/sys_vendor").mkdir()  # reading a directory fails
    assert cloud_provider(tmp_path)[0] is None


# --------------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("files", "environ", "kind"),
    [
        ({".dockerenv": ""}, {}, "docker"),
        ({"run/.containerenv": ""}, {}, "podman"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "kubernetes"),
        ({}, {"container": "systemd-nspawn"}, "systemd-nspawn"),
        ({"proc/1/cgroup": "0::/kubepods/burstable/pod1234/abcd\n"}, {}, "kubernetes"),
        ({"proc/1/cgroup": "12:memory:/docker/0123456789ab\n"}, {}, "docker"),
        ({"proc/1/cgroup": "0::/lxc/web01\n"}, {}, "lxc"),
        ({"proc/1/cgroup": "0::/init.scope\n"}, {}, None),
        ({}, {}, None),
    ],
)
def test_inside_a_container(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], kind: str | None
) -> None:
    for relative, text in files.items():
        write(tmp_path, relative, text)
    found, evidence = inside_container(tmp_path, environ)
    assert found == kind
    assert (evidence is None) == (kind is None)


def _executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_container_runtimes_from_executables_and_sockets(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "podman")
    (bin_dir / "crio").parent.mkdir(parents=True, exist_ok=True)
    (bin_dir / "crio").write_text("not executable")
    write(tmp_path, "run/containerd/containerd.sock", "")
    found = container_runtimes(tmp_path, {"PATH": str(bin_dir)})
    assert found == ("podman", "containerd")


def test_a_reachable_engine_counts_as_docker(tmp_path: Path) -> None:
    docker = DockerInfo("tcp://10.0.0.2:2375", reachable=True, version="27.0.1")
    assert container_runtimes(tmp_path, {"PATH": ""}, docker) == ("docker",)


# --------------------------------------------------------------------------- air gap

ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)
DEFAULT_ROUTE = "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
LAN_ROUTE = "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
# The kernel's unreachable placeholder on lo: flags RTF_UP|RTF_REJECT, not a way out.
IPV6_UNREACHABLE = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)
IPV6_DEFAULT = (
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n"
)


def test_default_routes(tmp_path: Path) -> None:
    assert has_default_route(tmp_path) is None
    write(tmp_path, "proc/net/route", ROUTE_HEADER + LAN_ROUTE)
    write(tmp_path, "proc/net/ipv6_route", IPV6_UNREACHABLE)
    assert has_default_route(tmp_path) is False
    write(tmp_path, "proc/net/ipv6_route", IPV6_UNREACHABLE + IPV6_DEFAULT)
    assert has_default_route(tmp_path) is True
    write(tmp_path, "proc/net/ipv6_route", "")
    write(tmp_path, "proc/net/route", ROUTE_HEADER + LAN_ROUTE + DEFAULT_ROUTE)
    assert has_default_route(tmp_path) is True


@pytest.mark.parametrize(
    ("routes", "registry", "environ", "expected"),
    [
        (
            LAN_ROUTE,
            Resolution("registry-1.docker.io", ("1.2.3.4",)),
            {},
            (True, "no default route"),
        ),
        (
            DEFAULT_ROUTE,
            Resolution("registry-1.docker.io", ("1.2.3.4",)),
            {},
            (False, "registry-1.docker.io resolves"),
        ),
        (
            DEFAULT_ROUTE,
            Resolution("registry-1.docker.io", error="nxdomain"),
            {},
            (True, "registry-1.docker.io does not resolve"),
        ),
        (
            DEFAULT_ROUTE,
            Resolution("registry-1.docker.io", error="timeout"),
            {},
            (True, "registry-1.docker.io did not resolve in time"),
        ),
        (
            DEFAULT_ROUTE,
            Resolution("registry-1.docker.io", error="nxdomain"),
            {"HTTPS_PROXY": "http://proxy.corp:3128"},
            (None, "registry-1.docker.io does not resolve, but an HTTPS proxy is configured"),
        ),
        (DEFAULT_ROUTE, None, {}, (None, "the public registry was not looked up")),
    ],
)
def test_air_gap(
    tmp_path: Path,
    routes: str,
    registry: Resolution | None,
    environ: dict[str, str],
    expected: tuple[bool | None, str],
) -> None:
    write(tmp_path, "proc/net/route", ROUTE_HEADER + routes)
    assert looks_airgapped(tmp_path, environ, registry) == expected


def test_a_proxy_in_the_docker_daemon_counts_too(tmp_path: Path) -> None:
    write(tmp_path, "proc/net/route", ROUTE_HEADER + DEFAULT_ROUTE)
    docker = DockerInfo("unix:///var/run/docker.sock", True, https_proxy="http://proxy:3128")
    airgapped, _ = looks_airgapped(
        tmp_path, {}, Resolution("registry-1.docker.io", error="nxdomain"), docker
    )
    assert airgapped is None


# --------------------------------------------------------------------------- Kubernetes


def _cluster(**changes: object) -> KubernetesInfo:
    base: dict[str, object] = {
        "reachable": True,
        "version": "1.30.4",
        "git_version": "v1.30.4",
        "api_groups": ("apps", "batch"),
        "nodes": (),
    }
    base.update(changes)
    return KubernetesInfo(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("info", "flavour"),
    [
        (_cluster(api_groups=("apps", "route.openshift.io", "config.openshift.io")), "openshift"),
        (_cluster(git_version="v1.30.4+k3s1"), "k3s"),
        (_cluster(git_version="v1.29.8+rke2r1"), "rke2"),
        (_cluster(git_version="v1.30.4-eks-a737599"), "eks"),
        (_cluster(git_version="v1.30.5-gke.1014001"), "gke"),
        (
            _cluster(nodes=(NodeInfo("aks-1", 4, 16 << 30, "amd64", "azure:///subscriptions/x"),)),
            "aks",
        ),
        (_cluster(), "kubernetes"),
        (KubernetesInfo(False, error="timeout"), None),
        (None, None),
    ],
)
def test_kubernetes_flavour(info: KubernetesInfo | None, flavour: str | None) -> None:
    assert kubernetes_flavour(info) == flavour


def test_detect_environment_puts_it_together(tmp_path: Path) -> None:
    write(tmp_path, "sys/class/dmi/id/sys_vendor", "DigitalOcean\n")
    write(tmp_path, ".dockerenv", "")
    write(tmp_path, "proc/net/route", ROUTE_HEADER + DEFAULT_ROUTE)
    environment = detect_environment(
        root=tmp_path,
        environ={"PATH": ""},
        docker=DockerInfo("unix:///var/run/docker.sock", True),
        kubernetes=_cluster(api_groups=("route.openshift.io",)),
        registry=Resolution("registry-1.docker.io", ("1.2.3.4",)),
    )
    assert environment.to_dict() == {
        "container_runtimes": ["docker"],
        "in_container": "docker",
        "container_evidence": "/.dockerenv exists",
        "kubernetes_flavour": "openshift",
        "cloud": "digitalocean",
        "cloud_evidence": "DMI sys_vendor: DigitalOcean",
        "airgapped": False,
        "airgap_evidence": "registry-1.docker.io resolves",
    }


def test_docker_s_socket_is_the_one_the_endpoint_resolver_names(tmp_path: Path) -> None:
    from installer.engine.endpoint import DEFAULT_SOCKET_VARIABLE

    runtime_dir = tmp_path / "run/user/1000"
    write(tmp_path, "run/user/1000/docker.sock", "")
    env = {
        "PATH": "",
        "DOCKER_CONTEXT": "default",
        DEFAULT_SOCKET_VARIABLE: str(tmp_path / "none.sock"),
        "XDG_RUNTIME_DIR": str(runtime_dir),
    }
    # The resolver answers with an absolute path; detection reads it under its root.
    assert container_runtimes("/", env) == ("docker",)
    assert container_runtimes(tmp_path / "elsewhere", env) == ()
