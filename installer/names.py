"""The names of the targets and the prerequisite checks: defined once, here.

The answer-file model (:mod:`installer.answers`) types ``target`` and ``checks.skip`` with
these ``Literal`` types, and the command line offers the same tuples as its choices. They
live in this small module because :mod:`installer.cli` builds its options when it is
imported, before any command has decided whether it needs the pydantic model.
"""

from __future__ import annotations

from typing import Literal, get_args

Target = Literal["development", "production", "kubernetes", "enterprise"]
CheckName = Literal[
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
    # Live checks (installer.live): the answers tried against the world.
    "images",
    "database",
    "ldap",
    "tls",
    "proxy",
    "deepwiki",
    "supabase",
    "oidc",
]

TARGETS: tuple[Target, ...] = get_args(Target)
CHECK_NAMES: tuple[CheckName, ...] = get_args(CheckName)
COMPOSE_TARGETS: frozenset[Target] = frozenset({"development", "production"})
KUBERNETES_TARGETS: frozenset[Target] = frozenset({"kubernetes", "enterprise"})
