"""Raw measurements of the machine, behind a small interface the checks can be fed through.

:class:`Probe` is what the prerequisite checks read; :class:`HostProbe` measures this
machine. Tests inject their own :class:`Probe` to drive every verdict, so nothing here
decides pass or fail: it only measures, and says *why* when it cannot. The values it
returns are defined in :mod:`installer.checks.measurements`.

The Linux paths read procfs and sysfs with the standard library; psutil adds what the
standard library lacks (naming the process that holds a port, this host's addresses,
other operating systems). The cluster is reached through
:class:`installer.engine.kubernetes.Cluster`, the same connection ``apply`` uses.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import socket
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from installer.checks.docker_probe import (
    DEFAULT_DOCKER_SOCKET,
    DOCKER_TIMEOUT,
    DockerInfo,
    EngineProtocolError,
    probe_docker,
    query_docker,
    which,
)
from installer.checks.measurements import (
    CgroupInfo,
    ComposeInfo,
    CpuInfo,
    DiskInfo,
    Environment,
    KubernetesInfo,
    Listener,
    ListenerScan,
    MemoryInfo,
    NodeInfo,
    OsInfo,
    Resolution,
    WriteAccess,
)

if TYPE_CHECKING:
    from installer.engine.kubernetes import Cluster, KubernetesError

__all__ = [  # the measurements and the Docker names are re-exported: the probes' one address
    "DEFAULT_DOCKER_SOCKET",
    "DOCKER_TIMEOUT",
    "CgroupInfo",
    "ComposeInfo",
    "CpuInfo",
    "DiskInfo",
    "DockerInfo",
    "EngineProtocolError",
    "Environment",
    "KubernetesInfo",
    "Listener",
    "ListenerScan",
    "MemoryInfo",
    "NodeInfo",
    "OsInfo",
    "Resolution",
    "WriteAccess",
    "query_docker",
    "which",
]

# Where the docker CLI looks for its plugins, after the user's own directory.
COMPOSE_PLUGIN_DIRS: tuple[str, ...] = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


class Probe(Protocol):
    """The measurements the prerequisite checks read.

    Every method returns a value, never raises for a condition of the machine (a missing
    daemon, an unreadable file); it reports that condition in the value instead. The slow
    ones take a timeout and are run concurrently by the caller.
    """

    def cpu(self) -> CpuInfo: ...

    def memory(self) -> MemoryInfo: ...

    def disk(self, path: str) -> DiskInfo: ...

    def operating_system(self) -> OsInfo: ...

    def kernel(self) -> str: ...

    def architecture(self) -> str: ...

    def cgroup(self) -> CgroupInfo: ...

    def docker(self, timeout: float) -> DockerInfo: ...

    def compose(self, timeout: float) -> ComposeInfo: ...

    def listeners(self, ports: Collection[int]) -> ListenerScan: ...

    def resolve(self, host: str, timeout: float, *, compare_local: bool = False) -> Resolution:
        """Look ``host`` up; with ``compare_local``, also list this host's addresses."""
        ...

    def kubernetes(self, context: str | None, timeout: float) -> KubernetesInfo: ...

    def write_access(self, path: str) -> WriteAccess: ...

    def environment(
        self,
        docker: DockerInfo | None,
        kubernetes: KubernetesInfo | None,
        registry: Resolution | None,
    ) -> Environment: ...


# --------------------------------------------------------------------------- helpers


# Set in the installer image (packaging/build-installer-image): where the launcher mounts
# read-only views of the host (its /etc/os-release); the probes read host facts there.
HOST_ROOT_VARIABLE = "CODEQUAL_HOST_ROOT"


def nearest_existing(path: str) -> str:
    """``path`` itself, or its closest parent that exists."""
    current = os.path.normpath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current) or "."
        if parent == current:
            break
        current = parent
    return current


def _read_text(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def parse_os_release(text: str) -> dict[str, str]:
    """The KEY=value pairs of an os-release file (quotes removed)."""
    values: dict[str, str] = {}
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _hex_address(text: str) -> str:
    """An address from /proc/net/tcp{,6}: hex, each 32-bit word in host (little-endian) order."""
    raw = bytes.fromhex(text)
    ordered = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(ordered) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, ordered)


def parse_proc_net_tcp(text: str, ports: Collection[int]) -> list[tuple[str, int, int]]:
    """(address, port, socket inode) of each LISTEN socket on ``ports`` in a /proc/net/tcp
    or /proc/net/tcp6 table."""
    found: list[tuple[str, int, int]] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":  # 0A: TCP_LISTEN
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        port = int(port_hex, 16)
        if port in ports:
            found.append((_hex_address(address_hex), port, int(fields[9])))
    return found


