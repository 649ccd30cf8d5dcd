"""The grading harness: the trusted program that runs *inside* the sandbox (not imported by the server).

It is copied next to the submission and started as `python3 -I -S harness.pyc [--results-fd N] [--reap-all]`
(precompiled by the runner, with the child's part as child.pyc beside it; as harness.py, its source, where
nothing precompiled it: Piston) with the job on stdin: `{"code": str, "tests": [{"setup", "call"} |
{"stdin"}], "output_cap": int}`. The job never contains an expected value: the server compares outputs with
expectations itself.

The harness never runs user code in its own process, nor in a fork of it (a fork would inherit the job:
walking `sys._getframe()` up would find every test). It makes itself non-dumpable (processes of the same uid
cannot ptrace it, read its memory or open `/proc/<pid>/fd/*`) and a child subreaper, closes every descriptor
but stdio and the result channel, and compiles the submission (a syntax error is reported with its line). User
code then runs in a freshly exec'd interpreter, `python3 -I -S child.pyc call|program` (from source: `-c <the
child's part of this file>`), which holds descriptors 0-2 (stdin, and pipes for stdout and stderr) and, for
call tests, 3 (commands in) and 4 (values out); nothing else, no job, no result channel. One child runs all
call tests: it gets the compiled submission, imports it once, then receives one test at a time, each only
after the previous one reported, so it never holds a test it is not running. Each program test gets a child of
its own. After a child exits, everything else it left running is killed and reaped (`kill(-1)` when the
harness has a uid of its own or a PID namespace, else the child's process group), so a detached grandchild
cannot outlive its test. Under bubblewrap the harness is the PID namespace's init (`--as-pid-1`), which
nothing inside the namespace can signal.

Output is attributed to the test that is running (the last one begun), or to the import (`test: null`)
before the first test begins, so the server can withhold what hidden tests printed.

Events written to the result channel, one JSON object per line, in the order things happen:
  {"event": "started"}                                   the job was read; from here on, user code may run
  {"event": "syntax_error", "line": int | None, "message": str}
  {"event": "import_error", "message": str}              the submission crashed while being imported
  {"event": "begin", "index": int}                       test `index` is handed to user code now
  {"event": "output", "test": int | None, "stdout": str, "stderr": str}   printed meanwhile (in pieces)
  {"event": "call", "index": int, "value": <encoded> | None, "error": str | None,
   "exception": str | None, "ms": float}                 `exception`: a builtin exception's name, else None
  {"event": "program", "index": int, "stdout": str, "error": str | None, "truncated": bool, "ms": float}
  {"event": "done"}
Between harness and call child: commands are a 4-byte big-endian length and `marshal` data (the code
object, then `(index, setup, call)` per test; EOF = no more tests); the child answers with JSON lines
(`imported`, `import_error`, `call`). The harness trusts nothing the child sends: it forwards only
well-formed events for the test it is running. Stdlib only; runs on the sandbox's system Python.

In the repository the harness is three modules, joined in this order into the one file the sandbox runs
(`base.HARNESS_SOURCE`): child.py (the child's program: this part), supervise.py (the harness's side of a
child: descriptors, pipes, caps, leftovers) and main.py (the job, the tests in turn, the events).
"""

import builtins
import marshal
import os
import sys
import time

try:
    from _json import encode_basestring_ascii as quote
except ImportError:  # an interpreter without json's C accelerator
    from json.encoder import py_encode_basestring_ascii as quote

MAX_DEPTH = 64  # deeper values are reported as unsupported rather than blowing the stack
MAX_VALUE_LINE = 256 * 1024  # bytes of one encoded value a call child may send
# Every encoded item takes at least 8 bytes of JSON: more items than this can never fit in one line, so
# encoding stops there instead of walking (and serialising) a million-element list only to drop it.
MAX_VALUE_ITEMS = MAX_VALUE_LINE // 8
VALUE_TOO_LARGE = "the returned value is too large to compare"
OUTPUT_LIMIT = "output limit exceeded"
COMMANDS_FD, VALUES_FD = 3, 4
CHILD_POLL_SECONDS = 0.02
OUTPUT_FLUSH_CHARS = 4096  # output is reported in pieces this big, or when the child pauses
SIGKILL = 9  # on Linux; the signal module (it imports enum) would cost ~2 ms of every start

# --- the child: runs user code, in a fresh interpreter -----------------------------------------------


class ValueTooLarge(Exception):
    pass


