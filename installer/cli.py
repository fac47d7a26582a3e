"""The command line: ``codequal-installer`` and its sub-commands.

A thin front end. Each command loads and validates its inputs through the same
functions the wizard uses, calls into the engine, and renders results. Heavy modules
(rich, docker, kubernetes, textual) are imported inside the commands that need them so
that ``--version``, ``check`` and ``plan`` start instantly.

Every :class:`InstallerError` is printed as a sentence and a hint, with its documented
exit code; operator mistakes never end in a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, ClassVar, NoReturn, TypeVar

import click

from installer import __version__
from installer.errors import ExitCode, InstallerError
from installer.names import CHECK_NAMES, TARGETS

F = TypeVar("F", bound=Callable[..., Any])


def fail(error: InstallerError) -> NoReturn:
    """Print an operator-facing error and exit with its code."""
    problems = getattr(error, "problems", None) or []
    for line in problems:
        click.echo(line, err=True)
    if not problems or len(problems) > 1:
        click.echo(f"error: {error.message}", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)
    sys.exit(int(error.exit_code))


class _Commands(click.Group):
    """The top-level group. ``bundle`` lives in its own module, imported only when that
    command is named (or listed by ``--help``): the wizard's start and ``--version`` do not
    pay for it."""

    _lazy: ClassVar[dict[str, str]] = {
        "bundle": "installer.bundle.cli",
        "backup": "installer.backup.cli",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self._lazy.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            import importlib

            self.add_command(getattr(importlib.import_module(module), cmd_name))
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=_Commands,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="codequal-installer")
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False),
    help="Open the wizard pre-filled from this answer file.",
)
@click.pass_context
def cli(ctx: click.Context, answers_path: str | None) -> None:
    """Install the CodeQual platform: run without a command for the interactive wizard."""
    if ctx.invoked_subcommand is not None:
        return
    _start_wizard(answers_path)


def _start_wizard(answers_path: str | None) -> None:
    """Start the wizard front end, found through its entry point.

    The engine never imports the UI: the distribution registers the wizard under the
    ``codequal_installer.frontends`` entry-point group, so the engine runs (and its tests
    pass) even where the UI is not installed.
    """
    from importlib.metadata import entry_points

    from installer.errors import UsageError

    found = entry_points(group="codequal_installer.frontends", name="wizard")
    if not found:
        raise UsageError(
            "the wizard is not installed with this copy of the installer",
            hint="use `codequal-installer apply --answers FILE`, or reinstall codequal-installer",
        )
    run_wizard = next(iter(found)).load()
    run_wizard(answers_path=answers_path)


@cli.group()
def answers() -> None:
    """Answer files: schema, examples and validation."""


@answers.command("schema")
def answers_schema() -> None:
    """Print the answer file's JSON Schema (draft 2020-12)."""
    from installer.reference import answers_schema_text

    click.echo(answers_schema_text(), nl=False)


@answers.command("reference")
def answers_reference() -> None:
    """Print the answer-file reference as a Markdown table (as in the README)."""
    from installer.reference import answers_reference_markdown

    click.echo(answers_reference_markdown(), nl=False)


@answers.command("example")
@click.option("--target", "-t", type=click.Choice(TARGETS), required=True, help="Target to show.")
def answers_example(target: str) -> None:
    """Print a commented, valid answer file for TARGET."""
    from installer.examples import example_text

    click.echo(example_text(target), nl=False)  # type: ignore[arg-type]


@answers.command("validate")
@click.argument("file", type=click.Path(dir_okay=True, allow_dash=True))
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=True, allow_dash=False),
    help="Secrets file to validate together with the answers.",
)
def answers_validate(file: str, secrets_path: str | None) -> None:
    """Check FILE (or - for standard input); print every problem as FILE:LINE:COL: key: message."""
    from installer.errors import AnswerFileError
    from installer.validation import load_answers, load_secrets

    problems: list[str] = []
    answers_ok = False
    try:
        load_answers(file)
        answers_ok = True
    except AnswerFileError as e:
        problems.extend(e.problems or [e.message])
    if secrets_path is not None:
        try:
            loaded = load_secrets(secrets_path)
            for warning in loaded.warnings:
                click.echo(f"warning: {warning}", err=True)
        except AnswerFileError as e:
            problems.extend(e.problems or [e.message])
    if problems:
        for line in problems:
            click.echo(line, err=True)
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        click.echo(f"{count} found", err=True)
        sys.exit(int(ExitCode.USAGE))
    assert answers_ok  # noqa: S101
    click.echo(f"{'<stdin>' if file == '-' else file}: valid")


