"""Compiled toolchains in the runner: the artifact cache, and what a compile step's outcome means.

A runner job for a toolchain with a compile step (languages/toolchains.py, `Compile`) is compiled and run
in one job (local.py). The cache key is the sha256 of the toolchain's name, its compiler's identity (size
and mtime of its binaries), its command and support files, and every file of the job; when the cache holds
the key, nothing is compiled. Otherwise the compile command runs under the same bubblewrap confinement as a
run, with its own limits, the job's files read-only in /job and an empty writable /out; what it leaves in
/out becomes the artifact, kept in the runner's private directory and hard-linked read-only into each run's
/job/build. A failed compile is cached too (as its `syntax_error` event: its first error, with the line
when it is in the submission's file), so a resubmitted broken source is not compiled again either. A
compile that times out or is killed is reported and never cached. A toolchain may also have a `prepare`
command: it compiles the toolchain's own files once (the harness), and its artifact is in /job/prepared
for every compile of that toolchain.

The cache is bounded in entries and bytes, least recently used evicted first; two jobs that need the same
missing key compile it once (the second waits for the first). Artifacts are only ever executed inside the
sandbox. See docs/LANGUAGES.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backend.integrations.sandbox.base import MAX_STYLE_FINDINGS, SandboxUnavailable
from backend.integrations.sandbox.languages.toolchains import Compile, Toolchain

DEFAULT_MAX_ENTRIES = 1024
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
MAX_ARTIFACT_FILES = 4096
MAX_MESSAGE_CHARS = 2000
STYLE_FILE = "style.out"  # what a compile that checks style leaves (`StyleCheck`)
MAX_STYLE_BYTES = 256 * 1024
HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")
SANDBOX_DIRS = re.compile(r"(?<![\w./])(?:/job/|/out/|/tmp/|\./)")


@dataclass(frozen=True)
class Artifact:
    """What compiling one key made: a directory of files, or the compile's first error."""

    key: str
    path: Path | None  # the artifact's directory in the cache (None: the compile failed)
    error: dict[str, Any] | None  # the `syntax_error` event of a failed compile
    size: int = 0
    timed_out: bool = False  # never cached
    cacheable: bool = True  # False: a failure that may not happen again (the compiler was killed...)
    compile_ms: float | None = None  # how long its compile took


