"""Hidden tests stay hidden, attacked through the real app and the real sandbox (issue 13, item 4).

A submission may try to learn the hidden tests' inputs from inside the sandbox (walking frames up to
whatever the grader holds, scanning every object) or get them echoed back in the response (printing its
arguments, putting them into an exception's message or an exception class's name). The response may
tell a hidden test's name, pass/fail and the kind of failure, nothing more; visible examples keep their
output.
"""

from __future__ import annotations

import json

from quart import Quart
from quart.testing import QuartClient

from tests.api.test_exercises import VISIBLE, add_exercise, sign_in, submit

# Distinctive arguments: any of these digits in a response means a hidden test's input leaked.
SECRETS = ("424242", "313131", "272727", "161616", "515151", "939393")
HIDDEN = [
    {"name": "big", "call": "add_numbers(424242, 313131)", "expected": "737373"},
    {"name": "negative", "call": "add_numbers(-272727, 161616)", "expected": "-111111"},
    {"name": "prepared", "setup": "pair = (515151, 939393)", "call": "add_numbers(*pair)", "expected": "1454544"},
    {"name": "float", "call": "add_numbers(0.424242, 1)", "expected": "1.424242"},
]
HIDDEN_NAMES = [test["name"] for test in HIDDEN]
LEAKY = (
    "import sys\n"
    "print('imported fine')\n"
    "def add_numbers(first, second):\n"
    "    print('args', first, second)\n"
    "    print('stderr args', first, second, file=sys.stderr)\n"
    "    if isinstance(first, float):\n"
    "        name = 'Arg' + str(first).replace('.', '_') + 'Error'\n"
    "        raise type(name, (Exception,), {})(first)\n"
    "    if first < 0 or first > second:\n"
    "        raise ValueError(f'the arguments were {first} and {second}')\n"
    "    return first + second\n"
)
# Every string that looks like a test's call, found by walking the frames up from the submission and by
# scanning every object the interpreter tracks: more of them than calls made means the process holds a
# test it is not running (the old harness's forked child held them all).
FRAME_WALKER = (
    "import gc, sys\n"
    "calls = 0\n"
    "def collect(value, found, depth=0):\n"
    "    if isinstance(value, str):\n"
    "        if value.startswith('add_numbers(') and value.endswith(')'):\n"
    "            found.add(value)\n"
    "    elif depth < 6 and isinstance(value, (dict, list, tuple, set, frozenset)):\n"
    "        try:\n"
    "            items = list(value.items()) if isinstance(value, dict) else list(value)\n"
    "        except Exception:\n"
    "            return\n"
    "        for item in items:\n"
    "            collect(item, found, depth + 1)\n"
    "def known_calls():\n"
    "    found = set()\n"
    "    frame = sys._getframe()\n"
    "    while frame is not None:\n"
    "        collect(dict(frame.f_locals), found)\n"
    "        collect(dict(frame.f_globals), found)\n"
    "        frame = frame.f_back\n"
    "    for holder in gc.get_objects():\n"
    "        collect(holder, found, 5)\n"
    "    return found\n"
    "def add_numbers(first, second):\n"
    "    global calls\n"
    "    calls += 1\n"
    "    found = known_calls()\n"
    "    return first + second if len(found) <= calls else sorted(found)\n"
)


async def test_walking_frames_and_objects_finds_no_test_not_yet_run(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app, tests=VISIBLE + HIDDEN)
    submission = (await submit(client, headers, exercise_id, FRAME_WALKER))["submission"]
    assert submission["status"] == "passed", submission["results"]
    assert not any(secret in json.dumps(submission) for secret in SECRETS)


async def test_what_hidden_tests_print_or_raise_is_never_returned(app: Quart, client: QuartClient) -> None:
    headers, _ = await sign_in(client)
    exercise_id = await add_exercise(app, tests=HIDDEN[:2] + VISIBLE + HIDDEN[2:])  # hidden ones listed first
    body = await submit(client, headers, exercise_id, LEAKY)
    serialized = json.dumps(body)
    assert not any(secret in serialized for secret in SECRETS), serialized
    assert "0_424242" not in serialized and "Arg" not in serialized
    submission = body["submission"]
    assert submission["status"] == "failed" and submission["tests_passed"] == 3
    results = {result["name"]: result for result in submission["results"]}
    assert [result["name"] for result in submission["results"]] == [
        "big",
        "negative",
        "small",
        "zero",
        "prepared",
        "float",
    ]
    # Hidden: the name, pass/fail and the kind of failure only.
    hidden = {name: {key: value for key, value in results[name].items() if value is not None} for name in HIDDEN_NAMES}
    assert hidden == {
        "big": {"name": "big", "passed": False, "message": "This hidden test raised ValueError."},
        "negative": {"name": "negative", "passed": False, "message": "This hidden test raised ValueError."},
        "prepared": {"name": "prepared", "passed": True},
        "float": {"name": "float", "passed": False, "message": "This hidden test raised an exception."},
    }
    # Visible examples keep everything, their output included, and so does the import.
    assert results["small"] | {"message": None} == {
        "name": "small", "passed": True, "message": None, "input": "add_numbers(1, 2)", "expected": "3", "actual": "3"
    }  # fmt: skip
    assert submission["stdout"] == "imported fine\nargs 1 2\nargs 0 0\n"
    assert submission["stderr"] == "stderr args 1 2\nstderr args 0 0\n"