def physical_cores_from_sysfs(cpu_root: str | os.PathLike[str]) -> int | None:
    """Distinct (package, core) pairs under /sys/devices/system/cpu; None when unreadable."""
    cores: set[tuple[str, str]] = set()
    try:
        names = [n for n in os.listdir(cpu_root) if n.startswith("cpu") and n[3:].isdigit()]
    except OSError:
        return None
    for name in names:
        try:
            package = _read_text(os.path.join(cpu_root, name, "topology/physical_package_id"))
            core = _read_text(os.path.join(cpu_root, name, "topology/core_id"))
        except OSError:
            return None
        cores.add((package.strip(), core.strip()))
    return len(cores) or None


def read_meminfo(text: str) -> tuple[int, int | None]:
    """(MemTotal, MemAvailable) in bytes from /proc/meminfo."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return values["MemTotal"], values.get("MemAvailable")


def cgroup_from_fs(root: str | os.PathLike[str]) -> CgroupInfo:
    """The cgroup version and its enabled controllers, from /sys/fs/cgroup and /proc/cgroups."""
    unified = os.path.join(root, "sys/fs/cgroup/cgroup.controllers")
    try:
        return CgroupInfo(2, frozenset(_read_text(unified).split()))
    except OSError:
        pass
    try:
        text = _read_text(os.path.join(root, "proc/cgroups"))
    except OSError:
        return CgroupInfo(None)
    enabled = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 4 and not line.startswith("#") and fields[3] == "1":
            enabled.add(fields[0])
    if not enabled:
        return CgroupInfo(None)
    if "cpuacct" in enabled or "cpu" in enabled:
        enabled.add("cpu")
    return CgroupInfo(1, frozenset(enabled))


# --------------------------------------------------------------------------- Compose


def compose_candidates(environ: Mapping[str, str]) -> list[str]:
    """Where the Compose v2 plugin can be, in the docker CLI's order, then PATH."""
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    dirs = [os.path.join(config_dir, "cli-plugins"), *COMPOSE_PLUGIN_DIRS]
    found = [
        os.path.join(d, "docker-compose")
        for d in dirs
        if os.access(os.path.join(d, "docker-compose"), os.X_OK)
    ]
    standalone = which("docker-compose", path=environ.get("PATH"))
    if standalone is not None:
        found.append(standalone)
    return found