class ArtifactCache:
    """The runner's compiled artifacts, by key: bounded (entries, bytes), least recently used evicted."""

    def __init__(
        self, root: Path | None = None, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="codementor-artifacts-"))  # 0700: the runner's alone
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = self.compiles = self.evictions = 0
        self._entries: OrderedDict[str, Artifact] = OrderedDict()  # least recently used first
        self._pending: dict[str, asyncio.Future[Artifact]] = {}

    def status(self) -> dict[str, int]:
        return {
            "entries": len(self._entries),
            "bytes": self.bytes,
            "hits": self.hits,
            "misses": self.misses,
            "compiles": self.compiles,
            "evictions": self.evictions,
        }

    def get(self, key: str) -> Artifact | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    async def obtain(
        self, key: str, build: Callable[[Path], Awaitable[Artifact]], *, max_bytes: int
    ) -> tuple[Artifact, bool]:
        """The artifact of `key` and whether this call compiled it: cached, or compiled once by
        `build(staging_dir)`, which leaves at most `max_bytes` in that directory (concurrent jobs that need
        the same key wait for that one compile)."""
        while True:
            found = self.get(key)
            if found is not None:
                self.hits += 1
                return found, False
            pending = self._pending.get(key)
            if pending is None:
                break
            with contextlib.suppress(_Retry):
                return await asyncio.shield(pending), False  # a compile that was cancelled: try again
        self.misses += 1
        future: asyncio.Future[Artifact] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        staging = Path(tempfile.mkdtemp(prefix="codementor-compile-", dir=self.root.parent))
        try:
            self.compiles += 1
            artifact = replace(await build(staging), key=key)
            if artifact.path is not None:
                artifact = self._store(key, staging, artifact, max_bytes)
            elif artifact.error is not None and artifact.cacheable and not artifact.timed_out:
                artifact = self._remember(artifact)
        except BaseException:
            future.set_exception(_Retry())
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._pending[key]
            with contextlib.suppress(OSError):
                shutil.rmtree(staging, ignore_errors=True)
        future.set_result(artifact)
        return artifact, True

    def _store(self, key: str, staging: Path, artifact: Artifact, max_bytes: int) -> Artifact:
        """Move what the compile left in `staging` into the cache, as the runner's read-only files."""
        files = collected_files(staging, max_bytes)
        target = self.root / key
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        target.chmod(0o755)  # explicitly: `python -m backend` runs under umask 077
        size = 0
        for relative, path in files:
            destination = target / relative
            for directory in reversed(destination.relative_to(target).parents[:-1]):
                if not (target / directory).is_dir():
                    (target / directory).mkdir()
                    (target / directory).chmod(0o755)
            os.rename(path, destination)
            if os.geteuid() == 0:
                os.chown(destination, 0, 0, follow_symlinks=False)  # written by the slot's uid: ours now
            destination.chmod(0o755 if os.stat(destination).st_mode & 0o111 else 0o644)
            size += destination.stat().st_size
        stored = Artifact(key, target, None, size, compile_ms=artifact.compile_ms)
        return self._remember(stored)

    def _remember(self, artifact: Artifact) -> Artifact:
        self._entries[artifact.key] = artifact
        self.bytes += artifact.size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            if len(self._entries) == 1:
                break
            evicted = self._entries.pop(self._victim(artifact.key))
            self.evictions += 1
            self.bytes -= evicted.size
            if evicted.path is not None:
                shutil.rmtree(evicted.path, ignore_errors=True)
        return artifact

    def _victim(self, keep: str) -> str:
        """The least recently used key, but a toolchain's prepared harness (`prepare-`, one per compiled
        toolchain) only when nothing else is left: every compile of its toolchain links against it, and it
        is the costliest to make again (C++'s precompiled header: ~6 s of CPU). It was evicted whenever
        another language's artifacts filled the cache, and the next C++ job compiled it again."""
        keys = iter(self._entries)
        oldest = next(keys)
        if not oldest.startswith("prepare-"):
            return oldest
        for key in keys:
            if key != keep and not key.startswith("prepare-"):  # `keep`: the artifact being remembered
                return key
        return oldest

    def link_into(self, artifact: Artifact, directory: Path) -> None:
        """Hard-link (else copy) the artifact's files into `directory` (a job dir's build/ or prepared/):
        nothing of the run can write them, and an eviction during the run cannot take them away."""
        assert artifact.path is not None
        for source in sorted(artifact.path.rglob("*")):
            destination = directory / source.relative_to(artifact.path)
            if source.is_dir():
                destination.mkdir(exist_ok=True)
                destination.chmod(0o755)  # not left to the umask (077 under `python -m backend`): the run reads it
                continue
            try:
                os.link(source, destination)
            except OSError:
                shutil.copy2(source, destination)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self._entries.clear()
        self.bytes = 0


class _Retry(Exception):
    """The compile another job was running for this key did not finish: compile it ourselves."""


def collected_files(staging: Path, limit: int) -> list[tuple[Path, Path]]:
    """The regular files a compile left (no links, devices or anything else), at most `limit` bytes."""
    files: list[tuple[Path, Path]] = []
    total = 0
    for directory, names, file_names in os.walk(staging):
        for name in [*names, *file_names]:
            path = Path(directory) / name
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise SandboxUnavailable("the compiler left something other than files")
            total += os.lstat(path).st_size
            files.append((path.relative_to(staging), path))
    if not files or total > limit or len(files) > MAX_ARTIFACT_FILES:
        raise SandboxUnavailable(f"the compiler left {len(files)} files of {total} bytes")
    return files


@functools.cache
def identity(compile: Compile) -> str:
    """The compiler's version, for the cache key: its binaries' sizes and modification times."""
    parts = []
    for path in compile.identity:
        try:
            found = os.stat(path)
            parts.append(f"{path}:{found.st_size}:{found.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:missing")
    return ";".join(parts)


