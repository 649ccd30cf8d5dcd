"""C++: the dispatch file generated for an exercise's cases, and the compiler's first error.

C++ has no reflection, so the harness (harness.cpp, prebuilt) cannot look a function up by name: each run
compiles, next to the submission (solution.cpp), a dispatch file generated from the cases that `#include`s
the submission (so compiler errors name its lines) and holds one call site per *shape*: a function (or a
class's constructor or method) with its arguments' natural C++ types. The harness is told each test's
shape (`"shape"`, for ops `"shapes"`) besides its arguments, never an expected value. See sandbox.hpp for
how arguments convert; docs/LANGUAGES.md ("C++") for what a submission may declare.

The dispatch file depends on the function names and argument types of the cases only, so the same
submission run on the same cases compiles once (the runner caches by the files' hash).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.content import neutral
from backend.integrations.sandbox.languages.language import Language
from backend.integrations.sandbox.languages.toolchains import GPP

HERE = Path(__file__).parent
SOURCE = "solution.cpp"
DISPATCH = "dispatch.cpp"
INT32 = 2**31

# A natural type: ("bool",) ("int",) ("long",) ("double",) ("string",) ("value",) ("empty",) an empty array,
# ("vector", T) ("tuple", (T, ...)) ("map", T) ("optional", T).
Natural = tuple[Any, ...]
CPP_NAMES = {
    "bool": "bool",
    "int": "int",
    "long": "long long",
    "double": "double",
    "string": "std::string",
    "value": "sandbox::Value",
}


def natural(value: Any) -> Natural:
    """The C++ type a template would most naturally receive `value` (decoded JSON) as."""
    if value is None:
        return ("value",)
    if isinstance(value, bool):
        return ("bool",)
    if isinstance(value, int):
        return ("int",) if -INT32 <= value < INT32 else ("long",)
    if isinstance(value, float):
        return ("double",)
    if isinstance(value, str):
        return ("string",)
    if isinstance(value, list):
        if not value:
            return ("empty",)
        items = [natural(item) for item in value]
        common = unify_all(items)
        return ("vector", common) if common is not None else ("tuple", tuple(items))
    if isinstance(value, dict):
        common = unify_all([natural(item) for item in value.values()]) if value else ("value",)
        return ("map", common if common is not None else ("value",))
    return ("value",)


def unify_all(types: list[Natural]) -> Natural | None:
    found: Natural | None = types[0]
    for other in types[1:]:
        found = unify(found, other) if found is not None else None
    return found


def unify(a: Natural, b: Natural) -> Natural | None:
    """The one type both fit in, or None (a heterogeneous array is then a tuple)."""
    if a == b:
        return a
    numbers = ("int", "long", "double")
    if a[0] in numbers and b[0] in numbers:
        return max(a, b, key=lambda t: numbers.index(t[0]))
    if a == ("value",) and b[0] not in ("value", "optional"):  # null with something: an optional
        return ("optional", b)
    if b == ("value",) and a[0] not in ("value", "optional"):
        return ("optional", a)
    if a[0] == "optional" or b[0] == "optional":
        inner = unify(a[1] if a[0] == "optional" else a, b[1] if b[0] == "optional" else b)
        return ("optional", inner) if inner is not None else None
    if a[0] == "empty" and b[0] == "vector":
        return b
    if b[0] == "empty" and a[0] == "vector":
        return a
    if a[0] == b[0] == "vector" or a[0] == b[0] == "map":
        inner = unify(a[1], b[1])
        return (a[0], inner) if inner is not None else None
    return None


def cpp_type(t: Natural) -> str:
    kind = t[0]
    if kind in CPP_NAMES:
        return CPP_NAMES[kind]
    if kind == "empty":
        return "std::vector<int>"
    if kind == "vector":
        return f"std::vector<{cpp_type(t[1])}>"
    if kind == "optional":
        return f"std::optional<{cpp_type(t[1])}>"
    if kind == "map":
        return f"std::map<std::string, {cpp_type(t[1])}>"
    return f"std::tuple<{', '.join(cpp_type(item) for item in t[1])}>"


def argument_types(calls: list[tuple[str, list[Any]]]) -> list[tuple[str, ...]]:
    """Each call's natural argument types; an empty array takes the type of the first non-empty array
    passed in the same place (function and position) by another call, so `dedupe([])` matches
    `dedupe([3, 1])`."""
    types = [[natural(arg) for arg in args] for _, args in calls]
    seen: dict[tuple[str, int], Natural] = {}
    for (name, _), found in zip(calls, types, strict=True):
        for position, t in enumerate(found):
            if t[0] == "vector":
                seen.setdefault((name, position), t)
    return [
        tuple(cpp_type(seen.get((name, position), t) if t == ("empty",) else t) for position, t in enumerate(found))
        for (name, _), found in zip(calls, types, strict=True)
    ]


class Shapes:
    """The distinct call sites of a set of cases, numbered in the order first met."""

    def __init__(self) -> None:
        self.ids: dict[tuple, int] = {}

    def id(self, key: tuple) -> int:
        return self.ids.setdefault(key, len(self.ids))


def plan(cases: list[dict]) -> tuple[list[dict], Shapes, Shapes, dict[str, int]]:
    """The harness's tests (with their shapes), the call shapes, the op shapes and the classes."""
    jobs = [job_input(case) for case in cases]
    calls: list[tuple[str, list[Any]]] = []
    for job in jobs:
        if "function" in job:
            calls.append((job["function"], job["args"]))
        elif "ops" in job:
            class_name, ctor_args = job["ops"][0]
            calls.append((f"{class_name}::{class_name}", ctor_args))
            calls += [(f"{class_name}::{name}", args) for name, args in job["ops"][1:]]
    types = iter(argument_types(calls))
    call_shapes, op_shapes = Shapes(), Shapes()
    classes: dict[str, int] = {}
    tests = []
    for job in jobs:
        if "function" in job:
            tests.append({**job, "shape": call_shapes.id((job["function"], next(types)))})
        elif "ops" in job:
            class_name = job["ops"][0][0]
            classes.setdefault(class_name, len(classes))
            shapes = [op_shapes.id((class_name, "", next(types)))]
            for name, _ in job["ops"][1:]:
                signature = next(types)
                shapes.append(op_shapes.id((class_name, name, () if name == "__iter__" else signature)))
            tests.append({**job, "shape": classes[class_name], "shapes": shapes})
        else:
            tests.append(job)
    return tests, call_shapes, op_shapes, classes


