"""``plan --format helm``: a Helm chart whose templates are the installer's own objects.

Equal by construction: each template is one object the Kubernetes target applies (see
:func:`installer.export.objects.install_objects`), written out as YAML, with a template
expression in exactly the fields that a chart value decides. Those fields are found, not
listed: the answers are rendered again with the value changed (:mod:`installer.export.values`),
and each field that changed must be the value written into it (a number, or the old text
with the value replaced). Anything else (an object added or removed, a field changed some
other way) means the value is not one the chart can carry, and the export refuses.
Rendered with its default values, the chart therefore gives back the objects it was made
from; the tests render it with a Helm-compatible harness and compare.

The chart holds no secret: the Secrets are left out (the templates name them through the
``existingSecret`` values) and written only as ``secrets.example.yaml`` and
``create-secrets.sh`` beside it (see :mod:`installer.export.secrets`).
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from installer.export.objects import ExportError, InstallObjects, identity, install_objects
from installer.export.values import (
    CHART_ONLY_SCHEMAS,
    CHART_VALUES,
    HOSTNAME_PATTERN,
    MIRROR_PATH,
    MIRROR_PERTURBED,
    ROUTE_KEY_SCHEMA,
    ChartValue,
)

if TYPE_CHECKING:
    from installer.answers import AnswerFile
    from installer.release import ReleaseManifest

CHART_NAME = "codequal"
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"  # what Helm 3 validates with
_MARKER = "@@codequal-value-{}@@"
_MARKED = re.compile(r"""['"]?@@codequal-value-(\d+)@@['"]?""")
# The Secrets the objects name, and the value that names each in the chart.
SECRET_VALUES = {
    "codequal-secrets": "existingSecret",
    "codequal-tls": "existingTlsSecret",
    "codequal-registry": "existingRegistrySecret",
}
_SECRET_REF_KEYS = frozenset({"name", "secretName"})

HELPERS = """\
{{/*
The image a service runs: "image" as it is, or pulled through "mirror" (host[:port][/path]):
the registry host is replaced and the repository path kept; a Docker Hub short name gains
Hub's implicit library/ prefix (the installer's own rewrite, installer/engine/images.py).
*/}}
{{- define "codequal.image" -}}
{{- $ref := .image -}}
{{- if .mirror -}}
{{- $parts := splitn "/" 2 $ref -}}
{{- $first := $parts._0 -}}
{{- $host := or (contains "." $first) (contains ":" $first) (eq $first "localhost") -}}
{{- $registry := and $parts._1 $host -}}
{{- if $registry -}}
{{- $ref = $parts._1 -}}
{{- end -}}
{{- $hubNames := list "docker.io" "index.docker.io" "registry-1.docker.io" -}}
{{- $hub := or (not $registry) (has $first $hubNames) -}}
{{- if and $hub (not (contains "/" $ref)) -}}
{{- $ref = printf "library/%s" $ref -}}
{{- end -}}
{{- printf "%s/%s" (trimSuffix "/" .mirror) $ref -}}
{{- else -}}
{{- $ref -}}
{{- end -}}
{{- end -}}
"""

HELMIGNORE = """\
# Beside the chart, not part of it.
secrets.example.yaml
create-secrets.sh
.yamllint.yaml
"""


@dataclass
class _Template:
    """Where each chart value lands: (object index, field path) -> template expression."""

    fields: dict[tuple[int, tuple[Any, ...]], str] = field(default_factory=dict)

    def put(self, index: int, path: tuple[Any, ...], expression: str, what: str) -> None:
        if (index, path) in self.fields and self.fields[(index, path)] != expression:
            raise ExportError(f"two chart values decide the same field ({what})")
        self.fields[(index, path)] = expression


