"""The grading harness: the trusted program that runs *inside* the sandbox (not imported by the server).

It is copied next to the submission and started as `python3 -I -S harness.py [--results-fd N] [--reap-all]`
with the job on stdin: `{"code": str, "tests": [{"setup", "call"} | {"stdin"}], "output_cap": int}`. The
job never contains an expected value: the server compares outputs with expectations itself.

The harness never runs user code in its own process. It makes itself non-dumpable (so processes of the
same uid cannot ptrace it, read its memory or open `/proc/<pid>/fd/*`) and a child subreaper, compiles the
submission (a syntax error is reported with its line), then forks one child for all call tests and one
child per program test. Each child closes the result channel and the job's stdin before running user
code, gets pipes for its stdout and stderr (and, for call tests, a private pipe for encoded values), and
its own session. After a child exits, everything else it left running is killed and reaped (`kill(-1)`
when the harness has a uid of its own or a PID namespace, else the child's process group), so a detached
grandchild cannot outlive its test. Under bubblewrap the harness is the PID namespace's init
(`--as-pid-1`), which nothing inside the namespace can signal.

Events written to the result channel, one JSON object per line:
  {"event": "started"}                                   the job was read; from here on, user code may run
  {"event": "syntax_error", "line": int | None, "message": str}
  {"event": "import_error", "message": str}              the submission crashed while being imported
  {"event": "call", "index": int, "value": <encoded> | None, "error": str | None}
  {"event": "program", "index": int, "stdout": str, "error": str | None, "truncated": bool}
  {"event": "output", "stdout": str, "stderr": str}       what a child printed (call child: all of it)
  {"event": "done"}
Stdlib only; runs on the sandbox's system Python.
"""

import builtins
import contextlib
import json
import os
import selectors
import signal
import sys
import time
import types

MAX_DEPTH = 64  # deeper values are reported as unsupported rather than blowing the stack
MAX_VALUE_LINE = 256 * 1024  # bytes of one encoded value a call child may send
# Every encoded item takes at least 8 bytes of JSON: more items than this can never fit in one line, so
# encoding stops there instead of walking (and serialising) a million-element list only to drop it.
MAX_VALUE_ITEMS = MAX_VALUE_LINE // 8
VALUE_TOO_LARGE = "the returned value is too large to compare"
CHILD_POLL_SECONDS = 0.02


def protect_self():
    """PR_SET_DUMPABLE=0: other processes of our uid (the user's code) can no longer ptrace us, read our
    memory or reopen our file descriptors through /proc. PR_SET_CHILD_SUBREAPER: orphaned grandchildren
    become ours, so we can reap them and the uid's process count drops before the next run.
    Best effort where ctypes is unavailable."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: S110 - a minimal image without libffi still grades correctly
        pass


def read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


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


def print_traceback():
    """Imported only when needed: traceback (with linecache and tokenize) costs ~3 ms of every start."""
    import traceback

    traceback.print_exc()


def describe(error):
    """'ZeroDivisionError: division by zero': what a student needs, without the harness's frames."""
    text = str(error)
    return type(error).__name__ + (": " + text if text else "")


