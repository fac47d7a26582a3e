"""The Secrets of an export: an example with placeholders, and the script that creates them.

An export never holds a secret value. The Secrets the Kubernetes target would apply are
rendered with a placeholder for each secret (see :func:`installer.export.objects.placeholder`),
so their names, types and keys are exactly the installer's; the values become references to
the installer's own environment variables (``CODEQUAL_<KEY>``). ``create-secrets.sh`` runs
one ``kubectl create secret`` per Secret from those variables; passwords the installer would
generate are generated there when unset, as the installer does.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any

from installer.export.objects import PLACEHOLDER, ExportError, env_name

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.export.objects import InstallObjects

SCRIPT = "create-secrets.sh"
EXAMPLE = "secrets.example.yaml"
# Passwords the installer generates when nobody supplies them.
GENERATED = ("database_password", "grafana_admin_password")
TLS_CERT_VARIABLE = "CODEQUAL_TLS_CERT_FILE"
TLS_KEY_VARIABLE = "CODEQUAL_TLS_KEY_FILE"
_SHELL_SPECIAL = re.compile(r'([\\"$`])')


def _keys_in(value: str) -> list[str]:
    return [m.group(1).lower() for m in PLACEHOLDER.finditer(value)]


def _shell_value(value: str) -> str:
    """``value`` as a double-quoted shell word, each placeholder a variable expansion."""
    out, last = [], 0
    for match in PLACEHOLDER.finditer(value):
        out.append(_SHELL_SPECIAL.sub(r"\\\1", value[last : match.start()]))
        out.append("${" + env_name(match.group(1).lower()) + "}")
        last = match.end()
    out.append(_SHELL_SPECIAL.sub(r"\\\1", value[last:]))
    return '"' + "".join(out) + '"'


def _example_value(value: str) -> str:
    return PLACEHOLDER.sub(lambda m: "${" + env_name(m.group(1).lower()) + "}", value)


def _name(secret: dict[str, Any]) -> str:
    return str(secret["metadata"]["name"])


def _opaque_items(secret: dict[str, Any]) -> dict[str, str]:
    items = dict(secret.get("stringData") or {})
    for key, value in items.items():
        if value and not _keys_in(value):
            raise ExportError(
                f"Secret {_name(secret)} key {key} holds a value that is not a placeholder",
                hint="report this: the export refuses to write a secret into a file",
            )
    return items


def secret_files(install: InstallObjects, answers: AnswerFile) -> dict[str, str]:
    """``secrets.example.yaml`` and ``create-secrets.sh`` for the Secrets of ``install``."""
    from installer.render.context import required_secrets

    required = dict(required_secrets(answers))
    namespace = answers.kubernetes.namespace
    used: list[str] = []
    commands: list[list[str]] = []
    examples: list[dict[str, Any]] = []
    for secret in install.secrets:
        name = _name(secret)
        kind = secret.get("type", "Opaque")
        where = [f"--namespace {shlex.quote(namespace)}"]
        meta = {"name": name, "namespace": namespace}
        if kind == "kubernetes.io/tls":
            cert = "${" + TLS_CERT_VARIABLE + "}"
            key = "${" + TLS_KEY_VARIABLE + "}"
            commands.append(
                [f"secret tls {shlex.quote(name)}", *where, f'--cert="{cert}"', f'--key="{key}"']
            )
            data = {"tls.crt": f"<PEM certificate from {cert}>", "tls.key": f"<PEM key from {key}>"}
        elif kind == "kubernetes.io/dockerconfigjson":
            mirror = answers.registry.mirror or ""
            user = answers.registry.username or ""
            used.append("registry_password")
            commands.append(
                [
                    f"secret docker-registry {shlex.quote(name)}",
                    *where,
                    f"--docker-server={shlex.quote(mirror.split('/')[0])}",
                    f"--docker-username={shlex.quote(user)}",
                    '--docker-password="${' + env_name("registry_password") + '}"',
                ]
            )
            data = {".dockerconfigjson": "<made by kubectl create secret docker-registry>"}
        else:
            items = _opaque_items(secret)
            command = [f"secret generic {shlex.quote(name)}", *where]
            for key, value in items.items():
                used.extend(k for k in _keys_in(value) if k not in used)
                command.append(f"--from-literal={shlex.quote(key)}={_shell_value(value)}")
            commands.append(command)
            data = {key: _example_value(value) for key, value in items.items()}
        example = {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": kind}
        examples.append({**example, "stringData": data})
    return {
        SCRIPT: _script(answers, used, required, commands, install),
        EXAMPLE: _example(answers, examples),
    }


def _script(
    answers: AnswerFile,
    used: list[str],
    required: dict[str, str],
    commands: list[list[str]],
    install: InstallObjects,
) -> str:
    lines = [
        "#!/bin/sh",
        f"# Creates the Secrets CodeQual reads in namespace {answers.kubernetes.namespace}",
        "# (they are never part of the chart or the manifests). Each value comes from the",
        "# environment variable the installer itself reads:",
    ]
    for key in used:
        if key in required:
            what = f"required: {required[key]}"
        elif key in GENERATED:
            what = "generated when unset"
        else:
            what = "empty when unset"
        lines.append(f"#   {env_name(key)}  ({what})")
    if any(s.get("type") == "kubernetes.io/tls" for s in install.secrets):
        lines.append(f"#   {TLS_CERT_VARIABLE}, {TLS_KEY_VARIABLE}  (required: PEM files)")
    lines += [
        "# A password inside DATABASE_URL must be percent-encoded if it has reserved characters.",
        "# Arguments go to every kubectl command: --context NAME, or --dry-run=client -o yaml",
        "# to print the Secrets instead (then pipe into kubectl apply -f - to update them).",
        "set -eu",
        'KUBECTL="${KUBECTL:-kubectl}"',
    ]
    for key in used:
        variable = env_name(key)
        if key in required:
            lines.append(f': "${{{variable}:?{variable} is required (see above)}}"')
        elif key in GENERATED:
            lines.append(f": \"${{{variable}:=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \\n')}}\"")
        else:
            lines.append(f': "${{{variable}=}}"')
    tls = answers.tls
    if any(s.get("type") == "kubernetes.io/tls" for s in install.secrets):
        for variable, default in (
            (TLS_CERT_VARIABLE, tls.cert_file if tls.mode == "provided" else None),
            (TLS_KEY_VARIABLE, tls.key_file if tls.mode == "provided" else None),
        ):
            if default:
                lines.append(f': "${{{variable}:={_shell_value(default)[1:-1]}}}"')
            else:
                lines.append(f': "${{{variable}:?{variable} is required: a PEM file}}"')
    lines.append('separator() { if [ "$#" -gt 0 ]; then printf -- "---\\n"; fi; }')
    for command in commands:
        lines.append('separator "$@"')
        body = " \\\n\t".join(command)
        lines.append(f'"$KUBECTL" create {body} \\\n\t"$@"')
    return "\n".join(lines) + "\n"


def _example(answers: AnswerFile, examples: list[dict[str, Any]]) -> str:
    from installer.export.yamltext import dump

    header = [
        "# The Secrets CodeQual reads; the export holds no secret value, only these",
        "# placeholders. Create them with the script beside this file, which takes each",
        "# value from the environment variable named here:",
        f"#   CODEQUAL_ANTHROPIC_API_KEY=... sh {SCRIPT}",
        "# or fill in a copy of this file, keep it out of Git (or encrypt it, e.g. with SOPS",
        "# or Sealed Secrets) and apply it with kubectl apply -f.",
    ]
    docs = [dump(doc) for doc in examples]
    return "\n".join(header) + "\n" + "".join(docs)