@dataclass(frozen=True)
class CppLanguage(Language):
    source_file: str = SOURCE

    def files(self, code: str, cases: list[dict]) -> dict[str, str]:
        return {SOURCE: code, DISPATCH: dispatch_source(cases)}

    def run_stdin(self, cases: list[dict], *, output_cap: int, test_timeout_ms: int) -> str:
        return run_stdin(cases, output_cap=output_cap, test_timeout_ms=test_timeout_ms)


CPP = CppLanguage("cpp", "C++", "cpp", version_command=(GPP, "-dumpfullversion"))


def job_input(case: dict) -> dict:
    if "stdin" in case:
        return {"stdin": case["stdin"]}
    if "args" in case:
        return {"function": neutral.function_name(case["function"], "cpp"), "args": json.loads(case["args"])}
    ops = json.loads(case["ops"])
    return {"ops": [ops[0], *([neutral.function_name(name, "cpp"), args] for name, args in ops[1:])]}


def run_stdin(cases: list[dict], *, output_cap: int, test_timeout_ms: int) -> str:
    tests, _, _, _ = plan(cases)
    return json.dumps({"tests": tests, "output_cap": output_cap, "test_timeout_ms": test_timeout_ms})


def dispatch_source(cases: list[dict]) -> str:
    """The dispatch file for `cases`: the submission included, then one call site per shape."""
    _, call_shapes, op_shapes, classes = plan(cases)
    lines = [
        "// Generated by the C++ Language for one exercise's cases (languages/cpp/__init__.py).",
        "#include <sandbox.hpp>",
        f'#include "{SOURCE}"',
        "#define SANDBOX_FORWARD(a) static_cast<decltype(a)&&>(a)",
        "namespace sandbox_dispatch {",
    ]
    functions: dict[str, int] = {}
    for name, _ in call_shapes.ids:
        if name not in functions:
            functions[name] = len(functions)
            lines.append(
                f"auto f{functions[name]} = [](auto&&... a) -> decltype({name}(SANDBOX_FORWARD(a)...)) "
                f"{{ return {name}(SANDBOX_FORWARD(a)...); }};"
            )
    methods: dict[tuple[str, str], int] = {}
    for class_name, name, _ in op_shapes.ids:
        if name and name != "__iter__" and (class_name, name) not in methods:
            methods[class_name, name] = len(methods)
            lines.append(
                f"auto m{methods[class_name, name]} = [](auto& o, auto&&... a) -> "
                f"decltype(o.{name}(SANDBOX_FORWARD(a)...)) {{ return o.{name}(SANDBOX_FORWARD(a)...); }};"
            )
    lines.append("}  // namespace sandbox_dispatch")
    lines.append(
        "sandbox::Value sandbox::detail::dispatch_call(sandbox::detail::Shape shape, const sandbox::Array& args) {"
    )
    lines.append("  switch (shape) {")
    for (name, types), shape in call_shapes.ids.items():
        lines.append(
            f"    case {shape}: return sandbox::detail::call<{', '.join(types)}>"
            f'(sandbox_dispatch::f{functions[name]}, args, "{name}");'
        )
    lines += ["  }", '  throw sandbox::detail::CallError("the harness was sent an unknown call");', "}"]
    for class_name, number in classes.items():
        lines += [
            f"static sandbox::Value ops{number}(const std::vector<sandbox::detail::Op>& ops) {{",
            f"  std::optional<{class_name}> o;",
            "  sandbox::Array out;",
            "  for (const auto& op : ops) {",
            "    switch (op.shape) {",
        ]
        for (owner, name, types), shape in op_shapes.ids.items():
            if owner != class_name:
                continue
            if not name:
                site = f'construct<{", ".join((class_name, *types))}>(o, *op.args, "{class_name}")'
            elif name == "__iter__":
                site = "iterate(o)"
            else:
                site = (
                    f"call_method<{', '.join(types)}>"
                    f'(sandbox_dispatch::m{methods[owner, name]}, o, *op.args, "{class_name}::{name}")'
                )
            lines.append(f"      case {shape}: out.push_back(sandbox::detail::{site}); continue;")
        lines += [
            "    }",
            '    throw sandbox::detail::CallError("the harness was sent an unknown operation");',
            "  }",
            '  return sandbox::detail::tagged("list", sandbox::Value(std::move(out)));',
            "}",
        ]
    lines.append(
        "sandbox::Value sandbox::detail::dispatch_ops(sandbox::detail::Shape shape, "
        "const std::vector<sandbox::detail::Op>& ops) {"
    )
    lines.append("  switch (shape) {")
    lines += [f"    case {number}: return ops{number}(ops);" for number in classes.values()]
    lines += ["  }", '  throw sandbox::detail::CallError("the harness was sent an unknown class");', "}"]
    lines.append("")
    return "\n".join(lines)