def _get(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


class _Structural(Exception):
    pass


def _changed(a: Any, b: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any, Any]]:
    """The leaves where ``a`` and ``b`` differ; :class:`_Structural` when their shape does."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            raise _Structural(path)
        return [c for k in a for c in _changed(a[k], b[k], (*path, k))]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise _Structural(path)
        pairs = enumerate(zip(a, b, strict=True))
        return [c for i, (x, y) in pairs for c in _changed(x, y, (*path, i))]
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        raise _Structural(path)
    return [] if (a == b and type(a) is type(b)) else [(path, a, b)]


def _go_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _with_value(answers: AnswerFile, path: tuple[str, ...], value: Any) -> AnswerFile:
    from installer.answers import AnswerFile

    data = answers.model_dump(mode="json", exclude_none=False)
    _set(data, path, value)
    return AnswerFile.model_validate(data)


def _changes(
    base: InstallObjects, other: InstallObjects, what: str
) -> list[tuple[int, tuple[Any, ...], Any, Any]]:
    by_id = {identity(o): o for o in other.objects}
    if sorted(by_id) != sorted(identity(o) for o in base.objects):
        raise ExportError(f"changing {what} adds or removes objects: it cannot be a chart value")
    out = []
    for index, obj in enumerate(base.objects):
        try:
            diffs = _changed(obj, by_id[identity(obj)])
        except _Structural as e:
            raise ExportError(
                f"changing {what} reshapes {identity(obj)} at {e.args[0]}: "
                "it cannot be a chart value"
            ) from None
        out += [(index, path, old, new) for path, old, new in diffs]
    return out


def _expression(value: ChartValue, current: Any, new_value: Any, old: Any, new: Any) -> str:
    ref = ".Values." + value.dotted
    if isinstance(current, int) and old == current and new == new_value:
        return ref
    if (
        isinstance(current, str)
        and isinstance(old, str)
        and current in old
        and old.replace(current, new_value) == new
    ):
        parts = old.split(current)
        if parts == ["", ""]:
            return ref
        pieces = [_go_string(parts[0])]
        for part in parts[1:]:
            pieces += [ref, _go_string(part)]
        return "print " + " ".join(pieces)
    raise ExportError(
        f"changing {value.dotted} changes a field from {old!r} to {new!r}, "
        "not by writing the value into it"
    )


@dataclass
class Chart:
    """The chart for one answer file: its values, their schema, and its templates."""

    answers: AnswerFile
    release: ReleaseManifest
    install: InstallObjects
    values: dict[str, Any]
    templates: _Template
    used_values: list[ChartValue]
    images: dict[str, str]


def build_chart(answers: AnswerFile, release: ReleaseManifest) -> Chart:
    """Find where each chart value lands in the objects of ``answers``."""
    from installer.render.images import mirrored

    base = install_objects(answers, release)
    data = answers.model_dump(mode="json", exclude_none=False)
    template = _Template()
    values: dict[str, Any] = {}
    used: list[ChartValue] = []
    for value in CHART_VALUES:
        current = _get(data, value.path)
        if value.optional and current is None:
            continue
        new_value = value.perturbed(current)
        other = install_objects(_with_value(answers, value.path, new_value), release)
        changes = _changes(base, other, value.dotted)
        if not changes:
            continue  # the value decides nothing in these objects (e.g. replicas under an HPA)
        for index, path, old, new in changes:
            template.put(
                index, path, _expression(value, current, new_value, old, new), value.dotted
            )
        _set(values, value.path, current)
        used.append(value)

    # The mirror rewrite: each image field is the service's image pulled through the mirror.
    mirror = answers.registry.mirror
    images = {name: release.image_for(name, answers) for name in release.services}
    perturbed = install_objects(_with_value(answers, MIRROR_PATH, MIRROR_PERTURBED), release)
    chart_images: dict[str, str] = {}
    for index, path, old, new in _changes(base, perturbed, "registry.mirror"):
        service = next(
            (
                name
                for name, ref in images.items()
                if path[-1] == "image"
                and mirrored(ref, mirror) == old
                and mirrored(ref, MIRROR_PERTURBED) == new
            ),
            None,
        )
        if service is None:
            raise ExportError(f"changing registry.mirror changes {old!r}, which is not an image")
        chart_images[service] = images[service]
        template.put(
            index,
            path,
            f'include "codequal.image" (dict "image" .Values.images.{service} '
            '"mirror" .Values.registry.mirror)',
            "registry.mirror",
        )
    _set(values, MIRROR_PATH, mirror)
    values["images"] = dict(sorted(chart_images.items()))
    values["createNamespace"] = True

    secret_names = {s["metadata"]["name"] for s in base.secrets}
    for index, obj in enumerate(base.objects):
        for path, leaf in _leaves(obj):
            if (
                path[0] != "metadata"
                and path[-1] in _SECRET_REF_KEYS
                and leaf in secret_names
                and leaf in SECRET_VALUES
            ):
                template.put(index, path, f".Values.{SECRET_VALUES[leaf]}", "a Secret's name")
                values[SECRET_VALUES[leaf]] = leaf
        if obj.get("kind") == "Route" and "key" in ((obj.get("spec") or {}).get("tls") or {}):
            message = (
                "routeTLS.key is required: the PEM key of the Routes' certificate "
                "(helm --set-file routeTLS.key=tls.key)"
            )
            template.put(
                index,
                ("spec", "tls", "key"),
                f"required {_go_string(message)} .Values.routeTLS.key",
                "routeTLS.key",
            )
            values["routeTLS"] = {"key": ""}
    return Chart(answers, release, base, values, template, used, chart_images)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _template_text(obj: dict[str, Any], fields: dict[tuple[Any, ...], str]) -> str:
    from installer.export.yamltext import dump

    marked = copy.deepcopy(obj)
    expressions: list[str] = []
    for path, expression in sorted(fields.items(), key=lambda item: repr(item[0])):
        node = marked
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _MARKER.format(len(expressions))
        expressions.append(expression)
    text = dump(marked)
    # Literal text that looks like an action (Prometheus and Grafana use {{ }} too).
    text = text.replace("{{", '{{ "{{" }}')
    return _MARKED.sub(lambda m: "{{ " + expressions[int(m.group(1))] + " | toJson }}", text)


def chart_templates(chart: Chart) -> dict[str, str]:
    """``templates/<file>``: one per object, named as the installer's ``kubernetes/`` files."""
    out: dict[str, str] = {}
    for index, obj in enumerate(chart.install.objects):
        fields = {path: e for (i, path), e in chart.templates.fields.items() if i == index}
        text = _template_text(obj, fields)
        if obj.get("kind") == "Namespace":
            text = "{{- if .Values.createNamespace }}\n" + text + "{{- end }}\n"
        name = chart.install.paths[index].rsplit("/", 1)[-1]
        out[f"templates/{name}"] = text
    return out