def compose_version(binary: str, timeout: float) -> ComposeInfo:
    """Run ``binary version --short`` (the plugin binary works on its own, without the
    docker CLI in front of it, which saves one process start)."""
    import subprocess  # only when the version is not remembered

    try:
        completed = subprocess.run(
            [binary, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ComposeInfo(binary, error=f"`{binary} version` did not answer within {timeout:g} s")
    except OSError as e:
        return ComposeInfo(binary, error=f"cannot run {binary}: {e.strerror or e}")
    output = completed.stdout.strip()
    if completed.returncode != 0 or not output:
        # Compose v1 has no --short on some releases; its output starts with "docker-compose".
        return ComposeInfo(
            binary, error=f"`{binary} version --short` exited {completed.returncode}"
        )
    return ComposeInfo(binary, version=output.splitlines()[0].lstrip("v"))


def compose_cache_file(environ: Mapping[str, str]) -> str:
    """Where the Compose version is remembered between runs (the XDG cache directory)."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "codequal-installer", "compose-version.json")


def cached_compose_version(binary: str, timeout: float, environ: Mapping[str, str]) -> ComposeInfo:
    """:func:`compose_version`, remembered per binary (path, inode, size, mtime).

    Starting the 70 MB Go binary costs more than the rest of ``check``; an unchanged
    binary has an unchanged version, and an upgrade changes its inode, size or mtime.
    """
    try:
        real = os.path.realpath(binary)
        stat = os.stat(real)
    except OSError as e:
        return ComposeInfo(binary, error=f"cannot read {binary}: {e.strerror or e}")
    key = f"{real}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
    cache = compose_cache_file(environ)
    try:
        remembered = json.loads(_read_text(cache))
        if isinstance(remembered, dict) and remembered.get("binary") == key:
            return ComposeInfo(binary, version=str(remembered["version"]))
    except (OSError, ValueError, KeyError):
        pass
    info = compose_version(binary, timeout)
    if info.version is not None:
        try:
            directory, name = os.path.split(cache)
            os.makedirs(directory, exist_ok=True)
            temporary = os.path.join(directory, f".{name}.{os.getpid()}")
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(json.dumps({"binary": key, "version": info.version}))
            os.replace(temporary, cache)
        except OSError:
            pass  # a read-only home only costs the next run the same wait
    return info


# --------------------------------------------------------------------------- the host


class HostProbe:
    """Measures this machine (the default :class:`Probe`)."""

    def __init__(
        self, root: str | os.PathLike[str] = "/", environ: Mapping[str, str] | None = None
    ) -> None:
        self.root = os.fspath(root)
        self.environ: Mapping[str, str] = os.environ if environ is None else environ

    def cpu(self) -> CpuInfo:
        logical = os.cpu_count() or 1
        physical: int | None
        if platform.system() == "Linux":
            physical = physical_cores_from_sysfs(os.path.join(self.root, "sys/devices/system/cpu"))
        else:
            import psutil

            physical = psutil.cpu_count(logical=False)
        return CpuInfo(logical=logical, physical=physical)

    def memory(self) -> MemoryInfo:
        try:
            total, available = read_meminfo(_read_text(os.path.join(self.root, "proc/meminfo")))
            return MemoryInfo(total, available)
        except (OSError, KeyError):
            import psutil

            memory = psutil.virtual_memory()
            return MemoryInfo(memory.total, memory.available)

    def disk(self, path: str) -> DiskInfo:
        where = nearest_existing(path)
        usage = os.statvfs(where)  # what shutil.disk_usage reads, without importing shutil
        return DiskInfo(
            path=path,
            measured_at=where,
            free_bytes=usage.f_bavail * usage.f_frsize,
            total_bytes=usage.f_blocks * usage.f_frsize,
            device=os.stat(where).st_dev,
        )

    def operating_system(self) -> OsInfo:
        system = platform.system()
        if system != "Linux":
            release = platform.mac_ver()[0] if system == "Darwin" else platform.release()
            return OsInfo(system=system, version_id=release or None, pretty_name=system)
        values: dict[str, str] = {}
        host_root = self.environ.get(HOST_ROOT_VARIABLE)
        if host_root:
            # In the installer image: its own /etc/os-release describes the image, not the
            # host; the launcher mounts the host's file read-only under the host root.
            host_file = os.path.join(host_root, "etc/os-release")
            try:
                values = parse_os_release(_read_text(host_file))
            except OSError:
                return OsInfo(
                    system=system,
                    unseen=f"the host's operating system cannot be seen from inside the "
                    f"installer image: {host_file} is not mounted",
                )
            return OsInfo(
                system=system,
                id=values.get("ID"),
                id_like=tuple(values.get("ID_LIKE", "").split()),
                version_id=values.get("VERSION_ID"),
                pretty_name=values.get("PRETTY_NAME"),
            )
        for candidate in ("etc/os-release", "usr/lib/os-release"):
            try:
                values = parse_os_release(_read_text(os.path.join(self.root, candidate)))
                break
            except OSError:
                continue
        return OsInfo(
            system=system,
            id=values.get("ID"),
            id_like=tuple(values.get("ID_LIKE", "").split()),
            version_id=values.get("VERSION_ID"),
            pretty_name=values.get("PRETTY_NAME"),
        )

    def kernel(self) -> str:
        return platform.release()

    def architecture(self) -> str:
        return platform.machine()

    def cgroup(self) -> CgroupInfo:
        return cgroup_from_fs(self.root)

    def docker(self, timeout: float) -> DockerInfo:
        return probe_docker(self.environ, timeout)

    def compose(self, timeout: float) -> ComposeInfo:
        candidates = compose_candidates(self.environ)
        if not candidates:
            return ComposeInfo(None, error="no docker-compose plugin or binary found")
        return cached_compose_version(candidates[0], timeout, self.environ)

    def listeners(self, ports: Collection[int]) -> ListenerScan:
        busy, untested = ports_taken_by_binding(ports)
        error = None
        if untested:
            # Ports below 1024 cannot be bound without privileges: read the kernel's
            # socket tables for those instead (slower, so only then).
            try:
                tables = [os.path.join(self.root, t) for t in ("proc/net/tcp", "proc/net/tcp6")]
                busy |= {
                    port
                    for table in tables
                    if os.path.exists(table)
                    for _address, port, _inode in parse_proc_net_tcp(_read_text(table), untested)
                }
                untested = set()
            except OSError as e:
                error = f"ports {', '.join(map(str, sorted(untested)))} not tested: {e.strerror}"
        if untested and error is None:
            error = (
                f"ports {', '.join(map(str, sorted(untested)))} could not be tested "
                "without privileges"
            )
        listeners = tuple(_name_owners(busy)) if busy else ()
        if self.environ.get(HOST_ROOT_VARIABLE):
            # In the installer image without the host's process namespace (--pid host) the
            # holders are out of sight: say so rather than name nobody.
            listeners = tuple(
                Listener(
                    item.port,
                    item.address,
                    process="a process outside the installer image's view "
                    "(run the image with --pid host to name it)",
                )
                if item.pid is None
                else item
                for item in listeners
            )
        return ListenerScan(listeners, complete=not untested, error=error)

    def resolve(self, host: str, timeout: float, *, compare_local: bool = False) -> Resolution:
        # getaddrinfo has no timeout of its own: the caller runs this in a thread and
        # stops waiting after ``timeout``.
        return resolve_host(host, with_local_addresses=compare_local)

    def kubernetes(self, context: str | None, timeout: float) -> KubernetesInfo:
        return query_kubernetes(context, timeout, self.environ)

    def write_access(self, path: str) -> WriteAccess:
        return probe_write_access(path)

    def environment(
        self,
        docker: DockerInfo | None,
        kubernetes: KubernetesInfo | None,
        registry: Resolution | None,
    ) -> Environment:
        from installer.checks.detect import detect_environment

        return detect_environment(
            root=self.root,
            environ=self.environ,
            docker=docker,
            kubernetes=kubernetes,
            registry=registry,
        )


def ports_taken_by_binding(ports: Collection[int]) -> tuple[set[int], set[int]]:
    """(ports something listens on, ports this user may not bind), by binding each one on
    every IPv4 and IPv6 address the way Docker publishes it.

    SO_REUSEADDR makes connections lingering in TIME_WAIT no obstacle, while a listening
    socket on any overlapping address still is: exactly "could Docker publish it now".
    Far cheaper than reading /proc/net/tcp, which walks every socket of the host.
    """
    busy: set[int] = set()
    untested: set[int] = set()
    for port in ports:
        for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):  # noqa: S104
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue  # no IPv6 on this host
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind((address, port))
                except PermissionError:
                    untested.add(port)
                    break
                except OSError as e:
                    if e.errno == errno.EADDRINUSE:
                        busy.add(port)
                        break
                    # EADDRNOTAVAIL: IPv6 disabled; nothing can listen there either.
            finally:
                sock.close()
    return busy, untested - busy


def _name_owners(busy: Collection[int]) -> list[Listener]:
    """A listener for each busy port, with the process that holds it where this user may
    read it (psutil walks /proc/*/fd to find the socket's owner)."""
    import psutil

    listeners: list[Listener] = []
    seen: set[int] = set()
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        connections = []  # named "unknown" below; the port is in use all the same
    for connection in connections:
        address: Any = connection.laddr  # an (ip, port) named tuple for TCP sockets
        if connection.status != psutil.CONN_LISTEN or not address:
            continue
        port = int(address.port)
        if port not in busy:
            continue
        name = None
        if connection.pid is not None:
            try:
                name = psutil.Process(connection.pid).name()
            except psutil.Error:
                name = None
        listeners.append(Listener(port, str(address.ip), connection.pid, name))
        seen.add(port)
    listeners.extend(
        Listener(port, "an address this user cannot see") for port in busy if port not in seen
    )
    return sorted(listeners, key=lambda item: (item.port, item.address))


def resolve_host(host: str, *, with_local_addresses: bool = False) -> Resolution:
    """Resolve ``host`` with the system resolver (the caller bounds the time it may take)."""
    try:
        infos = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        kinds = {socket.EAI_NONAME: "nxdomain", socket.EAI_AGAIN: "no_answer"}
        kind = kinds.get(e.errno, "error") if e.errno is not None else "error"
        if kind == "error" and getattr(socket, "EAI_NODATA", None) == e.errno:
            kind = "nxdomain"
        return Resolution(host, error=kind, error_detail=e.strerror)
    except (OSError, UnicodeError) as e:
        return Resolution(host, error="error", error_detail=str(e))
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    local: tuple[str, ...] = ()
    if with_local_addresses:
        import psutil

        local = tuple(
            address.address.split("%")[0]
            for addresses_of in psutil.net_if_addrs().values()
            for address in addresses_of
            if address.family in (socket.AF_INET, socket.AF_INET6)
        )
    return Resolution(host, addresses=addresses, local_addresses=local)


def probe_write_access(path: str) -> WriteAccess:
    """Whether ``path`` can be created and written, tested by creating a file in it."""
    if os.path.exists(path) and not os.path.isdir(path):
        return WriteAccess(
            path,
            exists=True,
            is_dir=False,
            writable=False,
            checked_at=path,
            error="not a directory",
        )
    exists = os.path.isdir(path)
    where = path if exists else nearest_existing(path)
    entries: list[str] = []
    count = 0
    if exists:
        try:
            with os.scandir(path) as scan:
                for entry in scan:
                    count += 1
                    if len(entries) < 5:
                        entries.append(entry.name)
        except OSError as e:
            return WriteAccess(
                path, True, True, writable=False, checked_at=path, error=e.strerror or str(e)
            )
    if not os.path.isdir(where):
        return WriteAccess(
            path, exists, exists, writable=False, checked_at=where, error="not a directory"
        )
    try:
        # A real file, because os.access() does not see read-only bind mounts, ACLs or
        # root-squashing NFS the way a write does.
        name = os.path.join(where, f".codequal-write-test-{os.getpid()}-{os.urandom(6).hex()}")
        os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(name)
        writable, error = True, None
    except OSError as e:
        writable, error = False, e.strerror or str(e)
    return WriteAccess(
        path,
        exists=exists,
        is_dir=exists,
        writable=writable,
        checked_at=where,
        entries=tuple(sorted(entries)),
        entry_count=count,
        error=error,
    )


# --------------------------------------------------------------------------- Kubernetes


def query_kubernetes(
    context: str | None, timeout: float, environ: Mapping[str, str] | None = None
) -> KubernetesInfo:
    """Server version, API groups and nodes of the cluster behind ``context``, through
    the :class:`~installer.engine.kubernetes.Cluster` connection ``apply`` uses.

    One attempt per request, each bounded by ``timeout``. The kubernetes client is
    imported here, in the probe's worker thread, and only for the Kubernetes targets.
    """
    from installer.engine.kubernetes import Cluster, ClusterUnreachable

    try:
        cluster = Cluster.connect(context, environ=environ, timeout=timeout, retries=False)
    except ClusterUnreachable as e:
        return KubernetesInfo(False, context, error="no_config", error_detail=e.message)
    with cluster:
        return describe_cluster(cluster)


def describe_cluster(cluster: Cluster) -> KubernetesInfo:
    """What the checks read of a connected cluster: version, API groups and nodes.

    A cluster that does not answer is described, not raised: ``error`` is
    ``unauthorized``, ``timeout``, ``unreachable`` or ``error`` (any other refusal).
    """
    from installer.engine.kubernetes import ClusterUnreachable, KubernetesError, parse_quantity

    try:
        version = cluster.version()
        groups = tuple(sorted(cluster.api_groups()))
    except ClusterUnreachable as e:
        return KubernetesInfo(
            False, cluster.context, cluster.server, error=e.kind, error_detail=e.message
        )
    except KubernetesError as e:
        kind = "unauthorized" if e.status in (401, 403) else "error"
        return KubernetesInfo(
            False, cluster.context, cluster.server, error=kind, error_detail=_http_text(e)
        )
    nodes: tuple[NodeInfo, ...] | None
    nodes_error = None
    try:
        nodes = tuple(
            NodeInfo(
                name=str(node["metadata"]["name"]),
                cpus=parse_quantity(_allocatable(node).get("cpu")),
                memory_bytes=int(parse_quantity(_allocatable(node).get("memory"))),
                architecture=((node.get("status") or {}).get("nodeInfo") or {}).get("architecture"),
                provider_id=(node.get("spec") or {}).get("providerID"),
            )
            for node in cluster.list_objects("v1", "Node")
        )
    except ClusterUnreachable as e:
        nodes, nodes_error = None, e.detail
    except KubernetesError as e:
        nodes, nodes_error = None, _http_text(e)
    git = version.git_version.lstrip("v").split("-")[0].split("+")[0].split(".")
    patch = git[2] if len(git) > 2 and git[2].isdigit() else "0"
    return KubernetesInfo(
        True,
        cluster.context,
        cluster.server,
        version=f"{version.major}.{version.minor}.{patch}",
        git_version=version.git_version or None,
        api_groups=groups,
        nodes=nodes,
        nodes_error=nodes_error,
    )


def _allocatable(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """What pods may use of a node (capacity less what the kubelet reserves), as the
    scheduler and the plan read it; capacity only when a node reports no allocatable."""
    status = node.get("status") or {}
    found: Mapping[str, Any] = status.get("allocatable") or status.get("capacity") or {}
    return found


def _http_text(error: KubernetesError) -> str:
    if error.status is None:
        return error.message
    return f"HTTP {error.status} {error.reason or ''}".strip()
