"""The host probe's readers and parsers, on files and sockets the tests make themselves."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from installer.checks.probes import (
    HostProbe,
    cached_compose_version,
    cgroup_from_fs,
    compose_cache_file,
    compose_candidates,
    parse_os_release,
    parse_proc_net_tcp,
    physical_cores_from_sysfs,
    ports_taken_by_binding,
    probe_write_access,
    query_docker,
    read_meminfo,
)
from installer.checks.requirements import size, version_tuple
from installer.engine.endpoint import DEFAULT_SOCKET_VARIABLE

# --------------------------------------------------------------------------- parsers


def test_os_release() -> None:
    text = (
        'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n# c\n\n'
        "PRETTY_NAME='U 22'\n"
    )
    assert parse_os_release(text) == {
        "NAME": "Ubuntu",
        "VERSION_ID": "22.04",
        "ID": "ubuntu",
        "ID_LIKE": "debian",
        "PRETTY_NAME": "U 22",
    }


def test_host_probe_reads_os_release_under_its_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text(
        'ID=rocky\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3"\n'
    )
    info = HostProbe(root=str(tmp_path)).operating_system()
    if info.system == "Linux":
        assert (info.id, info.id_like, info.version_id) == (
            "rocky",
            ("rhel", "centos", "fedora"),
            "9.3",
        )


def _tcp_table(rows: list[tuple[str, str, str, int]]) -> str:
    """A /proc/net/tcp{,6} table: (local, remote, state, inode) per socket, the other
    columns as the kernel fills them."""
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt uid ..."
    lines = [
        f"{n:4}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000 0 0 {inode} 1 0"
        for n, (local, remote, state, inode) in enumerate(rows)
    ]
    return "\n".join([header, *lines]) + "\n"


PROC_NET_TCP = _tcp_table(
    [
        ("0100007F:0BB8", "00000000:0000", "0A", 31337),  # 127.0.0.1:3000 listening
        ("00000000:0050", "00000000:0000", "0A", 4242),  # 0.0.0.0:80 listening
        ("0100007F:0BB8", "0100007F:D431", "01", 5555),  # an established connection
        ("00000000:1F42", "00000000:0000", "0A", 777),  # 0.0.0.0:8002, not asked about
    ]
)
ANY6 = "0" * 32
PROC_NET_TCP6 = _tcp_table(
    [
        (f"{ANY6}:01BB", f"{ANY6}:0000", "0A", 888),  # [::]:443
        ("00000000000000000000000001000000:0BB8", f"{ANY6}:0000", "0A", 999),  # [::1]:3000
    ]
)


def test_proc_net_tcp_listeners_on_the_ports_asked() -> None:
    assert parse_proc_net_tcp(PROC_NET_TCP, {80, 3000}) == [
        ("127.0.0.1", 3000, 31337),  # the established connection on 3000 is not a listener
        ("0.0.0.0", 80, 4242),  # noqa: S104
    ]
    assert parse_proc_net_tcp(PROC_NET_TCP6, {443, 3000}) == [
        ("::", 443, 888),
        ("::1", 3000, 999),
    ]


def test_meminfo() -> None:
    text = (
        "MemTotal:       24684096 kB\nMemFree:  1 kB\nMemAvailable:   23978672 kB\n"
        "HugePages_Total: 0\n"
    )
    assert read_meminfo(text) == (24684096 * 1024, 23978672 * 1024)


def test_cgroup_v2(tmp_path: Path) -> None:
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cgroup.controllers").write_text(
        "cpuset cpu io memory hugetlb pids\n"
    )
    info = cgroup_from_fs(tmp_path)
    assert info.version == 2
    assert {"cpu", "memory", "pids"} <= info.controllers


def test_cgroup_v1_from_proc_cgroups(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cgroups").write_text(
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
        "cpuset\t3\t1\t1\ncpuacct\t2\t1\t1\nmemory\t0\t1\t0\npids\t8\t1\t1\n"
    )
    info = cgroup_from_fs(tmp_path)
    assert info.version == 1
    assert "memory" not in info.controllers  # present but disabled
    assert {"cpu", "pids"} <= info.controllers


def test_cgroup_unreadable(tmp_path: Path) -> None:
    assert cgroup_from_fs(tmp_path).version is None


def test_physical_cores_count_smt_siblings_once(tmp_path: Path) -> None:
    for cpu, (package, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0)]):
        topology = tmp_path / f"cpu{cpu}/topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    (tmp_path / "cpufreq").mkdir()  # not a CPU
    assert physical_cores_from_sysfs(tmp_path) == 3
    assert physical_cores_from_sysfs(tmp_path / "missing") is None


def test_versions_and_sizes() -> None:
    assert version_tuple("20.10.24+dfsg1") == (20, 10, 24)
    assert version_tuple("v2.40.3") == (2, 40, 3)
    assert version_tuple("6.18.44-fc-v595") == (6, 18, 44)
    assert version_tuple("5.15.0-1051-azure") == (5, 15, 0)
    assert version_tuple("22.04") == (22, 4)
    assert version_tuple(None) == ()
    assert size(8 * 1024**3) == "8 GiB"
    assert size(7.36 * 1024**3) == "7.36 GiB"
    assert size(23.54 * 1024**3) == "23.5 GiB"
    assert size(512 * 1024**3) == "512 GiB"


# --------------------------------------------------------------------------- ports


@pytest.fixture
def listener() -> Iterator[Callable[..., socket.socket]]:
    opened: list[socket.socket] = []

    def listen(
        address: str = "127.0.0.1", *, family: int = socket.AF_INET, reuse: bool = False
    ) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, 0))
        sock.listen()
        opened.append(sock)
        return sock

    yield listen
    for sock in opened:
        sock.close()


def test_a_loopback_listener_takes_the_port(listener: Callable[..., socket.socket]) -> None:
    port = listener("127.0.0.1").getsockname()[1]
    busy, untested = ports_taken_by_binding([port])
    assert (busy, untested) == ({port}, set())


def test_a_listener_that_shares_addresses_still_takes_the_port(
    listener: Callable[..., socket.socket],
) -> None:
    port = listener("127.0.0.1", reuse=True).getsockname()[1]
    assert ports_taken_by_binding([port])[0] == {port}


def test_an_ipv6_only_listener_takes_the_port(listener: Callable[..., socket.socket]) -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 sockets")
    try:
        port = listener("::1", family=socket.AF_INET6).getsockname()[1]
    except OSError as e:
        pytest.fail(f"cannot listen on ::1 here: {e}")
    assert ports_taken_by_binding([port])[0] == {port}


def test_a_closed_port_is_free(listener: Callable[..., socket.socket]) -> None:
    sock = listener("127.0.0.1")
    port = sock.getsockname()[1]
    sock.close()
    assert ports_taken_by_binding([port]) == (set(), set())


def test_the_scan_names_this_process(listener: Callable[..., socket.socket]) -> None:
    port = listener("127.0.0.1").getsockname()[1]
    scan = HostProbe().listeners([port])
    assert scan.complete
    assert [(item.port, item.address, item.pid) for item in scan.listeners] == [
        (port, "127.0.0.1", os.getpid())
    ]
    assert scan.listeners[0].process


# --------------------------------------------------------------------------- Docker socket


class EngineStandIn:
    """A unix socket that answers each connection with one canned reply, for the error
    branches a real Engine cannot be made to take (garbage, HTTP errors, chunking)."""

    def __init__(self, path: Path, replies: dict[str, bytes]) -> None:
        self.path = path
        self.replies = replies
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(65536).decode()
                path = request.split(" ")[1]
                conn.sendall(self.replies.get(path, b"HTTP/1.0 404 Not Found\r\n\r\n"))

    def close(self) -> None:
        self.server.close()


def _http(body: object, status: str = "200 OK", chunked: bool = False) -> bytes:
    payload = json.dumps(body).encode()
    api = b"Api-Version: 1.47\r\n"  # every Engine answer names its API version
    if chunked:
        middle = len(payload) // 2
        parts = [payload[:middle], payload[middle:]]
        encoded = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        head = b"HTTP/1.1 " + status.encode() + b"\r\n" + api + b"Transfer-Encoding: chunked\r\n"
        return head + b"\r\n" + encoded
    return (
        b"HTTP/1.0 "
        + status.encode()
        + b"\r\n"
        + api
        + b"Content-Length: %d\r\n\r\n" % len(payload)
        + payload
    )


INFO = {
    "ServerVersion": "27.3.1",
    "Driver": "overlay2",
    "DockerRootDir": "/srv/docker",
    "CgroupVersion": "2",
    "MemoryLimit": True,
    "HttpsProxy": "http://proxy:3128",
    "NCPU": 16,
    "MemTotal": 68719476736,
}


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cq-") as directory:
        yield Path(directory)


def test_engine_answers_are_read(short_tmp: Path) -> None:
    engine = EngineStandIn(short_tmp / "d.sock", {"/info": _http(INFO, chunked=True)})
    try:
        info = query_docker(f"unix://{short_tmp}/d.sock", 2)
    finally:
        engine.close()
    assert info.reachable
    assert (info.version, info.api_version, info.storage_driver) == ("27.3.1", "1.47", "overlay2")
    assert (info.root_dir, info.cgroup_version, info.memory_limit) == ("/srv/docker", 2, True)
    assert (info.https_proxy, info.ncpu) == ("http://proxy:3128", 16)


@pytest.mark.parametrize(
    ("replies", "detail"),
    [
        ({"/info": _http({"message": "page not found"}, "404 Not Found")}, "HTTP 404"),
        ({"/info": b"SSH-2.0-OpenSSH_9.2\r\n"}, "not an HTTP answer"),
        ({"/info": _http([1, 2, 3])}, "no JSON object"),
        ({"/info": b"HTTP/1.0 200 OK\r\n\r\n{not json"}, "JSONDecode"),
    ],
)
def test_something_else_on_the_socket_is_a_protocol_error(
    short_tmp: Path, replies: dict[str, bytes], detail: str
) -> None:
    engine = EngineStandIn(short_tmp / "d.sock", replies)
    try:
        info = query_docker(f"unix://{short_tmp}/d.sock", 2)
    finally:
        engine.close()
    assert not info.reachable
    assert info.error == "protocol"
    assert detail in (info.error_detail or "")


def test_missing_and_stale_sockets_mean_the_daemon_is_not_running(short_tmp: Path) -> None:
    missing = query_docker(f"unix://{short_tmp}/none.sock", 1)
    assert (missing.error, missing.error_detail) == ("not_running", "no such socket")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(short_tmp / "stale.sock"))  # bound, never listening: a daemon that died
    try:
        refused = query_docker(f"unix://{short_tmp}/stale.sock", 1)
    finally:
        stale.close()
    assert (refused.error, refused.error_detail) == ("not_running", "connection refused")


def test_a_silent_socket_times_out(short_tmp: Path) -> None:
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(str(short_tmp / "silent.sock"))
    silent.listen()  # accepts (in the kernel) but never answers
    try:
        info = query_docker(f"unix://{short_tmp}/silent.sock", 0.2)
    finally:
        silent.close()
    assert (info.error, info.error_detail) == ("timeout", "no answer within 0.2 s")


def test_unsupported_endpoints() -> None:
    info = query_docker("ssh://admin@server", 1)
    assert (info.reachable, info.error) == (False, "unsupported")


def test_the_probe_asks_the_engine_the_resolver_names(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No socket at the system path, a rootless daemon's socket in XDG_RUNTIME_DIR: the
    probe asks that one, as apply and bundle do (installer.engine.endpoint)."""
    engine = EngineStandIn(short_tmp / "docker.sock", {"/info": _http(INFO)})
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    monkeypatch.setenv(DEFAULT_SOCKET_VARIABLE, str(short_tmp / "none.sock"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_tmp))
    try:
        info = HostProbe().docker(2.0)
    finally:
        engine.close()
    assert (info.reachable, info.endpoint) == (True, f"unix://{short_tmp}/docker.sock")
    assert info.endpoint_from_env is False