# --- values.yaml, values.schema.json, README.md --------------------------------------------


def _answer_schema(path: tuple[str, ...]) -> dict[str, Any]:
    from installer.reference import answers_schema

    schema = answers_schema()
    node: dict[str, Any] = schema
    for key in path:
        node = node["properties"][key]
        if "$ref" in node:
            described = {k: v for k, v in node.items() if k != "$ref"}
            node = {**schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], **described}
    return {k: v for k, v in node.items() if k not in ("title", "default")}


def _leaf_schema(path: tuple[str, ...]) -> dict[str, Any]:
    from installer.answers import _REGISTRY

    leaf = _answer_schema(path)
    if path == ("domain",):
        leaf.update(pattern=HOSTNAME_PATTERN, maxLength=253)
    if path == MIRROR_PATH:
        leaf["anyOf"] = [{"type": "string", "pattern": _REGISTRY.pattern}, {"type": "null"}]
    if path in (("kubernetes", "storage_class"), ("kubernetes", "ingress_class")):
        leaf.pop("anyOf", None)
        leaf.update(type="string", minLength=1)
    return leaf


def values_schema(chart: Chart) -> dict[str, Any]:
    """JSON Schema of the chart's values: the answer model's own for answer-file fields."""
    from installer.answers import _IMAGE_REF

    root: dict[str, Any] = {"type": "object", "properties": {}}

    def place(path: tuple[str, ...], leaf: dict[str, Any]) -> None:
        node = root
        for depth, key in enumerate(path[:-1]):
            props = node.setdefault("properties", {})
            if key not in props:
                props[key] = {
                    "type": "object",
                    "description": _answer_schema(path[: depth + 1]).get("description", ""),
                    "properties": {},
                }
            node = props[key]
        node.setdefault("properties", {})[path[-1]] = leaf

    for value in chart.used_values:
        place(value.path, _leaf_schema(value.path))
    place(MIRROR_PATH, _leaf_schema(MIRROR_PATH))
    image = {"type": "string", "pattern": _IMAGE_REF.pattern}
    images = dict(CHART_ONLY_SCHEMAS["images"])
    images["properties"] = {
        name: {**image, "description": f"Image of {name}."} for name in chart.values["images"]
    }
    place(("images",), images)
    for key in ("createNamespace", "existingSecret", "existingTlsSecret", "existingRegistrySecret"):
        if key in chart.values:
            place((key,), dict(CHART_ONLY_SCHEMAS[key]))
    if "routeTLS" in chart.values:
        route = dict(CHART_ONLY_SCHEMAS["routeTLS"])
        route["properties"] = {"key": dict(ROUTE_KEY_SCHEMA)}
        place(("routeTLS",), route)

    def close(node: dict[str, Any]) -> None:
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node["properties"])
            for child in node["properties"].values():
                close(child)

    close(root)
    return {"$schema": SCHEMA_DIALECT, "title": "CodeQual chart values", **root}