class Harness:
    def __init__(self, results_fd, reap_all):
        self.results_fd = results_fd
        self.reap_all = reap_all

    def emit(self, **event):
        data = (json.dumps(event, ensure_ascii=True) + "\n").encode()
        while data:
            written = os.write(self.results_fd, data)
            data = data[written:]

    def run(self, job):
        self.output_cap = int(job.get("output_cap", 65536))
        self.code = job["code"]
        try:
            self.compiled = compile(self.code, "main.py", "exec", dont_inherit=True)
        except SyntaxError as error:
            self.emit(event="syntax_error", line=error.lineno, message=describe(error))
            self.emit(event="done")
            return
        except (ValueError, MemoryError, RecursionError) as error:  # null bytes, absurd nesting
            self.emit(event="syntax_error", line=None, message=describe(error))
            self.emit(event="done")
            return
        self.emit(event="started")
        tests = job["tests"]
        calls = [(i, t) for i, t in enumerate(tests) if "call" in t]
        if calls:
            self.run_calls(calls)
        for index, test in enumerate(tests):
            if "call" not in test:
                self.run_program(index, test.get("stdin") or "")
        self.emit(event="done")

    # --- children ------------------------------------------------------------------------------

    def spawn(self, body, stdin_data=None, with_values=False):
        """Fork a child that runs `body(values_fd)` with fresh stdio; returns (pid, fds by name)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        val_r, val_w = os.pipe() if with_values else (None, None)
        stdin_fd = os.memfd_create("stdin") if stdin_data is not None else os.open(os.devnull, os.O_RDONLY)
        if stdin_data is not None:
            encoded = stdin_data.encode()
            while encoded:
                encoded = encoded[os.write(stdin_fd, encoded) :]
            os.lseek(stdin_fd, 0, os.SEEK_SET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                os.setsid()
                # The results channel and every pipe read end go before any user code runs.
                os.close(self.results_fd)
                for fd in (out_r, err_r, val_r):
                    if fd is not None:
                        os.close(fd)
                os.dup2(stdin_fd, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                for fd in (stdin_fd, out_w, err_w):
                    os.close(fd)
                sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
                status = body(val_w) or 0
            except BaseException:
                status = 70
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                except BaseException:  # noqa: S110
                    pass
                os._exit(status)
        for fd in (out_w, err_w, val_w, stdin_fd):
            if fd is not None:
                os.close(fd)
        return pid, {"stdout": out_r, "stderr": err_r, "values": val_r}

    def collect(self, pid, fds, on_value_line=None):
        """Read a child's pipes until it exits and its leftovers are killed; caps every stream.

        Complete lines of the values pipe go to `on_value_line` as they arrive, so results reach the
        server before a later test hangs."""
        pending = bytearray()
        caps = {"stdout": self.output_cap, "stderr": self.output_cap, "values": MAX_VALUE_LINE * 64}
        data = {name: bytearray() for name in fds}
        truncated = False
        selector = selectors.DefaultSelector()
        for name, fd in fds.items():
            if fd is not None:
                selector.register(fd, selectors.EVENT_READ, name)
        exited = False
        while selector.get_map():
            for key, _ in selector.select(CHILD_POLL_SECONDS):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    continue
                if key.data == "values" and on_value_line is not None:
                    pending += chunk
                    *lines, rest = bytes(pending).split(b"\n")
                    pending[:] = rest if len(rest) <= MAX_VALUE_LINE else b""
                    for line in lines:
                        on_value_line(line)
                    continue
                buffer = data[key.data]
                room = caps[key.data] - len(buffer)
                buffer += chunk[: max(room, 0)]
                if len(chunk) > room:
                    # Output past the cap: stop the child now rather than read an endless print loop.
                    truncated = True
                    exited = self.kill_leftovers(pid) or exited
            if not exited:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    exited = True
                    # A grandchild may still hold the pipes open (or run on after its parent): kill it.
                    self.kill_leftovers(pid)
        selector.close()
        if not exited:
            # Every pipe is closed but the child still runs (it closed its stdio): wait for it (the
            # server's timeout bounds this), then kill whatever it left behind.
            os.waitpid(pid, 0)
            self.kill_leftovers(pid)
        return {name: bytes(value) for name, value in data.items()}, truncated

    def kill_leftovers(self, pid):
        """Kill the child's whole tree; True when the child itself was reaped here."""
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        if not self.reap_all or os.getuid() == 0:  # never as root: kill(-1) would reach the whole host
            return False
        # Our uid is ours alone for this run (or we are in our own PID namespace): kill(-1) reaches every
        # process of it but us, whatever session or process group a grandchild moved to. Then reap them
        # all (the child and adopted orphans) so the uid's process count is back to one.
        with contextlib.suppress(OSError):
            os.kill(-1, signal.SIGKILL)
        reaped = False
        with contextlib.suppress(ChildProcessError):
            while True:
                reaped = os.waitpid(-1, 0)[0] == pid or reaped
        return reaped

    # --- call tests ----------------------------------------------------------------------------

    def run_calls(self, calls):
        compiled = self.compiled

        def body(values_fd):
            namespace = {"__name__": "solution", "__builtins__": builtins}
            module = types.ModuleType("solution")
            module.__dict__.update(namespace)
            sys.modules["solution"] = module
            sys.argv = ["main.py"]
            lines = []
            try:
                exec(compiled, module.__dict__)  # noqa: S102 - running the submission is the point
            except BaseException as error:
                print_traceback()
                lines.append({"event": "import_error", "message": describe(error)})
                write_lines(values_fd, lines)
                return 0
            for index, test in calls:
                scope = dict(module.__dict__)
                started = time.perf_counter()
                try:
                    if test.get("setup"):
                        exec(test["setup"], scope)  # noqa: S102
                    value = eval(test["call"], scope)  # noqa: S307
                    event = {"event": "call", "index": index, "value": encode(value), "error": None}
                except ValueTooLarge:
                    event = {"event": "call", "index": index, "value": None, "error": VALUE_TOO_LARGE}
                except BaseException as error:
                    event = {"event": "call", "index": index, "value": None, "error": describe(error)}
                event["ms"] = round((time.perf_counter() - started) * 1000, 3)
                # One write per test: results arrive as they happen, so a later timeout keeps them.
                write_lines(values_fd, [event])
            return 0

        seen = set()
        call_indexes = {index for index, _ in calls} | {"import"}

        def forward(line):
            # The child is untrusted: pass on only well-formed events, each test at most once.
            if not line or len(line) > MAX_VALUE_LINE:
                return
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):
                return
            if not isinstance(event, dict) or event.get("event") not in ("call", "import_error"):
                return
            key = event.get("index", "import")
            if key not in call_indexes or key in seen:
                return
            seen.add(key)
            self.emit(**{k: event[k] for k in ("event", "index", "value", "error", "message", "ms") if k in event})

        pid, fds = self.spawn(body, with_values=True)
        data, _ = self.collect(pid, fds, on_value_line=forward)
        self.emit_output(data)

    # --- program tests -------------------------------------------------------------------------

    def run_program(self, index, stdin_data):
        compiled = self.compiled

        def body(_values_fd):
            module = types.ModuleType("__main__")
            module.__dict__["__builtins__"] = builtins
            module.__dict__["__file__"] = "main.py"
            sys.modules["__main__"] = module
            sys.argv = ["main.py"]
            try:
                exec(compiled, module.__dict__)  # noqa: S102
            except SystemExit as stop:
                code = stop.code
                if code is None or code == 0:
                    return 0
                if not isinstance(code, int):
                    print(code, file=sys.stderr)
                    return 1
                return code
            except BaseException:
                print_traceback()
                return 1
            return 0

        started = time.perf_counter()
        pid, fds = self.spawn(body, stdin_data=stdin_data)
        data, truncated = self.collect(pid, fds)
        stderr = data["stderr"].decode("utf-8", "replace")
        error = None
        if truncated:
            error = "output limit exceeded"
        elif stderr.strip() and "Traceback (most recent call last)" in stderr:
            error = stderr.strip().splitlines()[-1]
        self.emit(
            event="program",
            index=index,
            stdout=data["stdout"].decode("utf-8", "replace"),
            error=error,
            truncated=truncated,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
        self.emit_output(data)

    def emit_output(self, data):
        self.emit(
            event="output",
            stdout=data["stdout"].decode("utf-8", "replace"),
            stderr=data["stderr"].decode("utf-8", "replace"),
        )


def write_lines(fd, events):
    for event in events:
        data = (json.dumps(event, ensure_ascii=True) + "\n").encode()
        if len(data) > MAX_VALUE_LINE:
            event = {**event, "value": None, "error": VALUE_TOO_LARGE}
            data = (json.dumps(event, ensure_ascii=True) + "\n").encode()
        while data:
            data = data[os.write(fd, data) :]


def main():
    protect_self()
    args = sys.argv[1:]
    results_fd = int(args[args.index("--results-fd") + 1]) if "--results-fd" in args else 1
    if results_fd == 1:
        # Piston: our stdout is the channel; keep it away from fd 1 so no child inherits it.
        results_fd = os.dup(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    job = json.loads(read_all(0))
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    Harness(results_fd, reap_all="--reap-all" in args).run(job)


if __name__ == "__main__":
    main()
