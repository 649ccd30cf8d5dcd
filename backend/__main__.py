"""`python -m backend [command]`: with no command, migrate, seed and serve on the embedded defaults."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Iterator

from backend import __version__
from backend.config import Settings, load_settings
from backend.logging import configure_logging

COMMANDS = (
    (
        "serve",
        "serve the API with Hypercorn (HOST, PORT, WORKERS)",
        "Serve the API on HOST:PORT with WORKERS processes until SIGINT/SIGTERM; in-flight requests and "
        "streams then get 20 s to finish. Does not migrate: run `migrate` first.",
    ),
    (
        "migrate",
        "apply database migrations up to the latest revision",
        "Apply every Alembic migration up to the latest revision on DATABASE_URL (safe to repeat).",
    ),
    (
        "seed",
        "load the exercise catalog and achievements (idempotent)",
        "Add or update the authored exercise catalog and the achievements; running it again changes nothing.",
    ),
    (
        "worker",
        "run the background job worker (JOBS_BACKEND=arq)",
        "Run queued background jobs (code reviews) from Redis until SIGINT/SIGTERM. Needs JOBS_BACKEND=arq, "
        "REDIS_URL and the same DATABASE_URL as the API.",
    ),
    (
        "create-admin",
        "create an administrator account",
        "Create an administrator account, or promote an existing one. The password comes from ADMIN_PASSWORD "
        "or, on a terminal, a prompt (never the command line, where `ps` would show it).",
    ),
    (
        "openapi",
        "print the OpenAPI document as JSON",
        "Print the OpenAPI 3.1 document of every route as JSON on stdout (logs go to stderr).",
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="The CodeMentor backend. Without a command: migrate, seed and serve (the embedded defaults).",
        epilog="Settings come from the environment and .env (see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    for name, summary, description in COMMANDS:
        command = commands.add_parser(name, help=summary, description=description)
        if name == "create-admin":
            command.add_argument("--email", required=True, help="the administrator's email address")
            command.add_argument("--name", default="Administrator", help="display name for a new account")
    commands.add_parser("sandbox", help="run the sandbox runner (SANDBOX_* only; --help for its flags)", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        # Before any Settings: the runner reads no .env and holds no secret (its argv and SANDBOX_* only).
        from backend.integrations.sandbox.runner import main as sandbox_main

        return sandbox_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    os.umask(0o077)  # what we create (the SQLite file, its journal) is ours alone, never the sandbox's to read
    settings = load_settings()
    # `openapi` prints the document on stdout: any log line there would corrupt the JSON.
    configure_logging(settings, stream=sys.stderr if args.command == "openapi" else None)

    match args.command:
        case None:
            if refusal := port_refusal(settings):  # before the runner starts: one line, nothing else
                return refusal
            with sandbox_runner(settings) as refusal:
                if refusal:
                    return refusal
                migrate(settings)
                seed(settings)
                return serve(settings)
        case "serve":
            if refusal := port_refusal(settings):
                return refusal
            with sandbox_runner(settings) as refusal:
                return refusal or serve(settings)
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
            return worker(settings)
        case "create-admin":
            return create_admin(settings, args.email, args.name)
    return 2


def migrate(settings: Settings) -> None:
    from backend import migrations

    migrations.upgrade(settings.database_url)
    print(f"migrate: database at revision {migrations.head_revision()}", file=sys.stderr)


def seed(settings: Settings) -> None:
    from backend.db import create_engine, create_session_factory
    from backend.services.achievements import SeedResult, seed_achievements
    from backend.services.exercises import seed_exercises

    async def run() -> dict[str, SeedResult]:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                results = {"exercises": await seed_exercises(session), "achievements": await seed_achievements(session)}
                await session.commit()
        finally:
            await engine.dispose()
        return results

    for name, result in asyncio.run(run()).items():
        print(
            f"seed: {name} {result.created} added, {result.updated} updated, {result.unchanged} unchanged",
            file=sys.stderr,
        )


def serve(settings: Settings) -> int:
    from backend.server import PortInUse
    from backend.server import serve as run_server

    base = f"http://{settings.host}:{settings.port}"
    # Worker processes build the app from the environment; make them see the same settings file.
    os.environ.setdefault("ENVIRONMENT", settings.environment)
    try:
        return run_server(
            settings,
            on_listening=lambda: print(
                f"CodeMentor API on {base}  ·  docs: {base}/docs  ·  Ctrl+C stops", file=sys.stderr, flush=True
            ),
        )
    except PortInUse:  # taken between the check and the bind
        return port_refusal(settings) or 1


def port_refusal(settings: Settings) -> int:
    """1, after one line naming the address and PORT, when HOST:PORT is taken; else 0."""
    from backend.server import port_is_free

    if port_is_free(settings):
        return 0
    print(
        f"serve: {settings.host}:{settings.port} is already in use; stop what listens there or set PORT "
        "to a free port (e.g. PORT=8001)",
        file=sys.stderr,
    )
    return 1


@contextlib.contextmanager
def sandbox_runner(settings: Settings) -> Iterator[int]:
    """Start the sandbox runner before anything binds a socket (and stop it at the end): yields 0, or the
    exit code after printing the one line that says why the server refuses to start."""
    if settings.sandbox_backend != "local" or settings.sandbox_url is not None:
        yield check_external_sandbox(settings)
        return
    from backend.integrations.sandbox.process import RunnerFailed, RunnerProcess

    runner = RunnerProcess(settings)
    try:
        # Hypercorn's workers build their app from the environment: they find the runner here.
        os.environ["SANDBOX_URL"] = runner.start()
    except RunnerFailed as error:
        runner.stop()
        print(str(error), file=sys.stderr)
        yield 2
        return
    settings.sandbox_url = os.environ["SANDBOX_URL"]
    if runner.isolation != "isolated":
        print("sandbox: WARNING: submitted code runs WITHOUT isolation (no usable bubblewrap)", file=sys.stderr)
        if readable := world_readable_secrets(settings):
            print(f"sandbox: WARNING: {', '.join(readable)} readable by every user: chmod 600", file=sys.stderr)
    try:
        yield 0
    finally:
        runner.stop()


def world_readable_secrets(settings: Settings) -> list[str]:
    """Without namespaces a run sees the host's files as another uid: .env and the SQLite file must be ours."""
    paths = [".env"]
    if settings.is_sqlite:
        paths.append(settings.database_url.split(":///", 1)[-1])
    return [path for path in paths if os.path.exists(path) and os.stat(path).st_mode & 0o004]


