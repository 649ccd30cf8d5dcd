"""The code's own conventions, checked: imports point down the layers, and modules stay under the size limit.

Layers, highest first: the wiring (`app`, `__main__`, `server`) → `api` (with `schemas`, the API's bodies,
and `middleware`) → `services` → `models`, `integrations`, `jobs`, `content` → the core modules
(`config`, `db`, `errors`, `security`, `cache`, `logging`, `metrics`, `migrations`). A module may import
its own layer and the ones below it. The allow-lists name what is still being moved: shrink them, never
grow them.
"""

from __future__ import annotations

import ast
from pathlib import Path

BACKEND = Path(__file__).resolve().parent.parent / "backend"
MAX_LINES = 400
WIRING = {"app", "__main__", "server"}
RANKS = {"core": 0, "models": 1, "integrations": 1, "jobs": 1, "content": 1, "services": 2, "schemas": 3}
RANKS |= {"middleware": 3, "api": 3, "wiring": 4}

# (importing module or package, imported module or package): upward imports known and being removed (issue 16).
# Empty since every service stopped importing the API's schemas: keep it so.
KNOWN_UPWARD_IMPORTS: set[tuple[str, str]] = set()
# Modules over MAX_LINES that their owners are splitting along their seams this session.
KNOWN_LARGE_MODULES = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "core"
    if parts[1] in WIRING:
        return "wiring"
    return parts[1] if parts[1] in RANKS else "core"


def imported_modules(tree: ast.AST) -> set[str]:
    """Every `backend.*` module imported, at the top or inside a function (`from x import y` counts `x.y`
    too when `y` is a module: `from backend.services import chat`)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if is_module(f"{node.module}.{alias.name}")}
    return {name for name in found if name == "backend" or name.startswith("backend.")}


def is_module(name: str) -> bool:
    path = BACKEND.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def is_known(importer: str, imported: str) -> bool:
    return any(
        within(importer, known_importer) and within(imported, known) for known_importer, known in KNOWN_UPWARD_IMPORTS
    )


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_imports_point_down_the_layers() -> None:
    upward = []
    for path in sorted(BACKEND.rglob("*.py")):
        importer = module_name(path)
        for imported in imported_modules(ast.parse(path.read_text(), filename=str(path))):
            if RANKS[layer(imported)] > RANKS[layer(importer)] and not is_known(importer, imported):
                upward.append(f"{importer} ({layer(importer)}) imports {imported} ({layer(imported)})")
    assert upward == []


def test_the_layer_check_sees_an_upward_import() -> None:
    tree = ast.parse("from backend.services import chat\nimport backend.api.guards\n")
    assert imported_modules(tree) == {"backend.services", "backend.services.chat", "backend.api.guards"}
    assert RANKS[layer("backend.api.guards")] > RANKS[layer("backend.services.chat")] > RANKS[layer("backend.db")]
    # The job framework runs what the wiring registers (backend/app.py): it never imports a feature.
    assert RANKS[layer("backend.services.reviews")] > RANKS[layer("backend.jobs.inprocess")]
    assert not is_known("backend.jobs", "backend.services.reviews")


def test_modules_stay_under_the_size_limit() -> None:
    large = {
        str(path.relative_to(BACKEND)): lines
        for path in BACKEND.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert {name: lines for name, lines in large.items() if name not in KNOWN_LARGE_MODULES} == {}, (
        f"over {MAX_LINES} lines: split the module along its seams into a package"
    )
