"""Putting back the main Engine's default bridge after a second dockerd took it down.

A ``dockerd`` started with ``--bridge none`` deletes the host's ``docker0`` on start-up (Moby
removes the default bridge interface when the bridge is disabled), even though another daemon
owns it; every container on the default network then fails to start ("could not find bridge
docker0"). Call :func:`restore_default_bridge` after such a daemon has run. scripts/test does
the same before a run.
"""

from __future__ import annotations

import ipaddress
import subprocess
from typing import Any


def restore_default_bridge(client: Any) -> bool:
    """Recreate the default network's bridge when it is gone; True when it had to."""
    network = client.networks.get("bridge")
    name = network.attrs.get("Options", {}).get("com.docker.network.bridge.name", "docker0")
    if (
        subprocess.run(["ip", "link", "show", name], capture_output=True, check=False).returncode
        == 0
    ):
        return False
    config = (network.attrs.get("IPAM", {}).get("Config") or [{}])[0]
    subnet = ipaddress.ip_network(config.get("Subnet", "172.17.0.0/16"))
    gateway = config.get("Gateway") or str(next(subnet.hosts()))
    for command in (
        ["ip", "link", "add", name, "type", "bridge"],
        ["ip", "addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", name],
        ["ip", "link", "set", name, "up"],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return True


def main() -> int:
    import docker

    client = docker.from_env()
    try:
        if restore_default_bridge(client):
            print("==> the Docker default bridge was missing: recreated it", flush=True)
    except (subprocess.CalledProcessError, docker.errors.DockerException) as e:
        print(f"cannot restore the Docker default bridge: {e}", flush=True)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
