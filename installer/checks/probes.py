"""Raw measurements of the machine, behind a small interface the checks can be fed through.

:class:`Probe` is what the prerequisite checks read; :class:`HostProbe` measures this
machine. Tests inject their own :class:`Probe` to drive every verdict, so nothing here
decides pass or fail: it only measures, and says *why* when it cannot.

Start-up time is measured (``check`` must stay close to ``--version``), so the Linux fast
paths read procfs and sysfs with the standard library and psutil is imported only where it
adds what the standard library lacks (naming the process that holds a port, this host's
addresses, other operating systems). Docker is spoken to over its socket with
a plain HTTP exchange rather than the Docker SDK, and the Kubernetes client is imported only for
the Kubernetes targets, inside the probe's worker thread.
"""

from __future__ import annotations

import _socket  # not socket: see installer.checks.docker_probe
import errno
import json
import os
import platform
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
from installer.records import Record

if TYPE_CHECKING:
    from installer.checks.detect import Environment

__all__ = [  # the Docker names are re-exported: this module is the probes' one address
    "DEFAULT_DOCKER_SOCKET",
    "DOCKER_TIMEOUT",
    "DockerInfo",
    "EngineProtocolError",
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
# A public name every pulling install needs; failing to resolve it means no pulls.
PUBLIC_REGISTRY = "registry-1.docker.io"


# --------------------------------------------------------------------------- measurements


class CpuInfo(Record):
    """Processors the containers can use."""

    logical: int
    physical: int | None = None  # cores without SMT siblings; None when unreadable


class MemoryInfo(Record):
    """Memory as the kernel reports it (MemTotal is below the installed RAM; see checks)."""

    total_bytes: int
    available_bytes: int | None = None


class DiskInfo(Record):
    """Free space of the file system that holds ``path`` (or would, once created)."""

    path: str
    measured_at: str  # ``path`` or its nearest existing parent
    free_bytes: int
    total_bytes: int
    device: int  # st_dev: two paths on one file system share their free space


class OsInfo(Record):
    """Operating system and distribution."""

    system: str  # platform.system(): Linux, Darwin, Windows
    id: str | None = None  # os-release ID: ubuntu, debian, rhel ...
    id_like: tuple[str, ...] = ()
    version_id: str | None = None
    pretty_name: str | None = None


class CgroupInfo(Record):
    """The control-group hierarchy Docker places containers in."""

    version: int | None  # 1 (or hybrid), 2 (unified), None when not Linux or unreadable
    controllers: frozenset[str] = frozenset()


class ComposeInfo(Record):
    """The Compose CLI plugin (or a docker-compose binary on PATH) and its version."""

    path: str | None
    version: str | None = None
    error: str | None = None


class Listener(Record):
    """A socket listening on one of the ports the install needs."""

    port: int
    address: str
    pid: int | None = None
    process: str | None = None


class ListenerScan(Record):
    """Listening sockets on the ports asked about; ``complete`` is false when the scan
    could not see every socket (then ``error`` says why)."""

    listeners: tuple[Listener, ...] = ()
    complete: bool = True
    error: str | None = None


class Resolution(Record):
    """A host name looked up through the system resolver."""

    host: str
    addresses: tuple[str, ...] = ()
    error: str | None = None  # nxdomain, no_answer, timeout, error
    error_detail: str | None = None
    local_addresses: tuple[str, ...] = ()  # this host's own addresses, for comparison


class NodeInfo(Record):
    """One Kubernetes node's capacity."""

    name: str
    cpus: float
    memory_bytes: int
    architecture: str | None = None
    provider_id: str | None = None


class KubernetesInfo(Record):
    """The cluster behind a kubeconfig context, or why it could not be reached.

    ``error``: ``no_config``, ``unauthorized``, ``timeout``, ``unreachable``, ``error``.
    ``nodes`` is None when the nodes could not be listed (RBAC), empty only for a cluster
    without nodes.
    """

    reachable: bool
    context: str | None = None
    server: str | None = None
    version: str | None = None  # major.minor.patch
    git_version: str | None = None
    api_groups: tuple[str, ...] = ()
    nodes: tuple[NodeInfo, ...] | None = None
    nodes_error: str | None = None
    error: str | None = None
    error_detail: str | None = None


class WriteAccess(Record):
    """Whether the installer can create and write ``path``."""

    path: str
    exists: bool
    is_dir: bool
    writable: bool
    checked_at: str  # ``path`` or, when missing, the nearest existing parent
    entries: tuple[str, ...] = ()  # a few names, when non-empty
    entry_count: int = 0
    error: str | None = None


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
    family = _socket.AF_INET if len(ordered) == 4 else _socket.AF_INET6
    return _socket.inet_ntop(family, ordered)


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
        return ListenerScan(listeners, complete=not untested, error=error)

    def resolve(self, host: str, timeout: float, *, compare_local: bool = False) -> Resolution:
        # getaddrinfo has no timeout of its own: the caller runs this in a thread and
        # stops waiting after ``timeout``.
        return resolve_host(host, with_local_addresses=compare_local)

    def kubernetes(self, context: str | None, timeout: float) -> KubernetesInfo:
        return query_kubernetes(context, timeout)

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
        for family, address in ((_socket.AF_INET, "0.0.0.0"), (_socket.AF_INET6, "::")):  # noqa: S104
            try:
                sock = _socket.socket(family, _socket.SOCK_STREAM)
            except OSError:
                continue  # no IPv6 on this host
            try:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                if family == _socket.AF_INET6:
                    sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
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
        # An ASCII name goes as bytes: a str is IDNA-encoded first, which imports a codec
        # that costs more than the lookup of a local name.
        name: str | bytes = host.encode("ascii") if host.isascii() else host
        infos = _socket.getaddrinfo(name, None, 0, _socket.SOCK_STREAM)
    except _socket.gaierror as e:
        kinds = {_socket.EAI_NONAME: "nxdomain", _socket.EAI_AGAIN: "no_answer"}
        kind = kinds.get(e.errno, "error") if e.errno is not None else "error"
        if kind == "error" and getattr(_socket, "EAI_NODATA", None) == e.errno:
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
            if address.family in (_socket.AF_INET, _socket.AF_INET6)
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


def query_kubernetes(context: str | None, timeout: float) -> KubernetesInfo:
    """Server version, API groups and nodes of the cluster behind ``context``.

    The kubernetes client is imported here, in the probe's worker thread, and only for
    the Kubernetes targets: it costs more than the rest of ``check`` together.
    """
    try:
        from kubernetes import client as kubernetes_client
        from kubernetes import config as kubernetes_config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as e:  # pragma: no cover - a declared dependency
        return KubernetesInfo(False, context, error="error", error_detail=str(e))
    # The client is untyped; keep it at arm's length.
    client: Any = kubernetes_client
    config: Any = kubernetes_config
    configuration = client.Configuration()
    try:
        if context is None and "KUBERNETES_SERVICE_HOST" in os.environ and not _kubeconfig_exists():
            config.load_incluster_config(client_configuration=configuration)
            context_name: str | None = "in-cluster"
        else:
            config.load_kube_config(
                config_file=os.pathsep.join(_kubeconfig_paths()),
                context=context,
                client_configuration=configuration,
            )
            context_name = context or _current_context(config)
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as e:
        return KubernetesInfo(False, context, error="no_config", error_detail=_first_line(e))
    configuration.retries = False  # one attempt: the timeout is the operator's wait
    server = configuration.host
    api = client.ApiClient(configuration)
    try:
        code = client.VersionApi(api).get_code(_request_timeout=timeout)
        groups = client.ApisApi(api).get_api_versions(_request_timeout=timeout)
    except client.exceptions.ApiException as e:
        kind = "unauthorized" if e.status in (401, 403) else "error"
        return KubernetesInfo(
            False, context_name, server, error=kind, error_detail=f"HTTP {e.status} {e.reason}"
        )
    except Exception as e:  # noqa: BLE001 - urllib3 raises many kinds for one cause
        text = f"{type(e).__name__}: {e}"
        kind = "timeout" if "timed out" in text.lower() or "Timeout" in text else "unreachable"
        return KubernetesInfo(
            False, context_name, server, error=kind, error_detail=_short_network_error(e)
        )
    nodes: tuple[NodeInfo, ...] | None
    nodes_error = None
    try:
        listed = client.CoreV1Api(api).list_node(_request_timeout=timeout)
        nodes = tuple(_node_info(item) for item in listed.items)
    except client.exceptions.ApiException as e:
        nodes, nodes_error = None, f"HTTP {e.status} {e.reason}"
    except Exception as e:  # noqa: BLE001
        nodes, nodes_error = None, _short_network_error(e)
    finally:
        api.close()
    major = "".join(ch for ch in str(code.major) if ch.isdigit())
    minor = "".join(ch for ch in str(code.minor) if ch.isdigit())
    git_version = str(code.git_version or "")
    patch = git_version.lstrip("v").split("-")[0].split("+")[0].split(".")
    version = f"{major}.{minor}.{patch[2] if len(patch) > 2 and patch[2].isdigit() else 0}"
    return KubernetesInfo(
        True,
        context_name,
        server,
        version=version,
        git_version=git_version or None,
        api_groups=tuple(sorted(g.name for g in (groups.groups or []))),
        nodes=nodes,
        nodes_error=nodes_error,
    )


def _node_info(node: Any) -> NodeInfo:
    from kubernetes import utils

    parse_quantity: Any = utils.parse_quantity
    capacity = node.status.capacity or {}
    info = node.status.node_info
    return NodeInfo(
        name=node.metadata.name,
        cpus=float(parse_quantity(capacity.get("cpu", "0"))),
        memory_bytes=int(parse_quantity(capacity.get("memory", "0"))),
        architecture=getattr(info, "architecture", None),
        provider_id=getattr(node.spec, "provider_id", None),
    )


def _kubeconfig_paths() -> list[str]:
    """The kubeconfig files, read from the environment now.

    The kubernetes client resolves ``KUBECONFIG`` once, when it is first imported; a
    long-lived process (the wizard, a test session) must name the files every time.
    """
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep)
    return [p for p in paths if p] or [os.path.expanduser("~/.kube/config")]


def _kubeconfig_exists() -> bool:
    return any(os.path.exists(p) for p in _kubeconfig_paths())


def _current_context(config: Any) -> str | None:
    try:
        _contexts, active = config.list_kube_config_contexts(
            config_file=os.pathsep.join(_kubeconfig_paths())
        )
        return str(active["name"]) if active else None
    except Exception:  # noqa: BLE001 - only for display
        return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]


def _short_network_error(error: BaseException) -> str:
    """The innermost reason of a urllib3 error, without its object reprs."""
    reason = getattr(error, "reason", None)
    text = str(reason if reason is not None else error)
    for marker in (
        "Connection refused",
        "timed out",
        "Name or service not known",
        "No route to host",
        "certificate verify failed",
    ):
        if marker.lower() in text.lower():
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return _first_line(error)
