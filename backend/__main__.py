"""`python -m backend [command]`: with no command, migrate, seed and serve on the embedded defaults."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from backend.config import Settings, load_settings
from backend.logging import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description="The CodeMentor backend.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("serve", help="serve the API with Hypercorn (HOST, PORT, WORKERS)")
    commands.add_parser("migrate", help="apply database migrations up to the latest revision")
    commands.add_parser("seed", help="load the exercise catalog and achievements (idempotent)")
    commands.add_parser("worker", help="run the background job worker (JOBS_BACKEND=arq)")
    admin = commands.add_parser("create-admin", help="create an administrator account")
    admin.add_argument("--email", required=True)
    commands.add_parser("openapi", help="print the OpenAPI document as JSON")
    args = parser.parse_args(argv)

    settings = load_settings()
    configure_logging(settings)

    match args.command:
        case None:
            migrate(settings)
            seed(settings)
            return serve(settings)
        case "serve":
            return serve(settings)
        case "migrate":
            migrate(settings)
            return 0
        case "seed":
            seed(settings)
            return 0
        case "openapi":
            print(json.dumps(openapi_document(settings), indent=2))
            return 0
        case "worker":
            return not_yet("worker", "background jobs arrive with GitHub code reviews; until then none are queued")
        case "create-admin":
            return not_yet("create-admin", "accounts arrive with the authentication feature")
    return 2


def migrate(settings: Settings) -> None:
    from backend import migrations

    migrations.upgrade(settings.database_url)
    print(f"migrate: database at revision {migrations.head_revision()}", file=sys.stderr)


def seed(settings: Settings) -> None:
    # The exercise catalog and the achievements catalog register their seeders as they are built.
    print("seed: nothing to seed yet (the exercise and achievement catalogs are not built)", file=sys.stderr)


def serve(settings: Settings) -> int:
    from backend.server import serve as run_server

    base = f"http://{settings.host}:{settings.port}"
    print(f"CodeMentor API on {base}  ·  docs: {base}/docs  ·  Ctrl+C stops", file=sys.stderr, flush=True)
    # Worker processes build the app from the environment; make them see the same settings file.
    os.environ.setdefault("ENVIRONMENT", settings.environment)
    return run_server(settings)


def openapi_document(settings: Settings) -> dict:
    from backend.app import create_app

    app = create_app(settings)

    async def build() -> dict:
        async with app.app_context():
            return app.extensions["QUART_SCHEMA"].openapi_provider.schema()

    return asyncio.run(build())


def not_yet(command: str, reason: str) -> int:
    print(f"{command}: not available yet: {reason}", file=sys.stderr)
    return 3


if __name__ == "__main__":
    raise SystemExit(main())