def encode(value, depth=0, budget=None):
    """A JSON tree of tagged builtin values, by exact type: a subclass with a lying __eq__ is 'other'.

    `budget` ([items left]) bounds the work; running out raises ValueTooLarge."""
    if budget is None:
        budget = [MAX_VALUE_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueTooLarge
    kind = type(value)
    if depth > MAX_DEPTH:
        return ["other", "too deeply nested"]
    if value is None:
        return ["none"]
    if kind is bool:
        return ["bool", value]
    if kind is int:
        try:
            return ["int", str(value)]
        except ValueError:  # over the int/str digit limit
            return ["other", "an int too large to compare"]
    if kind is float:
        return ["float", repr(value)]
    if kind is complex:
        return ["complex", repr(value.real), repr(value.imag)]
    if kind is str:
        return ["str", value]
    if kind is bytes:
        return ["bytes", value.hex()]
    if kind in (list, tuple, set, frozenset):
        return [kind.__name__, [encode(item, depth + 1, budget) for item in value]]
    if kind is dict:
        return ["dict", [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in value.items()]]
    try:
        text = repr(value)[:200]
    except Exception:
        text = "<" + kind.__name__ + ">"
    return ["other", text]


def to_json(node):
    """JSON text of events, without importing `json` (its `re` and `enum` cost ~8 ms of every start)."""
    if node is None:
        return "null"
    if node is True or node is False:
        return "true" if node else "false"
    kind = type(node)
    if kind is str:
        return quote(node)
    if kind is int or kind is float:
        return repr(node)
    if kind is list:
        return "[" + ", ".join([to_json(item) for item in node]) + "]"
    return "{" + ", ".join([quote(str(key)) + ": " + to_json(item) for key, item in node.items()]) + "}"


def print_traceback():
    """The current exception's traceback from the submission's first frame on (none of the child's own).
    Imported only when needed: traceback (with linecache and tokenize) costs ~3 ms of every start."""
    import traceback

    kind, error, frames = sys.exc_info()
    while frames is not None and frames.tb_frame.f_code.co_filename != "main.py":
        frames = frames.tb_next
    traceback.print_exception(kind, error, frames)


def describe(error):
    """'ZeroDivisionError: division by zero': what a student needs, without the harness's frames."""
    try:
        text = str(error)
    except BaseException:
        text = ""
    return type(error).__name__ + (": " + text if text else "")


def builtin_name(error):
    """The exception's name when it is a builtin one; None for the submission's own classes, whose names
    it may have built from a hidden test's arguments."""
    name = type(error).__name__
    return name if getattr(builtins, name, None) is type(error) else None


def read_exact(fd, size):
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def receive():
    """The harness's next command (marshal data after a 4-byte length), or None when there are no more."""
    header = read_exact(COMMANDS_FD, 4)
    body = None if header is None else read_exact(COMMANDS_FD, int.from_bytes(header, "big"))
    return None if body is None else marshal.loads(body)  # noqa: S302 - written by the harness, trusted


def settle():
    """Flush what user code printed, so it reaches the harness before the result that follows it."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:  # noqa: SIM105 - contextlib would cost ~2 ms of every start
            stream.flush()
        except BaseException:  # noqa: S110 - closed or replaced by the submission: nothing to flush
            pass


def child_main(mode):
    def report(event):
        data = (to_json(event) + "\n").encode()
        if len(data) > MAX_VALUE_LINE:
            event.update(value=None, error=VALUE_TOO_LARGE, exception=None)
            data = (to_json(event) + "\n").encode()
        while data:
            data = data[os.write(VALUES_FD, data) :]

    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.argv = ["main.py"]
    code = receive()
    if mode == "program":
        os.close(COMMANDS_FD)
        os._exit(run_program(code))
    module = type(sys)("solution")
    module.__dict__["__builtins__"] = builtins
    sys.modules["solution"] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the submission is the point
    except BaseException as error:
        print_traceback()
        settle()
        report({"event": "import_error", "message": describe(error)})
        os._exit(0)
    del code
    settle()
    report({"event": "imported"})
    while (test := receive()) is not None:
        index, setup, call = test
        del test
        scope = dict(module.__dict__)
        started = time.perf_counter()
        event = {"event": "call", "index": index, "value": None, "error": None, "exception": None}
        try:
            if setup:
                exec(setup, scope)  # noqa: S102
            event["value"] = encode(eval(call, scope))  # noqa: S307
        except ValueTooLarge:
            event["error"] = VALUE_TOO_LARGE
        except BaseException as error:
            event.update(error=describe(error), exception=builtin_name(error))
        event["ms"] = round((time.perf_counter() - started) * 1000, 3)
        del scope, setup, call
        settle()
        report(event)  # one line per test: results arrive as they happen, so a later timeout keeps them
    os._exit(0)


def run_program(code):
    """Run the submission as a script; returns the exit status."""
    module = type(sys)("__main__")
    module.__dict__.update(__builtins__=builtins, __file__="main.py")
    sys.modules["__main__"] = module
    status = 0
    try:
        exec(code, module.__dict__)  # noqa: S102
    except SystemExit as stop:
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
            status = 1
        else:
            status = stop.code or 0
    except BaseException:
        print_traceback()
        status = 1
    settle()
    return status if 0 <= status < 256 else 1
