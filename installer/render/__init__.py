"""Configuration generation: every file of an installation, from validated inputs.

:func:`render_plan` turns validated answers, the resolved secrets and a release manifest
into a :class:`RenderedPlan` (relative path, bytes, mode for each file); :func:`write_plan`
writes it atomically and reports what changed. Rendering has one side effect: passwords
nobody supplied and the self-signed certificate are made once and kept in
``<root>/state/`` (see :mod:`installer.secretstore`), so the same inputs always give the
same bytes. :func:`preview` renders into a scratch directory instead and compares with
what is installed, changing nothing (``apply --dry-run``, the wizard's review).

Layout for the Compose targets (relative to the root: ``install_dir``, or ``plan --out``)::

    docker-compose.yml                      no secrets: each is ${VARIABLE} from .env
    .env                                    0600, the secrets
    nginx/conf.d/codequal.conf              when nginx runs (TLS on)
    nginx/ssl/codequal.crt, codequal.key    key 0600
    monitoring/prometheus/prometheus.yml, monitoring/prometheus/rules/codequal.yml
    monitoring/grafana/provisioning/{datasources,dashboards}/*.yml
    monitoring/grafana/dashboards/codequal.json
    monitoring/loki/loki.yml, monitoring/promtail/promtail.yml

For the Kubernetes targets: ``kubernetes/NN-<kind>-<name>.yaml``, one object per file in
apply order (:data:`installer.render.kubernetes.APPLY_ORDER`); monitoring files are
carried inside ConfigMaps.
"""

from __future__ import annotations

from installer.render.escape import RenderError
from installer.render.files import render_plan
from installer.render.plan import (
    FileChange,
    KubernetesObject,
    RenderedFile,
    RenderedPlan,
    SecretUse,
    compare_plan,
    write_plan,
)
from installer.render.scratch import RenderPreview, preview, scratch_root

__all__ = [
    "FileChange",
    "KubernetesObject",
    "RenderError",
    "RenderPreview",
    "RenderedFile",
    "RenderedPlan",
    "SecretUse",
    "compare_plan",
    "preview",
    "render_plan",
    "scratch_root",
    "write_plan",
]