def cache_key(toolchain: Toolchain, files: dict[str, str], *, prepare: bool = False) -> str:
    """sha256 over the toolchain (name, compiler identity, commands, support files) and the job's files."""
    assert toolchain.compile is not None
    digest = hashlib.sha256()
    head = {
        "toolchain": toolchain.name,
        "identity": identity(toolchain.compile),
        "command": toolchain.compile.prepare if prepare else toolchain.compile.command,
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for source in (toolchain.files, {} if prepare else files):
        for name in sorted(source):
            digest.update(b"\0%d:%s\0" % (len(name), name.encode()))
            digest.update(source[name].encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
    return ("prepare-" if prepare else "") + digest.hexdigest()


def compile_error(compile: Compile, diagnostics: str, returncode: int | None) -> tuple[dict[str, Any], bool]:
    """The `syntax_error` event of a failed compile, and whether it names a real error (worth caching):
    the first error the compiler printed, its line when it is in the submission's file."""
    match = compile.error.search(diagnostics)
    if match is None:
        lines = [line for line in diagnostics.splitlines() if line.strip()]
        message = (
            strip_dirs(lines[0]) if lines
            else f"the compiler stopped (status {returncode}) without an error: too large a program to compile?"
        )  # fmt: skip
        return {"event": "syntax_error", "line": None, "message": message[:MAX_MESSAGE_CHARS]}, bool(lines)
    file, line, message = match.group("file"), int(match.group("line")), match.group("message")
    # Continuation lines (indented) belong to the first error.
    rest = diagnostics[match.end() :].splitlines()[1:]
    message += "".join("\n" + item for item in rest[:10] if item.startswith(("\t", "  ")))
    text = f"{file}:{line}: {message}" if file == compile.source else message
    return {
        "event": "syntax_error",
        "line": line if file == compile.source else None,
        "message": strip_dirs(text)[:MAX_MESSAGE_CHARS],
    }, True


def strip_dirs(text: str) -> str:
    return SANDBOX_DIRS.sub("", text).strip()


def report_of(event: dict[str, Any]) -> str:
    """A runner report holding one event, as a harness would have written it, then done."""
    return json.dumps(event) + '\n{"event": "done"}\n'


def style_event(compile: Compile, artifact: Artifact) -> dict[str, Any] | None:
    """The `style` event of a compiled artifact, when its compile checked the style (`Compile.style`): one
    finding per place to change, as `line N: ...` of the submission (none: clean). Read by the runner from
    its own cache, so the run's code cannot write it; None when the check did not run."""
    if compile.style is None or artifact.path is None:
        return None
    try:
        with (artifact.path / STYLE_FILE).open("rb") as file:
            text = file.read(MAX_STYLE_BYTES).decode("utf-8", "replace")
    except OSError:  # the check could not run (its binary is missing here): no style, rather than a wrong one
        return None
    if compile.style.output == "diff":
        findings = formatter_findings(compile.style.name, text)
    else:
        findings = warning_findings(compile.source, text)
    return {"event": "style", "findings": findings[:MAX_STYLE_FINDINGS]}


def formatter_findings(formatter: str, diff: str) -> list[str]:
    """`line N: ...` for the first changed line of each hunk of a unified diff of the submission."""
    findings: list[str] = []
    line: int | None = None
    for text in diff.splitlines():
        if found := HUNK.match(text):
            line = int(found.group(1))
        elif line is not None and text.startswith(("-", "+")):
            findings.append(f"line {line}: {formatter} lays this out differently (run {formatter} on your file)")
            line = None  # one finding per hunk
        elif line is not None and text.startswith(" "):
            line += 1
    return findings


def warning_findings(source: str, text: str) -> list[str]:
    """`line N: [kind] message` for each `<source>:<N>: warning: ...` line of a compiler's output."""
    return [
        f"line {found.group(1)}: {found.group(2).strip()}"
        for found in re.finditer(rf"^{re.escape(source)}:(\d+): warning: (.*)$", text, re.M)
    ]
