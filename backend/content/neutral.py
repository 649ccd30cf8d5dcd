"""Language-neutral exercise tests: data every language's harness can run, graded by the server alone.

A neutral case is one of
- a call: `{"name", "function", "args": "<JSON array>", "expected": "<JSON value>"}` — the function (its
  snake_case name, turned into each language's convention by `function_name`) is called with the decoded
  arguments;
- a sequence of operations on a class: `{"name", "ops": "<JSON array of [method, [args...]]>", "expected":
  "<JSON array>"}` — the first op names the class and constructs it (its result is `null`), every later op
  calls a method on that instance; the result is the list of what each op returned;
- a program run: `{"name", "stdin", "expected_stdout"}`, exactly as in docs/API.md.
Arguments and expected values are JSON text (TOML has no null). Harnesses are sent `args`/`ops`/`stdin`
only, never `expected`; they report each result as the tagged value tree of `base.decode`, and the server
compares it with the expected value (`base.grade`), so JSON arrays, objects, numbers, strings, booleans
and null compare as the equal Python values (an integer-valued float equals the integer, as in Python).

Most catalog exercises need no authored cases: `derive_cases` turns every Python test that is a plain call
of one function with literal, JSON-representable arguments into a neutral call. `python_tests` turns
neutral calls back into Python tests (the return value goes through a JSON round trip, so a tuple compares
as a list), which is how CI checks authored cases against the trusted Python reference.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

CALL_KEYS = {"name", "function", "args", "expected"}
OPS_KEYS = {"name", "ops", "expected"}
PROGRAM_KEYS = {"name", "stdin", "expected_stdout"}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CAMEL_CASE_LANGUAGES = ("javascript", "typescript", "java", "go")


def function_name(name: str, language: str) -> str:
    """A neutral (snake_case) function or method name in `language`'s convention: `second_largest` is
    `secondLargest` in JavaScript, TypeScript, Java and Go, and stays `second_largest` in Python and C++.
    Dunder names (`__iter__`) are protocol ops, never renamed."""
    if language not in CAMEL_CASE_LANGUAGES or name.startswith("__"):
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def method_name(name: str, language: str) -> str:
    """A neutral method name (an op) in `language`'s convention: as a function, except in Go, where the
    harness reaches only exported methods (`is_empty` is `IsEmpty`)."""
    renamed = function_name(name, language)
    return renamed[:1].upper() + renamed[1:] if language == "go" and not name.startswith("__") else renamed


def is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list | tuple):
        return all(is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json_value(item) for key, item in value.items())
    return False


def as_json(value: Any) -> Any:
    """A JSON-representable Python value with tuples as lists (what every other language returns)."""
    return json.loads(json.dumps(value))


def check_case(case: Any, where: str) -> dict[str, str]:
    """Validate one neutral case (raising ValueError naming `where`); returns a plain copy."""
    if not isinstance(case, dict):
        raise ValueError(f"{where} is not a table")
    keys = set(case)
    if keys not in (CALL_KEYS, OPS_KEYS, PROGRAM_KEYS):
        raise ValueError(
            f"{where} must be {{name, function, args, expected}}, {{name, ops, expected}} or"
            f" {{name, stdin, expected_stdout}},"
            f" got keys {sorted(keys)}"
        )
    if not all(isinstance(case[key], str) for key in keys) or not case["name"].strip():
        raise ValueError(f"{where}: every field must be a string, and the name non-empty")
    for key in keys & {"args", "ops", "expected"}:
        try:
            json.loads(case[key])
        except ValueError as error:
            raise ValueError(f"{where}: {key} is not JSON ({error})") from None
    if "args" in case and not isinstance(json.loads(case["args"]), list):
        raise ValueError(f"{where}: args must be a JSON array")
    if "function" in case and not IDENTIFIER.match(case["function"]):
        raise ValueError(f"{where}: function must be an identifier")
    if "ops" in case:
        ops, expected = json.loads(case["ops"]), json.loads(case["expected"])
        if not ops or not all(
            isinstance(op, list) and len(op) == 2 and isinstance(op[0], str) and IDENTIFIER.match(op[0])
            and isinstance(op[1], list)
            for op in ops
        ):  # fmt: skip
            raise ValueError(f"{where}: ops must be a non-empty array of [name, [args...]]")
        if not isinstance(expected, list) or len(expected) != len(ops):
            raise ValueError(f"{where}: expected must be an array with one result per op")
    return dict(case)


def derive_cases(tests: list[dict]) -> list[dict[str, str]]:
    """The Python tests that are plain calls with JSON-representable literals, as neutral calls; program
    tests as they are. Tests with setup code, expressions or Python-only values are left out."""
    cases: list[dict[str, str]] = []
    for test in tests:
        if "stdin" in test:
            cases.append({key: test[key] for key in PROGRAM_KEYS})
            continue
        if test.get("setup"):
            continue
        node = ast.parse(test["call"], mode="eval").body
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.keywords:
            continue
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
            expected = ast.literal_eval(test["expected"])
        except (ValueError, SyntaxError, TypeError):
            continue
        if not all(is_json_value(arg) for arg in args) or not is_json_value(expected):
            continue
        cases.append(
            {
                "name": test["name"],
                "function": node.func.id,
                "args": json.dumps(as_json(args)),
                "expected": json.dumps(as_json(expected)),
            }
        )
    return cases


def python_literal(text: str) -> str:
    """A JSON text as the equal Python literal (`null` → `None`, ...)."""
    return repr(json.loads(text))


def python_tests(cases: list[dict[str, str]]) -> list[dict[str, str]]:
    """Neutral calls and programs as Python tests (docs/API.md, "Exercise tests"); the result is JSON round-tripped.
    Sequences of ops are left out: Python spells them with its own protocols (`len(o)`, `x in o`)."""
    tests = []
    for case in cases:
        if "stdin" in case:
            tests.append(dict(case))
        elif "args" in case:
            args = ", ".join(repr(arg) for arg in json.loads(case["args"]))
            # An iterator (a generator) stands for its items, as in every harness; anything else not JSON fails.
            items = "lambda o: list(o) if hasattr(o, '__next__') else repr(o)"
            call = f"__import__('json').loads(__import__('json').dumps({case['function']}({args}), default={items}))"
            tests.append({"name": case["name"], "call": call, "expected": python_literal(case["expected"])})
    return tests


def display_call(case: dict[str, str], language: str) -> str:
    """How a neutral test's input reads to a student: `chunk([1, 2, 3], 2)` or the sequence of ops."""

    def arguments(args: list) -> str:
        return ", ".join(json.dumps(arg) for arg in args)

    if "args" in case:
        return f"{function_name(case['function'], language)}({arguments(json.loads(case['args']))})"
    ops = json.loads(case["ops"])
    if language == "go":  # a constructor function: `o := newStack()`
        lines = [f"o := new{ops[0][0]}({arguments(ops[0][1])})"]
    else:
        lines = [f"o = new {ops[0][0]}({arguments(ops[0][1])})"]
    lines += [f"o.{method_name(name, language)}({arguments(args)})" for name, args in ops[1:]]
    return "\n".join(lines)
