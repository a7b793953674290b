"""``flask --app app passes …``: database, certificates, demo data and the server."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import Flask, current_app

from passes.state import AppState


def _state() -> AppState:
    state: AppState = current_app.extensions["passes"]
    return state


@click.group("passes")
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
        session.commit()
        base = current_app.config["PUBLIC_URL"]
        click.echo(f"demo program '{program.name}': join at {base}/p/{program.slug}/join")
        for card in cards:
            click.echo(f"  {card.member.name}: {base}/c/{card.page_token}")


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


def register_cli(app: Flask) -> None:
    app.cli.add_command(passes_cli)
