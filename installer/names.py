"""The names the command line offers as choices, without loading the answer-file model.

``installer.cli`` builds its options (``--target``, ``--skip``) at import time, and every
start of the program, the wizard's included, imports it; the pydantic model in
:mod:`installer.answers` costs a large share of start-up. These tuples are the same
lists as the model's ``Literal`` types (a unit test holds the two together).
"""

from __future__ import annotations

TARGETS: tuple[str, ...] = ("development", "production", "kubernetes", "enterprise")

CHECK_NAMES: tuple[str, ...] = (
    "cpu",
    "memory",
    "disk",
    "docker_disk",
    "os",
    "kernel",
    "architecture",
    "cgroup",
    "docker",
    "compose",
    "ports",
    "dns",
    "kubernetes",
    "install_dir",
)
