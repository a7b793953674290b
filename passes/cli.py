"""``flask --app app passes …``: database, certificates, demo data and the server."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from passes.state import AppState


def _state() -> AppState:
    state: AppState = current_app.extensions["passes"]
    return state


@click.group("passes", cls=AppGroup)
def passes_cli() -> None:
    """loyalpass administration."""


@passes_cli.command("init-db")
def init_db() -> None:
    """Create or migrate the database schema to the latest version."""
    from passes.migrate import upgrade

    upgrade(_state().engine)
    click.echo(
        f"database is up to date ({_state().engine.url.render_as_string(hide_password=True)})"
    )


@passes_cli.command("new-migration")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def new_migration(message: str) -> None:
    """Autogenerate a migration from the models (for developers)."""
    from passes.migrate import new_revision

    new_revision(_state().engine, message)


@passes_cli.command("dev-certs")
@click.option("--force", is_flag=True, help="Replace existing files.")
@click.option(
    "--if-missing",
    is_flag=True,
    help="Do nothing (successfully) when the configured certificate already exists.",
)
def dev_certs(force: bool, if_missing: bool) -> None:
    """Create a local development chain (root → WWDR-like → pass certificate) in certs/.

    Passes signed with it verify against certs/dev-root.pem but will not install on a device.
    """
    from passes.factory import resolve_path
    from passes.wallet.apple.devcerts import create_dev_chain

    config = current_app.config
    certificate = resolve_path(config["APPLE_CERTIFICATE"])
    if certificate is None:
        raise click.ClickException("APPLE_CERTIFICATE is not set")
    directory = certificate.parent
    default_names = (
        certificate.name == "pass.pem"
        and Path(str(config["APPLE_PRIVATE_KEY"])).name == "pass.key"
        and Path(str(config["APPLE_WWDR_CERTIFICATE"])).name == "wwdr.pem"
        and not config["APPLE_P12"]
    )
    if not default_names:
        if if_missing:
            click.echo("signing certificates are configured; no development chain needed")
            return
        raise click.ClickException(
            "custom certificate paths are configured; unset APPLE_CERTIFICATE, "
            "APPLE_PRIVATE_KEY, APPLE_WWDR_CERTIFICATE and APPLE_P12 to use a development chain"
        )
    if certificate.exists() and not force:
        if if_missing:
            click.echo(f"{certificate} exists; keeping it")
            return
        raise click.ClickException(f"{certificate} exists; use --force to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    chain = create_dev_chain(
        directory,
        pass_type_identifier=config["APPLE_PASS_TYPE_IDENTIFIER"],
        team_identifier=config["APPLE_TEAM_IDENTIFIER"],
    )
    click.echo(
        f"development chain written to {directory} (trust anchor: {chain.root_certificate}); "
        "restart the server to use it"
    )


@passes_cli.command("demo")
def demo() -> None:
    """Load the demo coffee-shop program with sample members (idempotent)."""
    from passes.demo import load_demo

    state = _state()
    with state.sessionmaker() as session:
        program, cards = load_demo(session, barcode_key=state.barcode_key)
        admin_password = _demo_admin(session, program)
        session.commit()
        base = current_app.config["PUBLIC_URL"]
        click.echo(f"demo program '{program.name}': join at {base}/p/{program.slug}/join")
        for card in cards:
            click.echo(f"  {card.member.name}: {base}/c/{card.page_token}")
        if admin_password is not None:
            click.echo(
                f"console: {base}/console/login as {DEMO_ADMIN} with password {admin_password}"
                " (shown once)"
            )


DEMO_ADMIN = "admin@demo.loyalpass.test"


def _demo_admin(session: Any, program: Any) -> str | None:
    """A console admin for the demo program, made once; its new password (None if it exists)."""
    import secrets

    from sqlalchemy import select

    from passes.accounts.models import StaffUser
    from passes.accounts.service import create_user

    if session.scalar(select(StaffUser.id).where(StaffUser.email == DEMO_ADMIN)) is not None:
        return None
    password = secrets.token_urlsafe(12)
    create_user(
        session, program, email=DEMO_ADMIN, name="Demo admin", role="admin", password=password
    )
    return password


@passes_cli.group("program")
def program_cli() -> None:
    """Programs as JSON documents (branding, images, stores, rules)."""


@program_cli.command("export")
@click.argument("slug")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
def program_export(slug: str, output: str | None) -> None:
    """Write program SLUG as a JSON document."""
    import json

    from sqlalchemy import select

    from passes.loyalty.models import Program
    from passes.loyalty.program_document import export_program

    with _state().sessionmaker() as session:
        program = session.scalar(select(Program).where(Program.slug == slug))
        if program is None:
            raise click.ClickException(f"there is no program {slug!r}")
        text = json.dumps(export_program(program), ensure_ascii=False, indent=2) + "\n"
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@program_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def program_import(file: str) -> None:
    """Create a program from FILE, or replace the program with the same slug."""
    import json

    from passes.loyalty.program_document import (
        ProgramDocumentError,
        apply_program_document,
        parse_program_document,
    )

    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from exc
    with _state().sessionmaker() as session:
        try:
            program, created = apply_program_document(session, parse_program_document(data))
        except ProgramDocumentError as exc:
            for path, message in exc.errors:
                click.echo(f"{path or '(document)'}: {message}", err=True)
            raise click.ClickException(f"{len(exc.errors)} problem(s) in {file}") from exc
        session.commit()
        click.echo(f"{'created' if created else 'replaced'} program {program.slug!r}")


def _program_and_store(session: Any, slug: str, store_name: str | None) -> tuple[Any, Any]:
    """The program ``slug`` and its store ``store_name`` (None without one), or a clear error."""
    from sqlalchemy import select

    from passes.loyalty.models import Program, Store

    program = session.scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise click.ClickException(f"there is no program {slug!r}")
    if not store_name:
        return program, None
    store = session.scalar(
        select(Store).where(Store.program_id == program.id, Store.name == store_name)
    )
    if store is None:
        names = ", ".join(s.name for s in program.stores) or "none"
        raise click.ClickException(f"there is no store {store_name!r} (stores: {names})")
    return program, store


@passes_cli.command("create-api-key")
@click.option("--program", "slug", required=True, help="Program slug.")
@click.option("--store", "store_name", help="Store name (a till key).")
@click.option(
    "--role",
    type=click.Choice(["store", "partner", "admin"]),
    default=None,
    help="store (default with --store), partner or admin.",
)
@click.option("--name", help="A label for the key, e.g. 'till 2' or the partner's name.")
@click.option("--expires-in-days", type=click.IntRange(min=1), help="Key lifetime.")
def create_api_key(
    slug: str,
    store_name: str | None,
    role: str | None,
    name: str | None,
    expires_in_days: int | None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from datetime import timedelta

    from passes.accounts.api_keys import issue_key
    from passes.db import utcnow

    role = role or ("store" if store_name else None)
    if role is None:
        raise click.UsageError("give --store NAME for a till key, or --role partner|admin")
    with _state().sessionmaker() as session:
        program, store = _program_and_store(session, slug, store_name)
        if role == "store" and store is None:
            raise click.UsageError("a store key needs --store NAME")
        expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        issued = issue_key(
            session,
            program,
            role=role,
            name=name or store_name or role,
            store=store,
            expires_at=expires,
        )
        session.commit()
    click.echo(issued.token)
    click.echo("Store this key now: it is not shown again.", err=True)


@passes_cli.command("create-user")
@click.option("--program", "slug", required=True, help="Program slug.")
@click.option("--email", required=True, help="The user's e-mail (their sign-in name).")
@click.option(
    "--role",
    type=click.Choice(["admin", "marketer", "clerk"]),
    required=True,
    help="admin: everything; marketer: all but users and keys; clerk: the scanner only.",
)
@click.option("--name", default="", help="The user's name, as the console shows it.")
@click.option("--store", "store_name", help="A clerk's store.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead."
)
def create_user_command(
    slug: str, email: str, role: str, name: str, store_name: str | None, password_stdin: bool
) -> None:
    """Create a staff user; without --password-stdin, print a new password once."""
    import sys

    from passes.accounts.service import AccountError, create_user, new_password

    generated = not password_stdin
    password = new_password() if generated else sys.stdin.readline().rstrip("\n")
    with _state().sessionmaker() as session:
        program, store = _program_and_store(session, slug, store_name)
        try:
            user = create_user(
                session, program, email=email, name=name, role=role, password=password, store=store
            )
        except AccountError as exc:
            raise click.ClickException(str(exc)) from exc
        session.commit()
        click.echo(f"created {user.role} {user.email} of {program.slug}", err=True)
    if generated:
        click.echo(password)
        click.echo("Give this password to the user now: it is not shown again.", err=True)


@passes_cli.command("import-members")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--program", "slug", required=True, help="Program slug.")
def import_members_command(file: str, slug: str) -> None:
    """Import members from a CSV FILE (columns name, email; optional phone, birthday, points).

    Existing e-mails are skipped; rejected rows are listed with their line and the reason.
    Exits with status 1 if any row was rejected.
    """
    import sys

    from passes.members.csv_io import ImportFileError, import_members

    path = Path(file)
    with path.open(encoding="utf-8-sig", newline="") as counting:
        rows = max(0, sum(1 for _ in counting) - 1)
    bar = click.progressbar(length=rows, label=f"importing into {slug}", file=sys.stderr)
    with _state().sessionmaker() as session, path.open(encoding="utf-8-sig", newline="") as text:
        program, _ = _program_and_store(session, slug, None)
        try:
            with bar:
                report = import_members(
                    session,
                    program,
                    text,
                    barcode_key=_state().barcode_key,
                    actor="import (cli)",
                    progress=bar.update,
                )
        except (ImportFileError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{file}: {exc}") from exc
    click.echo(
        f"{report.created} members created, {report.existing} already members, "
        f"{len(report.rejected)} rows rejected"
    )
    for line, why in report.rejected:
        click.echo(f"line {line}: {why}", err=True)
    if report.rejected:
        raise SystemExit(1)


@passes_cli.command("export-members")
@click.option("--program", "slug", required=True, help="Program slug.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="File (default: stdout).")
def export_members_command(slug: str, output: str | None) -> None:
    """Write the program's members as CSV (UTF-8)."""
    import sys

    from passes.members.csv_io import export_csv

    with _state().sessionmaker() as session:
        program, _ = _program_and_store(session, slug, None)
        if output:
            with Path(output).open("w", encoding="utf-8", newline="") as file:
                for chunk in export_csv(session, program):
                    file.write(chunk)
            click.echo(f"wrote {output}", err=True)
        else:
            for chunk in export_csv(session, program):
                sys.stdout.write(chunk)


