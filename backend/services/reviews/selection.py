"""What a review looks at: its target, which files are skipped and why, and the lines a diff shows.

Skipping is judged by name first (vendored, generated, lock and binary files never cost a GitHub
call), then by content once fetched (binary, oversized, missing). Every skipped file is reported to the
user with a reason, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from backend.integrations.github import PullFile, TreeFile
from backend.services.reviews.static import CODE_SUFFIXES, TEST_FILE, SourceFile

MAX_FILES = 100
MAX_FILE_BYTES = 200_000

VENDORED_DIRS: tuple[str, ...] = (
    "vendor/",
    "node_modules/",
    "third_party/",
    "third-party/",
    "bower_components/",
    "site-packages/",
)
VENDORED_DIRS += (".venv/", "venv/", "Pods/", "external/")
GENERATED_DIRS = ("dist/", "build/", "__generated__/", "generated/", ".next/", "coverage/", "target/")
GENERATED_NAMES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "Pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "Cargo.lock",
        "go.sum",
        "composer.lock",
        "Gemfile.lock",
        "mix.lock",
    }
)
GENERATED_SUFFIXES = (".min.js", ".min.css", "_pb2.py", "_pb2_grpc.py", ".pb.go", ".js.map", ".css.map", ".pyc")
BINARY_SUFFIXES = frozenset(
    (
        *(".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".tiff", ".psd", ".pdf"),
        *(".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".jar", ".war", ".class"),
        *(".exe", ".dll", ".so", ".dylib", ".a", ".o", ".whl", ".egg"),
        *(".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".wav", ".ogg", ".mov", ".avi", ".webm"),
        *(".sqlite", ".sqlite3", ".db", ".bin", ".dat", ".parquet", ".pkl", ".npy", ".npz", ".h5", ".onnx", ".pt"),
    )
)
SKIP_REASONS = {
    "deleted": "deleted in this pull request",
    "vendored": "vendored third-party code",
    "generated": "generated or lock file",
    "binary": "binary file",
    "too_large": f"larger than {MAX_FILE_BYTES // 1000} kB",
    "missing": "not found at this ref",
    "directory": "a directory, not a file",
    "no_diff": "GitHub shows no diff for it (binary or too large)",
    "too_many": f"over the {MAX_FILES}-file limit of one review",
    "prompt_budget": "too much code for one review; ask for a review of fewer files",
    "unchanged": "renamed without changes",
    "not_code": "not source code (a review of the whole repository reads code only)",
}
MAX_SKIPPED_LISTED = 1000  # a whole repository can skip tens of thousands of files; the rest are counted
REVIEWED_SUFFIXES = (*CODE_SUFFIXES, ".h", ".hpp", ".sh", ".sql", ".swift", ".scala", ".vue", ".svelte")

HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


class ReviewFailed(Exception):
    """Ends the review `failed` with `reason`, a sentence for the user."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Target:
    review_id: int
    user_id: int
    full_name: str
    token: str | None
    pull_number: int | None
    ref: str | None
    paths: list[str]
    focus_areas: list[str]
    skill_level: str | None
    weaknesses: tuple[str, ...] = ()  # the learner model's weak spots: the review checks these first
    is_whole_repository: bool = False  # neither a pull request nor paths: the repository at `ref`


@dataclass
class Collected:
    files: list[SourceFile] = field(default_factory=list)
    changed_lines: dict[str, set[int]] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_unlisted: int = 0  # skipped past MAX_SKIPPED_LISTED

    def skip(self, path: str, reason: str) -> None:
        if len(self.skipped) >= MAX_SKIPPED_LISTED:
            self.skipped_unlisted += 1
            return
        self.skipped.append({"path": path, "reason": SKIP_REASONS[reason]})


def skip_reason_for_path(path: str) -> str | None:
    """Why a file is not reviewed, judged by its name alone (None: review it)."""
    lowered = f"/{path.lower()}"
    name = path.rsplit("/", 1)[-1]
    if any(f"/{directory.lower()}" in lowered for directory in VENDORED_DIRS):
        return "vendored"
    if name in GENERATED_NAMES or lowered.endswith(GENERATED_SUFFIXES):
        return "generated"
    if any(f"/{directory}" in lowered for directory in GENERATED_DIRS):
        return "generated"
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if suffix in BINARY_SUFFIXES:
        return "binary"
    return None


def triage_pull_files(files: list[PullFile]) -> tuple[list[PullFile], list[tuple[str, str]]]:
    """The pull request's files worth reviewing (at most MAX_FILES), and the others with their reason."""
    kept: list[PullFile] = []
    skipped: list[tuple[str, str]] = []
    for item in files:
        reason = "deleted" if item.status == "removed" else skip_reason_for_path(item.path)
        if reason is None and item.patch is None:
            reason = "unchanged" if item.status == "renamed" and not item.additions else "no_diff"
        if reason is None and len(kept) >= MAX_FILES:
            reason = "too_many"
        if reason is None:
            kept.append(item)
        else:
            skipped.append((item.path, reason))
    return kept, skipped


def triage_paths(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    kept: list[str] = []
    skipped: list[tuple[str, str]] = []
    for path in paths:
        reason = skip_reason_for_path(path)
        if reason is None and len(kept) >= MAX_FILES:
            reason = "too_many"
        if reason is None:
            kept.append(path)
        else:
            skipped.append((path, reason))
    return kept, skipped


def relevance(path: str) -> tuple[bool, int, str]:
    """Sort key, most relevant first: code before tests, shallow before deep (entry points and packages'
    top modules), then by name."""
    return bool(TEST_FILE.search(path)), path.count("/"), path


def triage_repository(files: list[TreeFile]) -> tuple[list[str], list[tuple[str, str]]]:
    """A whole repository's files worth reviewing, most relevant first (at most MAX_FILES), and the
    others with their reason; sizes from the tree skip oversized files without fetching them."""
    candidates: list[str] = []
    skipped: list[tuple[str, str]] = []
    for item in files:
        reason = skip_reason_for_path(item.path)
        if reason is None and not item.path.lower().endswith(REVIEWED_SUFFIXES):
            reason = "not_code"
        if reason is None and item.size is not None and item.size > MAX_FILE_BYTES:
            reason = "too_large"
        if reason is None:
            candidates.append(item.path)
        else:
            skipped.append((item.path, reason))
    candidates.sort(key=relevance)
    skipped += [(path, "too_many") for path in candidates[MAX_FILES:]]
    return candidates[:MAX_FILES], skipped


def added_lines(patch: str | None) -> set[int]:
    """Lines of the new version that a unified diff shows (added or context): where GitHub takes an inline
    comment with `side: RIGHT`."""
    lines: set[int] = set()
    current: int | None = None
    for raw in (patch or "").splitlines():
        hunk = HUNK.match(raw)
        if hunk is not None:
            current = int(hunk.group(1))
            continue
        if current is None or raw.startswith("-") or raw.startswith("\\"):
            continue
        lines.add(current)
        current += 1
    return lines
