"""Start-up: wrong signing material stops the app with one line naming the setting; the CLI that
`make run` uses works from a fresh directory."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from passes import ConfigurationError, create_app
from passes.factory import running_maintenance_command
from passes.wallet.apple.devcerts import DevChain, create_dev_chain
from support import app_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def other_chain(tmp_path_factory: pytest.TempPathFactory) -> DevChain:
    return create_dev_chain(
        tmp_path_factory.mktemp("other"),
        pass_type_identifier="pass.dev.loyalpass.test",
        team_identifier="LPTEST0001",
    )


def start(dev_chain: DevChain, **overrides: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        create_app(app_config(dev_chain, "sqlite://", **overrides))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_good_material_starts(dev_chain: DevChain) -> None:
    app = create_app(app_config(dev_chain, "sqlite://"))
    assert app.extensions["passes"].apple is not None


def test_mismatched_key_is_refused(dev_chain: DevChain, other_chain: DevChain) -> None:
    message = start(dev_chain, APPLE_PRIVATE_KEY=str(other_chain.private_key))
    assert message.startswith("APPLE_PRIVATE_KEY") and "does not match" in message


def test_expired_certificate_is_refused(tmp_path: Path) -> None:
    expired = create_dev_chain(
        tmp_path,
        pass_type_identifier="pass.dev.loyalpass.test",
        team_identifier="LPTEST0001",
        not_before=datetime.now(UTC) - timedelta(days=400),
        not_after=datetime.now(UTC) - timedelta(days=1),
    )
    message = start(expired)
    assert message.startswith("APPLE_CERTIFICATE") and "expired" in message


def test_wrong_pass_type_identifier_is_refused(dev_chain: DevChain) -> None:
    message = start(dev_chain, APPLE_PASS_TYPE_IDENTIFIER="pass.com.example.other")
    assert message.startswith("APPLE_PASS_TYPE_IDENTIFIER")
    assert "pass.com.example.other" in message and "pass.dev.loyalpass.test" in message


def test_wrong_team_identifier_is_refused(dev_chain: DevChain) -> None:
    assert start(dev_chain, APPLE_TEAM_IDENTIFIER="ABCDE12345").startswith("APPLE_TEAM_IDENTIFIER")


def test_missing_certificate_file_is_refused(dev_chain: DevChain, tmp_path: Path) -> None:
    message = start(dev_chain, APPLE_CERTIFICATE=str(tmp_path / "nope.pem"))
    assert message.startswith("APPLE_CERTIFICATE") and "nope.pem" in message


def test_wwdr_that_did_not_issue_the_certificate_is_refused(
    dev_chain: DevChain, other_chain: DevChain
) -> None:
    message = start(dev_chain, APPLE_WWDR_CERTIFICATE=str(other_chain.wwdr_certificate))
    assert message.startswith("APPLE_WWDR_CERTIFICATE")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PASSES_", "FLASK_"))}
    env.update(
        PASSES_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        PASSES_SECRET_KEY="cli-test-secret",
        **extra,
    )
    return env


def test_app_module_exits_with_one_line_like_gunicorn_would(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); import app"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("loyalpass: cannot start: APPLE_CERTIFICATE")


def flask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), "passes", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serving_commands_refuse_bad_material_but_maintenance_commands_run(
    tmp_path: Path,
) -> None:
    for command in (["passes", "serve", "--port", "1"], ["run", "--port", "1"]):
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", str(ROOT / "app.py"), *command],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1, command
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith("loyalpass: cannot start: APPLE_CERTIFICATE")
        ), result.stderr
    assert flask(tmp_path, "init-db").returncode == 0


@pytest.mark.parametrize(
    ("argv", "maintenance"),
    [
        (["flask", "--app", "app", "passes", "init-db"], True),
        (["flask", "passes", "dev-certs", "--if-missing"], True),
        (["flask", "passes", "demo"], True),
        (["flask", "passes", "--help"], True),
        (["flask", "passes", "serve"], False),
        (["flask", "run"], False),
        (["flask", "shell"], False),
        (["flask", "passes"], False),
    ],
)
def test_only_maintenance_commands_may_start_without_signing_material(
    argv: list[str], maintenance: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    assert running_maintenance_command(argv) is maintenance
    monkeypatch.delenv("FLASK_RUN_FROM_CLI")
    assert running_maintenance_command(argv) is False  # gunicorn, tests: never


def test_make_run_steps_work_from_a_fresh_directory(tmp_path: Path) -> None:
    assert flask(tmp_path, "init-db").returncode == 0
    made = flask(tmp_path, "dev-certs", "--if-missing")
    assert made.returncode == 0, made.stderr
    assert {"pass.pem", "pass.key", "wwdr.pem", "dev-root.pem"} <= {
        p.name for p in (tmp_path / "certs").iterdir()
    }
    assert (tmp_path / "certs" / "pass.key").stat().st_mode & 0o077 == 0
    kept = flask(tmp_path, "dev-certs", "--if-missing")
    assert kept.returncode == 0 and "keeping" in kept.stdout
    assert flask(tmp_path, "dev-certs").returncode != 0  # refuses to overwrite without --force

    first = flask(tmp_path, "demo")
    second = flask(tmp_path, "demo")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    console = [line for line in lines if line.startswith("console:")]
    assert len(console) == 1 and "/console/login as admin@" in console[0]  # its password once
    # idempotent: same members, same card links, and the admin is not made again
    assert [line for line in lines if line not in console] == second.stdout.splitlines()
    assert first.stdout.count("/c/") == 3 and "/p/zerno/join" in first.stdout


def test_https_public_url_makes_cookies_secure(dev_chain: DevChain, tmp_path: Path) -> None:
    app = create_app(app_config(dev_chain, f"sqlite:///{tmp_path / 'c.db'}"))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    with app.test_request_context():
        from flask import session

        session["x"] = 1
        response = app.make_response("ok")
        app.session_interface.save_session(app, session, response)  # type: ignore[arg-type]
    assert "Secure" in response.headers["Set-Cookie"]
    plain = create_app(
        app_config(dev_chain, f"sqlite:///{tmp_path / 'd.db'}", PUBLIC_URL="http://127.0.0.1:5000")
    )
    assert plain.config["SESSION_COOKIE_SECURE"] is False


def test_barcode_key_setting_replaces_the_secret_key_derivation(dev_chain: DevChain) -> None:
    from passes.loyalty.barcode import derive_barcode_key

    derived = create_app(app_config(dev_chain, "sqlite://")).extensions["passes"].barcode_key
    explicit = create_app(app_config(dev_chain, "sqlite://", BARCODE_KEY="separate-barcode-key"))
    assert derived == derive_barcode_key("test-secret-key-not-for-production")
    assert explicit.extensions["passes"].barcode_key == derive_barcode_key("separate-barcode-key")