def check_external_sandbox(settings: Settings) -> int:
    """A runner of SANDBOX_URL that answers must isolate when isolation is required (it may still be starting)."""
    if settings.sandbox_backend != "local" or not settings.requires_sandbox_isolation:
        return 0
    from backend.integrations.sandbox import RunnerSandbox

    async def isolation() -> str:
        sandbox = RunnerSandbox(settings.sandbox_url, timeout_seconds=settings.sandbox_timeout_seconds)
        try:
            return await sandbox.isolation()
        finally:
            await sandbox.close()

    if asyncio.run(isolation()) == "unisolated":
        print(f"sandbox: refusing to start: the runner at {settings.sandbox_url} does not isolate", file=sys.stderr)
        return 2
    return 0


def create_admin(settings: Settings, email: str, name: str) -> int:
    """Create an administrator, or promote an existing account. The password comes from
    ADMIN_PASSWORD or an interactive prompt (never the command line, where `ps` would show it)."""
    from pydantic import TypeAdapter, ValidationError

    from backend.schemas.auth import Email, NewPassword
    from backend.services.auth import normalise_email

    try:
        email = normalise_email(TypeAdapter(Email).validate_python(email))
    except ValidationError:
        print("create-admin: that is not a valid email address", file=sys.stderr)
        return 2
    password = os.environ.get("ADMIN_PASSWORD")
    if password is None and not sys.stdin.isatty():
        print("create-admin: no terminal to ask for the password on; set ADMIN_PASSWORD", file=sys.stderr)
        return 2
    if password is None:
        password = getpass.getpass("Password for the administrator (12+ characters): ")
        if password != getpass.getpass("Again: "):
            print("create-admin: the passwords differ", file=sys.stderr)
            return 2
    try:
        if password is not None:
            TypeAdapter(NewPassword).validate_python(password)
    except ValidationError as error:
        print(f"create-admin: {error.errors(include_url=False)[0]['msg']}", file=sys.stderr)
        return 2
    migrate(settings)
    created = asyncio.run(_create_admin(settings, email, name, password))
    print(f"create-admin: {email} is {'a new' if created else 'now an'} administrator", file=sys.stderr)
    return 0


async def _create_admin(settings: Settings, email: str, name: str, password: str | None) -> bool:
    from backend.db import create_engine, create_session_factory
    from backend.services.auth import ensure_admin

    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session:
            created = await ensure_admin(session, settings, email=email, name=name, password=password)
            await session.commit()
    finally:
        await engine.dispose()
    return created


def openapi_document(settings: Settings) -> dict:
    from backend.app import create_app

    # create_app configures logging again, on whatever sys.stdout is then: keep it on stderr.
    with contextlib.redirect_stdout(sys.stderr):
        app = create_app(settings)

    async def build() -> dict:
        async with app.app_context():
            return app.extensions["QUART_SCHEMA"].openapi_provider.schema()

    return asyncio.run(build())


def worker(settings: Settings) -> int:
    """Run background jobs (code reviews) from Redis until SIGINT/SIGTERM: `JOBS_BACKEND=arq` only."""
    if settings.jobs_backend != "arq":
        print(
            "worker: JOBS_BACKEND is inprocess, so the server runs jobs itself; "
            "set JOBS_BACKEND=arq and REDIS_URL (for the server too) to run them in workers",
            file=sys.stderr,
        )
        return 2
    from redis.exceptions import RedisError

    from backend.app import register_job_kinds
    from backend.jobs.arq_worker import DatabaseUnreachable, WorkerMisconfigured, run_worker
    from backend.services.llm_gateway import BudgetedLLM

    register_job_kinds()
    try:
        return run_worker(settings, user_llm=BudgetedLLM)
    except WorkerMisconfigured as error:
        print(f"worker: {error}", file=sys.stderr)
        return 2
    except DatabaseUnreachable as error:
        print(f"worker: cannot reach the database at DATABASE_URL ({error}); is it running?", file=sys.stderr)
        return 1
    except (OSError, RedisError) as error:  # after arq's own retries
        print(f"worker: cannot reach Redis at REDIS_URL ({type(error).__name__}); is it running?", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