@cli.command("plan")
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    required=True,
    multiple=True,
    help="Answer file to render (- for standard input); with --format kustomize, repeat it "
    "for one overlay each.",
)
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False),
    help="Secrets file (CODEQUAL_<KEY> environment variables fill keys it does not set).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Directory to render into; generated secrets are kept in its state/ directory.",
)
@click.option(
    "--source-dir",
    type=click.Path(file_okay=False),
    help="development: mount this CodeQual checkout into the API container, with hot reload.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["files", "helm", "kustomize"]),
    default="files",
    show_default=True,
    help="files: what apply writes; helm: a chart, kustomize: a base and overlays, for GitOps "
    "(kubernetes and enterprise targets; no secret in them).",
)
def plan_command(
    answers_path: tuple[str, ...],
    secrets_path: str | None,
    out_dir: str,
    source_dir: str | None,
    output_format: str,
) -> None:
    """Render every file for the answers' target into DIR and show what changed.

    Changes nothing outside DIR. Secrets are shown only by where they come from.
    """
    from installer.render.cli import run_plan

    run_plan(answers_path, secrets_path, out_dir, source_dir, output_format)


@cli.command("check")
@click.option(
    "--target",
    "-t",
    type=click.Choice(TARGETS),
    help="Target to check for (default: the answer file's, else development).",
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Answer file: its target, install_dir, domain, ports and checks.skip.",
)
@click.option(
    "--skip",
    "skip",
    multiple=True,
    type=click.Choice(CHECK_NAMES),
    help="Do not enforce this check (repeatable); the report shows it as skipped.",
)
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False),
    help="Secrets file for the answers' live checks (registry, database, LDAP passwords).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(
    target: str | None,
    answers_path: str | None,
    skip: tuple[str, ...],
    secrets_path: str | None,
    as_json: bool,
) -> None:
    """Check this machine (or cluster) against what the target needs.

    Exits 0 when no check fails (warnings allowed), 3 when one does.
    """
    from installer.checks.cli import run_check

    run_check(target, answers_path, skip, as_json, secrets_path)


@cli.command("apply")
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    required=True,
    help="Answer file describing the installation.",
)
@click.option(
    "--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file (YAML)."
)
@click.option("--yes", "-y", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option("--dry-run", is_flag=True, help="Print the plan and the steps; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON event per line (NDJSON).")
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False),
    help="Offline bundle to load the images from (air-gapped installs).",
)
@click.option(
    "--key",
    type=click.Path(dir_okay=False),
    help="Public key of the offline bundle (from `bundle keygen`): the install stops, before "
    "anything is written, unless the bundle's signature verifies with it.",
)
def apply_command(
    *,
    answers_path: str,
    secrets_path: str | None,
    yes: bool,
    dry_run: bool,
    as_json: bool,
    bundle: str | None,
    key: str | None,
) -> None:
    """Install or update CodeQual as the answer file describes.

    Resumes an interrupted run; rolls back a failed one. Exit codes: 0 done, 1 failed and
    rolled back, 2 invalid input, 3 prerequisites not met, 4 bundle integrity, 130
    interrupted (run again to resume).
    """
    from installer.install_cli import run_apply

    sys.exit(
        run_apply(
            answers_path,
            secrets_path,
            yes=yes,
            dry_run=dry_run,
            as_json=as_json,
            bundle=bundle,
            key=key,
        )
    )


