"""Entry point: ``flask --app app …`` and ``gunicorn app:app``."""

import sys

from passes import ConfigurationError, create_app

try:
    app = create_app()
except ConfigurationError as exc:
    sys.exit(f"loyalpass: cannot start: {exc}")
