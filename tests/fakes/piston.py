"""A fake Piston code-execution server: `POST /api/v2/execute`, answered by really running the files.

It writes the posted files to a temp dir and runs the first one with the local Python (a subprocess with
the request's stdin, killed after `run_timeout` ms), answering in Piston's shape:
`{"language", "version", "run": {"stdout", "stderr", "output", "code", "signal", "status"}}`, with
`signal: "SIGKILL"` and `status: "TO"` on a timeout. Like Piston, it rejects an unknown language with a 400
`{"message"}`. It records each request body (`requests`); `fail` / `delay` (by endpoint name
`execute`) steer errors and latency. Not a sandbox: only our own harness and test code run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from quart import Response, jsonify, request

from tests.fakes.oauth_providers import FakeServer

MAX_RUN_TIMEOUT_MS = 60_000


def kill_tree(root: int) -> None:
    """SIGKILL `root` and every descendant, found through /proc before anything dies: the harness's
    children start their own sessions, so killing its process group would leave them running (Piston
    itself kills everything of the job's uid)."""
    for _ in range(3):  # a process may fork while we look
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
        tree, frontier = {root}, [root]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
            tree.update(children)
            frontier.extend(children)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)  # frozen first, so none forks or reparents meanwhile
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class FakePiston(FakeServer):
    name = "piston"

    def __init__(self) -> None:
        super().__init__()
        self.app.add_url_rule("/api/v2/execute", "execute", self.execute, methods=["POST"])

    def reset(self) -> None:
        super().reset()
        self.requests: list[dict[str, Any]] = []
        self.directories: list[str] = []  # each run's working directory, to look for leftover processes

    async def execute(self) -> Response | tuple[Response, int]:
        body = await request.get_json(force=True)
        self.requests.append(body)
        if body.get("language") != "python" or not body.get("files"):
            return jsonify({"message": f"{body.get('language')}-{body.get('version')} runtime is unknown"}), 400
        timeout = min(int(body.get("run_timeout", 3000)), MAX_RUN_TIMEOUT_MS) / 1000
        with tempfile.TemporaryDirectory(prefix="fake-piston-") as directory:
            self.directories.append(directory)
            for file in body["files"]:
                (Path(directory) / file["name"]).write_text(file["content"])
            process = await asyncio.create_subprocess_exec(
                sys.executable, body["files"][0]["name"],
                cwd=directory,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
            signal_name, status = None, None
            try:
                stdout, stderr = await asyncio.wait_for(
                    process.communicate(str(body.get("stdin", "")).encode()), timeout
                )
            except TimeoutError:
                kill_tree(process.pid)
                stdout, stderr = await process.communicate()
                signal_name, status = "SIGKILL", "TO"
        out, err = stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
        run = {
            "stdout": out,
            "stderr": err,
            "output": out + err,
            "code": None if signal_name else process.returncode,
            "signal": signal_name,
            "status": status,
        }
        return jsonify({"language": "python", "version": "3.11.7", "run": run})