# --------------------------------------------------------------------------- Compose


def _fake_compose(path: Path, version: str, counter: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!/bin/sh\necho run >> {counter}\n"
        f'[ "$1 $2" = "version --short" ] && echo {version} && exit 0\nexit 1\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_compose_plugin_in_the_users_docker_config_comes_first(tmp_path: Path) -> None:
    plugin = _fake_compose(tmp_path / "docker/cli-plugins/docker-compose", "2.19.1", tmp_path / "n")
    env = {"DOCKER_CONFIG": str(tmp_path / "docker"), "PATH": "", "HOME": str(tmp_path)}
    assert compose_candidates(env)[0] == str(plugin)


def test_compose_version_is_remembered_until_the_binary_changes(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    plugin = _fake_compose(tmp_path / "plugins/docker-compose", "v2.19.1", counter)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    first = cached_compose_version(str(plugin), 5, env)
    second = cached_compose_version(str(plugin), 5, env)
    assert first.version == second.version == "2.19.1"
    assert counter.read_text().count("run") == 1  # the second answer came from the cache
    assert Path(compose_cache_file(env)).is_file()
    _fake_compose(plugin, "2.29.7", counter)  # an upgrade rewrites the binary
    assert cached_compose_version(str(plugin), 5, env).version == "2.29.7"
    assert counter.read_text().count("run") == 2


def test_compose_that_fails_is_not_remembered(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    plugin = tmp_path / "docker-compose"
    plugin.write_text(f"#!/bin/sh\necho run >> {counter}\nexit 3\n")
    plugin.chmod(0o755)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    info = cached_compose_version(str(plugin), 5, env)
    assert info.version is None
    assert "exited 3" in (info.error or "")
    assert not Path(compose_cache_file(env)).exists()


def test_no_compose_anywhere(tmp_path: Path) -> None:
    probe = HostProbe(environ={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    info = probe.compose(1)
    if info.path is None:  # a system plugin directory may hold one on this machine
        assert info.error == "no docker-compose plugin or binary found"


# --------------------------------------------------------------------------- install_dir


def test_write_access_of_a_missing_directory_checks_its_parent(tmp_path: Path) -> None:
    access = probe_write_access(str(tmp_path / "a/b/codequal"))
    assert (access.exists, access.writable, access.checked_at) == (False, True, str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # the test file is gone again


def test_write_access_lists_what_is_already_there(tmp_path: Path) -> None:
    for name in ("state", "docker-compose.yml", "notes.txt"):
        (tmp_path / name).touch()
    access = probe_write_access(str(tmp_path))
    assert access.writable and access.exists and access.is_dir
    assert access.entry_count == 3
    assert set(access.entries) == {"state", "docker-compose.yml", "notes.txt"}


def test_a_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "codequal").write_text("x")
    access = probe_write_access(str(tmp_path / "codequal"))
    assert (access.exists, access.is_dir, access.writable) == (True, False, False)


def test_a_file_system_that_takes_no_files() -> None:
    # procfs refuses new files, even to root: a real unwritable place on every Linux host.
    access = probe_write_access("/proc/codequal-install")
    assert access.checked_at == "/proc"
    assert not access.writable
    assert access.error
