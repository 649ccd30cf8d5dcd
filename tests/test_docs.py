"""The user-facing documents point only at what exists: every relative link and every repository path
they name is in the repository (a README pointing at a missing file was a finding of issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ["README.md", "SETUP.md", "docs/API.md", "docs/SECURITY.md", "docs/PERFORMANCE.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Backticked names of repository files and folders, e.g. `docs/API.md`, `tests/fault/`, `.env.example`.
PATH = re.compile(
    r"`((?:\.?[A-Za-z0-9_-]+/)*\.?[A-Za-z0-9_.-]+\.(?:md|py|yml|yaml|toml|txt|sh|example)|[A-Za-z0-9_.-]+/(?:[A-Za-z0-9_.-]+/)*)`"
)
NOT_REPOSITORY_PATHS = ("/", "http", "~", "$")


SOURCE_FOLDERS = ("backend", "bench", "docs", "tests", "clients", "alembic", ".ci")


def _anywhere(name: str) -> bool:
    return any(next((ROOT / folder).rglob(name), None) is not None for folder in SOURCE_FOLDERS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_relative_links_and_named_paths_exist(document: str) -> None:
    path = ROOT / document
    if not path.exists():
        pytest.skip(f"{document} is not in this checkout")
    text = path.read_text()
    missing = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        if not (path.parent / target).exists():
            missing.append(target)
    # docs/SECURITY.md names modules from inside backend/ (`services/auth/accounts.py`).
    bases = (ROOT, path.parent, ROOT / "backend")
    for name in PATH.findall(text):
        if name.startswith(NOT_REPOSITORY_PATHS):
            continue
        first = name.split("/", 1)[0]
        claims_repository = "/" in name and any((base / first).exists() for base in bases)
        if claims_repository and not any((base / name).exists() for base in bases):
            missing.append(name)
        elif "/" not in name and not any((base / name).exists() for base in bases) and not _anywhere(name):
            missing.append(name)  # a bare file name (`fairness.py`) must at least exist somewhere
    assert missing == [], f"{document} names what is not in the repository: {missing}"
