"""A language other than Python's own harness, as the API sees it: its runner toolchain, version, job files.

Each language module (go/, and the table in `__init__.py`) makes one `Language`; `__init__.py` keeps the
registry and grades through runner jobs. Nothing here runs at import: versions are detected at first use.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass

from backend.content import neutral
from backend.integrations.sandbox.languages.toolchains import TOOLCHAINS

PYTHON = "/usr/bin/python3"


@dataclass(frozen=True)
class Language:
    name: str
    title: str
    toolchain: str | None  # the runner toolchain of a run (None: Python's own harness)
    # A compile job of its own, run by the API before the run and cached there (TypeScript). A toolchain
    # with a compile step in the runner (Go) needs none: the runner compiles and caches (compiled.py).
    compile_toolchain: str | None = None
    source_file: str = "main.js"  # the submission's file in the job
    version_command: tuple[str, ...] = ()  # prints the version (first match of version_pattern)
    version_pattern: str = r"(\d+(?:\.\d+)+)"

    @functools.cached_property
    def version(self) -> str | None:
        """The toolchain's version, or None when it is not installed (the language is then unavailable).
        Python is always graded (the runner refuses to start without its interpreter): the sandbox's
        /usr/bin/python3 when this host has it, else this process's own version."""
        if self.toolchain is None:
            return tool_version([PYTHON, "--version"], prefix="Python ") or platform.python_version()
        toolchain = TOOLCHAINS.get(self.toolchain)
        if toolchain is None or not toolchain.installed or not self.version_command:
            return None
        text = tool_version(list(self.version_command))
        found = re.search(self.version_pattern, text or "")
        return found.group(1) if found else None

    @property
    def available(self) -> bool:
        return self.version is not None

    @functools.cached_property
    def style_check(self) -> str | None:
        """What checks a submission's style in the runner's compile step (Go: gofmt, C++: clang-format, Java:
        javac's lint): the style part of the grade (RunResult.style). None: not checked in this language,
        or its tool is not installed here."""
        toolchain = TOOLCHAINS.get(self.toolchain) if self.toolchain is not None else None
        found = toolchain.compile.style if toolchain is not None and toolchain.compile is not None else None
        return found.name if found is not None and os.path.exists(found.binary) else None

    @property
    def checks_style(self) -> bool:
        """Whether the style part of its grade is scored (RunResult.style): by a check in the runner's
        compile step (Go, C++, Java), or by the API's own compile job (TypeScript: the compiler's unused-code
        diagnostics, compile_ts.js)."""
        return self.style_check is not None or self.compiled

    @property
    def compiled(self) -> bool:
        """Whether the API compiles it first, in a job of its own (TypeScript)."""
        return self.compile_toolchain is not None

    def files(self, code: str, cases: list[dict]) -> dict[str, str]:
        """The run job's files: the submission, and whatever the language generates for these cases."""
        return {self.source_file: code}

    def run_stdin(self, cases: list[dict], *, output_cap: int, test_timeout_ms: int) -> str:
        """The harness's job: each case's inputs (method names in the language's convention), no expectation."""
        return json.dumps(
            {
                "tests": [job_input(case, self.name) for case in cases],
                "output_cap": output_cap,
                "test_timeout_ms": test_timeout_ms,
            }
        )


def job_input(case: dict, language: str) -> dict:
    """What a harness is told about one case: its inputs, with names in the language's convention."""
    if "stdin" in case:
        return {"stdin": case["stdin"]}
    if "args" in case:
        return {"function": neutral.function_name(case["function"], language), "args": json.loads(case["args"])}
    ops = json.loads(case["ops"])
    return {"ops": [ops[0], *([neutral.method_name(name, language), args] for name, args in ops[1:])]}


def tool_version(command: list[str], *, prefix: str = "") -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].removeprefix(prefix).strip() if text else None