def _schema_leaves(
    schema: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    out = []
    for key, child in schema.get("properties", {}).items():
        if child.get("type") == "object" and child.get("properties"):
            out += _schema_leaves(child, (*prefix, key))
        else:
            out.append(((*prefix, key), child))
    return out


def _type_of(leaf: dict[str, Any]) -> str:
    if "anyOf" in leaf:
        return " or ".join(str(a.get("type")) for a in leaf["anyOf"])
    return str(leaf.get("type", "any"))


def values_table(schema: dict[str, Any], values: dict[str, Any]) -> str:
    """The README's table of values: one row per leaf of ``schema``, default from ``values``."""
    rows = ["| value | type | default | description |", "|-------|------|---------|-------------|"]
    for path, leaf in _schema_leaves(schema):
        default = json.dumps(_get(values, path))
        description = str(leaf.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{'.'.join(path)}` | {_type_of(leaf)} | `{default}` | {description} |")
    return "\n".join(rows) + "\n"


def values_yaml(chart: Chart, schema: dict[str, Any], source: str) -> str:
    """values.yaml: every value written out, each with its description above it."""
    from ruamel.yaml.comments import CommentedMap

    from installer.export.yamltext import dump

    def commented(values: dict[str, Any], node: dict[str, Any], indent: int) -> CommentedMap:
        out = CommentedMap()
        for key, value in values.items():
            child = node.get("properties", {}).get(key, {})
            out[key] = commented(value, child, indent + 2) if isinstance(value, dict) else value
            description = child.get("description")
            if description:
                text = textwrap.fill(description, width=88 - indent)
                out.yaml_set_comment_before_after_key(key, before=text, indent=indent)
        return out

    header = (
        f"# Values of the CodeQual {chart.release.version} chart, exported from {source}.\n"
        "# Everything else (target, database, TLS mode, monitoring, OpenShift, LDAP) was\n"
        "# decided by the answers: export again to change it.\n"
    )
    return header + dump(commented(chart.values, schema, 0))


def _readme(chart: Chart, schema: dict[str, Any], source: str) -> str:
    answers = chart.answers
    namespace = answers.kubernetes.namespace
    route_note = (
        "The Routes carry their certificate's key inline: pass it at install time with "
        "`--set-file routeTLS.key=tls.key` (or a values file kept out of Git)."
        if "routeTLS" in chart.values
        else ""
    )
    kinds = sorted({str(o["kind"]) for o in chart.install.objects})
    return (
        f"# CodeQual {chart.release.version} (Helm chart)\n\n"
        f"Exported by `codequal-installer plan --format helm` from `{source}` "
        f"(target `{answers.target}`, namespace `{namespace}`). "
        "Rendered with its default values, it gives exactly the objects "
        "`codequal-installer apply` applies for those answers "
        f"({len(chart.install.objects)} objects: {', '.join(kinds)}), except the Secrets.\n\n"
        "## Secrets\n\n"
        "The chart holds no secret. The pods read existing Secrets, named by the "
        "`existingSecret` values; `create-secrets.sh` creates them from `CODEQUAL_<KEY>` "
        "environment variables, the ones the installer reads (see `secrets.example.yaml`; "
        "both are beside the chart and left out of it by `.helmignore`).\n\n"
        "## Installing\n\n"
        "With Argo CD or Flux, point the application at this directory and namespace "
        f"`{namespace}`: the chart creates the namespace with its restricted pod security "
        "labels. Run `create-secrets.sh` once the namespace exists; pods wait for their "
        "Secrets. With the helm command, which keeps its release in the namespace, make the "
        "namespace first:\n\n"
        "```sh\n"
        f"kubectl create namespace {namespace}\n"
        f"kubectl label namespace {namespace} pod-security.kubernetes.io/enforce=restricted \\\n"
        "    pod-security.kubernetes.io/enforce-version=latest\n"
        "sh create-secrets.sh\n"
        f"helm install codequal . --namespace {namespace} --set createNamespace=false\n"
        "```\n\n"
        "Every object names its namespace: install into that one. " + route_note + "\n\n"
        "## Values\n\n"
        "Generated from `values.schema.json` (the answer file's own schema for the fields "
        "the chart takes); `helm install` checks values against it.\n\n"
        + values_table(schema, chart.values)
    )


def _notes(chart: Chart) -> str:
    answers = chart.answers
    namespace = answers.kubernetes.namespace
    lines = [
        "CodeQual {{ .Chart.AppVersion }} is installed in namespace " + namespace + ".",
        "",
    ]
    for route in chart.release.routes:
        if any(
            o.get("kind") in ("Ingress", "Route") and o["metadata"]["name"] == route.service
            for o in chart.install.objects
        ):
            lines.append(f"  {route.service}: https://{{{{ .Values.domain }}}}{route.path}")
    lines += [
        "",
        "Credentials are in the Secrets this chart does not hold, in namespace " + namespace + ":",
        "  {{ .Values.existingSecret }} (created with create-secrets.sh beside the chart).",
    ]
    if answers.monitoring.enabled and "grafana" in answers.monitoring.components:
        lines += [
            "Grafana's admin password:",
            f"  kubectl get secret --namespace {namespace} {{{{ .Values.existingSecret }}}} \\",
            "    -o jsonpath='{.data.GF_SECURITY_ADMIN_PASSWORD}' | base64 -d",
        ]
    return "\n".join(lines) + "\n"


def _chart_yaml(chart: Chart, source: str) -> str:
    from installer import __version__
    from installer.export.yamltext import dump

    meta = {
        "apiVersion": "v2",
        "name": CHART_NAME,
        "description": (
            f"CodeQual {chart.release.version}, exported by codequal-installer {__version__} "
            f"from {source}"
        ),
        "type": "application",
        "version": chart.release.version,
        "appVersion": chart.release.version,
        "kubeVersion": ">=1.25.0-0",
        "annotations": {
            "codequal.dev/target": chart.answers.target,
            "codequal.dev/namespace": chart.answers.kubernetes.namespace,
        },
    }
    return dump(meta)


def helm_files(
    answers: AnswerFile, release: ReleaseManifest, source: str
) -> dict[str, tuple[str, int]]:
    """Every file of the chart directory: relative path -> (text, mode)."""
    from installer.export.secrets import SCRIPT, secret_files

    chart = build_chart(answers, release)
    schema = values_schema(chart)
    from installer.export.kustomize import YAMLLINT_CONFIG

    files: dict[str, tuple[str, int]] = {
        ".yamllint.yaml": (YAMLLINT_CONFIG, 0o644),
        "Chart.yaml": (_chart_yaml(chart, source), 0o644),
        "values.yaml": (values_yaml(chart, schema, source), 0o644),
        "values.schema.json": (json.dumps(schema, indent=2) + "\n", 0o644),
        "README.md": (_readme(chart, schema, source), 0o644),
        ".helmignore": (HELMIGNORE, 0o644),
        "templates/_helpers.tpl": (HELPERS, 0o644),
        "templates/NOTES.txt": (_notes(chart), 0o644),
    }
    for path, text in chart_templates(chart).items():
        files[path] = (text, 0o644)
    for path, text in secret_files(chart.install, answers).items():
        files[path] = (text, 0o755 if path == SCRIPT else 0o644)
    return files