@passes_cli.command("check-ledger")
def check_ledger_command() -> None:
    """Recompute every card's balance from its ledger entries and point lots; report drift."""
    from passes.loyalty.ledger import check_ledger

    with _state().sessionmaker() as session:
        drift = check_ledger(session)
    for row in drift:
        click.echo(f"card {row.card_id}: {row.what}: stored {row.stored}, computed {row.computed}")
    if drift:
        raise click.ClickException(f"{len(drift)} inconsistencies found")
    click.echo("ledger consistent: every balance equals the sum of its entries and lots")


@passes_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-scheduler", is_flag=True, help="Serve without the background jobs.")
def serve(host: str, port: int, no_scheduler: bool) -> None:
    """Serve the app with the scheduler running (development server; use gunicorn in production)."""
    from werkzeug.serving import run_simple

    from passes.jobs import build_scheduler

    # create_app has already refused to start with bad signing material (not a maintenance command).
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    scheduler = None if no_scheduler else build_scheduler(app)
    if scheduler is not None:
        scheduler.start()
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


@passes_cli.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is pending now, then exit.")
def worker(once: bool) -> None:
    """Run the scheduled jobs (wallet pushes, expiry, tiers) without serving web pages.
    Several workers may run at once: each job is safe to run concurrently."""
    import time

    from passes.jobs import build_scheduler, deliver_wallet_updates

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if once:
        deliver_wallet_updates(app)
        return
    scheduler = build_scheduler(app)
    scheduler.start()
    click.echo("worker running; Ctrl+C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=True)


def register_cli(app: Flask) -> None:
    app.cli.add_command(passes_cli)
