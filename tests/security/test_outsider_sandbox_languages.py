"""An outsider's JavaScript submissions go after the hidden tests of a JavaScript exercise (issue 13, item 4,
for the node harness), through the real app and the real sandbox runner.

Hidden inputs must never come back. The attacks that worked before the node harness got a supervisor of its
own: writing forged `output` events straight to the result channel (inherited by the code's process and by
every program test's), hooking the harness's realm (`Array.prototype[Symbol.iterator]`, reached through
`process.constructor.constructor`) to see every test at import time, and reading the memory of any process
of the run through /proc. Visible examples keep their output.
"""

from __future__ import annotations

import json

import pytest
from quart import Quart
from quart.testing import QuartClient

from backend.integrations.sandbox.languages import LANGUAGES
from tests.api.test_exercises import add_exercise, sign_in, submit

pytestmark = pytest.mark.skipif(not LANGUAGES["javascript"].available, reason="node is not installed")

SECRETS = ("424242", "313131", "272727", "161616")
VISIBLE = [{"name": "small", "function": "add_numbers", "args": "[1, 2]", "expected": "3"}]
HIDDEN = [
    {"name": "big", "function": "add_numbers", "args": "[424242, 313131]", "expected": "737373"},
    {"name": "negative", "function": "add_numbers", "args": "[-272727, 161616]", "expected": "-111111"},
]
PROGRAM_VISIBLE = [{"name": "two", "stdin": "1\n2\n", "expected_stdout": "3"}]
PROGRAM_HIDDEN = [{"name": "secret", "stdin": "424242\n313131\n", "expected_stdout": "737373"}]
PROGRAM_SOLUTION = 'const n = require("fs").readFileSync(0, "utf8").split("\\n").filter(Boolean).map(Number);\n' + (
    "console.log(n.reduce((a, b) => a + b, 0));\n"
)

# What an attacker can reach from inside: the result channel (any inherited descriptor: forged events,
# including "import output", which is shown), the harness's own realm, and the memory of every other
# process of the run. Whatever is found is printed and forged into every descriptor as import output.
SNOOP = r"""
const fs = require("fs");
// Built at run time, so this source itself does not hold the digits the memory scan looks for.
const SECRET = new RegExp([212121 * 2, 104377 * 3, 90909 * 3, 80808 * 2].join("|"), "g");
function forge(text) {
  for (let fd = 3; fd < 64; fd++) {
    for (const test of [null, 0]) {
      try {
        fs.writeSync(fd, JSON.stringify({ event: "output", test, stdout: "LEAK " + text + "\n", stderr: "" }) + "\n");
      } catch (e) {}
    }
  }
}
function scanMemory() {
  const found = new Set();
  const others = fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name) && name !== String(process.pid));
  for (const pid of others) {
    let maps, fd;
    try {
      maps = fs.readFileSync(`/proc/${pid}/maps`, "utf8");
      fd = fs.openSync(`/proc/${pid}/mem`, "r");
    } catch (e) { continue; }
    for (const line of maps.split("\n")) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) rw/.exec(line);
      if (!m) continue;
      const start = parseInt(m[1], 16), size = Math.min(parseInt(m[2], 16) - start, 64 * 1024 * 1024);
      const buffer = Buffer.alloc(size);
      try { fs.readSync(fd, buffer, 0, size, start); } catch (e) { continue; }
      for (const hit of buffer.toString("latin1").match(SECRET) || []) found.add(pid + ":" + hit);
    }
    fs.closeSync(fd);
  }
  return [...found];
}
"""
ADD = """
function addNumbers(first, second) {
  console.log("args", first, second);
  return first + second;
}
"""
CALL_ATTACKS = {
    # Forged events carrying each test's arguments, into every descriptor (the old harness's channel).
    "forged events": SNOOP + ADD.replace('console.log("args", first, second);', "forge(`args ${first} ${second}`);"),
    # The harness's realm through `process`: every array it iterates after the import, its list of tests too.
    "hooked realm": SNOOP
    + """
const realm = process.constructor.constructor("return this")();
const iterate = realm.Array.prototype[Symbol.iterator];
realm.Array.prototype[Symbol.iterator] = function () {
  try { if (JSON.stringify(this).match(SECRET)) console.log("LEAK " + JSON.stringify(this)); } catch (e) {}
  return iterate.call(this);
};
"""
    + ADD,
    # The memory of every other process of the run (the harness's holds the job).
    "memory": SNOOP + 'console.log("LEAK " + JSON.stringify(scanMemory()));' + ADD,
}
PROGRAM_ATTACK = (
    SNOOP
    + r"""
const input = fs.readFileSync(0, "utf8");
console.log("stdin " + JSON.stringify(input) + " memory " + JSON.stringify(scanMemory()));
forge(JSON.stringify(input));
console.log(input.split("\n").filter(Boolean).map(Number).reduce((a, b) => a + b, 0));
"""
)


def leaked(body: object) -> list[str]:
    text = json.dumps(body)
    return [secret for secret in SECRETS if secret in text]


async def test_calls_cannot_surface_hidden_inputs(embedded_app: Quart, embedded_client: QuartClient) -> None:
    exercise_id = await add_exercise(
        embedded_app, language="javascript", examples=VISIBLE, tests=VISIBLE + HIDDEN,
        solution="function addNumbers(a, b) { return a + b; }\n", starter_code="function addNumbers(a, b) {}\n",
    )  # fmt: skip
    headers, _ = await sign_in(embedded_client)
    for name, code in CALL_ATTACKS.items():
        body = await submit(embedded_client, headers, exercise_id, code)
        submission = body["submission"]
        assert leaked(body) == [], (name, submission["stdout"])
        if name != "forged events":  # writing into node's own descriptors may break the attacker's process
            assert submission["status"] == "passed", (name, submission)  # every hidden test ran
            assert "args 1 2" in submission["stdout"], name  # the visible example's own output is shown


async def test_programs_cannot_surface_hidden_stdin(embedded_app: Quart, embedded_client: QuartClient) -> None:
    exercise_id = await add_exercise(
        embedded_app, language="javascript", exercise_type="practical", examples=PROGRAM_VISIBLE,
        tests=PROGRAM_VISIBLE + PROGRAM_HIDDEN, solution=PROGRAM_SOLUTION, starter_code="\n",
    )  # fmt: skip
    headers, _ = await sign_in(embedded_client)
    body = await submit(embedded_client, headers, exercise_id, PROGRAM_ATTACK)
    assert leaked(body) == [], body["submission"]["stdout"]
    assert 'stdin "1\\n2\\n" memory []' in body["submission"]["stdout"]