@cli.command("status")
@click.option(
    "--install-dir",
    type=click.Path(file_okay=False),
    help="Installation directory (default: the answer file's, else /opt/codequal).",
)
@click.option(
    "--answers",
    "answers_path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Answer file whose install_dir to look at.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_command(install_dir: str | None, answers_path: str | None, as_json: bool) -> None:
    """Show what is installed, its version and each service's health (exit 0: all healthy)."""
    from installer.install_cli import run_status

    sys.exit(run_status(install_dir, answers_path, as_json))


@cli.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False))
@click.option("--answers", "answers_path", required=True, type=click.Path(dir_okay=False))
@click.option("--identity", required=True, type=click.Path(dir_okay=False), help="age identity.")
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line (NDJSON).")
def restore_command(
    *,
    archive: str,
    answers_path: str,
    identity: str,
    secrets_path: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Restore a backup archive onto this host, as a resumable run like apply.

    Exit codes: 0 restored; 1 failed; 2 refused before any change (a newer release, another
    database engine, bad input); 3 prerequisites; 4 the archive is damaged or not for this
    identity, or the restored data differs from its manifest; 130 interrupted (run again).
    """
    from installer.backup.restore_cli import run_restore

    sys.exit(
        run_restore(
            archive,
            answers_path=answers_path,
            identity=identity,
            secrets_path=secrets_path,
            yes=yes,
            as_json=as_json,
        )
    )


# -- the installation's life after install: upgrade, uninstall, support bundle -------------


@cli.command("upgrade")
@click.option("--answers", "answers_path", type=click.Path(dir_okay=False), required=True)
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file.")
@click.option("--to", "to", required=True, help="Release to upgrade to (its version).")
@click.option("--bundle", type=click.Path(dir_okay=False), help="Offline bundle of that release.")
@click.option("--key", type=click.Path(dir_okay=False), help="Public key of the offline bundle.")
@click.option(
    "--force-path",
    "force_path",
    metavar="REASON",
    help="Go on although the upgrade skips a required stop; REASON goes into the history.",
)
@click.option("--yes", "-y", is_flag=True, help="Upgrade without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON event per line (NDJSON).")
def upgrade_command(
    *,
    answers_path: str,
    secrets_path: str | None,
    to: str,
    bundle: str | None,
    key: str | None,
    force_path: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Upgrade the installation to release --to, on an allowed path, after a healthy check.

    Exit codes: 0 done, 1 failed and rolled back, 2 refused (path, usage), 3 unhealthy or
    too little disk, 130 interrupted.
    """
    from installer.upgrade import run_upgrade

    sys.exit(
        run_upgrade(
            answers_path,
            secrets_path,
            to=to,
            bundle=bundle,
            key=key,
            force_path=force_path,
            yes=yes,
            as_json=as_json,
        )
    )


@cli.command("rollback")
@click.option("--answers", "answers_path", type=click.Path(dir_okay=False), required=True)
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file.")
@click.option("--yes", "-y", is_flag=True, help="Roll back without asking.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON event per line (NDJSON).")
def rollback_command(answers_path: str, secrets_path: str | None, yes: bool, as_json: bool) -> None:
    """Return to the release before the last upgrade, with that upgrade's verified backup.

    What will be lost (time since the upgrade, rows written since) is shown first.
    Exit codes: 0 done, 1 the restore failed, 2 nothing to roll back or not confirmed,
    4 the backup is not verified or damaged, 130 interrupted (run it again to resume).
    """
    from installer.rollback import run_rollback

    sys.exit(run_rollback(answers_path, secrets_path, yes=yes, as_json=as_json))


@cli.command("uninstall")
@click.option("--answers", "answers_path", type=click.Path(dir_okay=False), required=True)
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file.")
@click.option(
    "--purge", is_flag=True, help="Also remove the data: volumes, claims, backups, state."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask (--purge: do not ask for the domain).")
@click.option("--json", "as_json", is_flag=True, help="Print the inventory and result as JSON.")
def uninstall_command(
    answers_path: str, secrets_path: str | None, purge: bool, yes: bool, as_json: bool
) -> None:
    """Show what the installation holds, then remove it (data kept unless --purge)."""
    from installer.uninstall import run_uninstall

    sys.exit(run_uninstall(answers_path, secrets_path, purge=purge, yes=yes, as_json=as_json))


@cli.command("support-bundle")
@click.option("--answers", "answers_path", type=click.Path(dir_okay=False), required=True)
@click.option("--secrets", "secrets_path", type=click.Path(dir_okay=False), help="Secrets file.")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Archive to write (.tar.gz).")
def support_bundle_command(answers_path: str, secrets_path: str | None, out: str | None) -> None:
    """Write one archive to send to the vendor: status, history, logs, configuration.

    Every known secret is removed; the archive is checked again and not written if any
    remains (exit 5).
    """
    from installer.support_bundle import run_support_bundle

    sys.exit(run_support_bundle(answers_path, secrets_path, out))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the command line, turning errors into exit codes."""
    try:
        cli.main(args=argv, prog_name="codequal-installer", standalone_mode=False)
    except InstallerError as e:
        fail(e)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.ClickException as e:
        e.show()
        sys.exit(int(ExitCode.USAGE))
    except KeyboardInterrupt:
        click.echo("\ninterrupted: nothing more was changed", err=True)
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
