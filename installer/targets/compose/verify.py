"""The verification step: every service healthy, then each public route through the front door."""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from installer.errors import StepFailed
from installer.targets.compose.installation import ComposeStep
from installer.targets.compose.probes import wait_for_ok

if TYPE_CHECKING:
    from installer.release import Route
    from installer.runner import StepContext, StepUpdate


class VerificationStep(ComposeStep):
    name = "verification"
    title = "Verification"
    read_only = True

    @property
    def description(self) -> str:
        routes = ", ".join(r.path for r in self._routes())
        return f"every service healthy, then a request through the front door to {routes}"

    def _routes(self) -> list[Route]:
        services = self.target.services()
        return [r for r in self.target.release.routes if r.service in services]

    def apply(self, ctx: StepContext) -> Iterator[StepUpdate]:
        services = self.target.database_services() + self.target.app_services()
        yield from self.target.wait_healthy(ctx, services)
        self.target.verified = {}
        for route in self._routes():
            yield from self._probe(ctx, route)

    def _probe(self, ctx: StepContext, route: Route) -> Iterator[StepUpdate]:
        answers = self.target.answers
        path = route.path.rstrip("/") + route.health_path
        if "nginx" in self.target.services():
            tls = answers.tls.mode != "none"
            port = 443 if tls else 80
            url = f"{'https' if tls else 'http'}://{answers.domain}{path}"
            host = answers.domain
        else:
            tls, port, host = False, route.port, "localhost"
            url = f"http://localhost:{port}{path}"
        context = self._tls_context() if tls else None
        try:
            status, body = wait_for_ok(ctx, port, host, path, context)
        except ssl.SSLCertVerificationError as e:
            raise StepFailed(
                f"{url}: the certificate nginx serves does not verify: {e.verify_message}",
                step=self.name,
                hint="the certificate must name the domain and match nginx/ssl/codequal.crt",
            ) from e
        if status != 200:
            raise StepFailed(
                f"{url} answered {status or 'nothing'} through the front door",
                step=self.name,
                log_tail=[body[:500]] if body else [],
                hint=(
                    f"see `docker compose logs nginx {route.service}` in {self.target.install_dir}"
                ),
            )
        facts: dict[str, Any] = {"url": url, "status": status}
        line = f"{url}: 200"
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        database = payload.get("database") if isinstance(payload, dict) else None
        if isinstance(database, dict) and database.get("configured"):
            facts["database"] = {
                k: database.get(k) for k in ("reachable", "migrated", "schema_version")
            }
            line += (
                f"; database reachable={database.get('reachable')} "
                f"migrated={database.get('migrated')}"
            )
            if not database.get("reachable") or not database.get("migrated"):
                raise StepFailed(
                    f"{route.service} answers, but reports its database "
                    + ("unreachable" if not database.get("reachable") else "not migrated")
                    + (f": {database.get('error')}" if database.get("error") else ""),
                    step=self.name,
                    hint="check the database settings in the answers and the secrets",
                )
        self.target.verified[route.service] = facts
        yield line

    def _tls_context(self) -> ssl.SSLContext:
        """Verification against the installation's own certificate: never turned off."""
        answers = self.target.answers
        context = ssl.create_default_context()
        if answers.tls.mode == "self-signed":
            context = ssl.create_default_context(
                cafile=str(self.target.install_dir / "nginx/ssl/codequal.crt")
            )
        elif answers.tls.cert_file:
            with contextlib.suppress(ssl.SSLError, OSError):
                context.load_verify_locations(cafile=answers.tls.cert_file)
        return context
