"""The grading harness: the trusted program that runs *inside* the sandbox (not imported by the server).

It is copied next to the submission and started as `python3 -I -S harness.py [--results-fd N] [--reap-all]`
with the job on stdin: `{"code": str, "tests": [{"setup", "call"} | {"stdin"}], "output_cap": int}`. The
job never contains an expected value: the server compares outputs with expectations itself.

The harness never runs user code in its own process, nor in a fork of it (a fork would inherit the job:
walking `sys._getframe()` up would find every test). It makes itself non-dumpable (processes of the same
uid cannot ptrace it, read its memory or open `/proc/<pid>/fd/*`) and a child subreaper, closes every
descriptor but stdio and the result channel, and compiles the submission (a syntax error is reported with
its line). User code then runs in a freshly exec'd interpreter, this same file started as
`python3 -I -S harness.py --child call|program`, which holds descriptors 0-2 (stdin, and pipes for stdout
and stderr) and, for call tests, 3 (commands in) and 4 (values out); nothing else, no job, no result
channel. One child runs all call tests: it gets the compiled submission, imports it once, then receives
one test at a time, each only after the previous one reported, so it never holds a test it is not
running. Each program test gets a child of its own. After a child exits, everything else it left running
is killed and reaped (`kill(-1)` when the harness has a uid of its own or a PID namespace, else the
child's process group), so a detached grandchild cannot outlive its test. Under bubblewrap the harness is
the PID namespace's init (`--as-pid-1`), which nothing inside the namespace can signal.

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


# --- the harness: trusted, never runs user code --------------------------------------------------------
# The child interpreter is given the source above this line (`child_source`), not the whole file.


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


def max_fd():
    return os.sysconf("SC_OPEN_MAX") if "SC_OPEN_MAX" in os.sysconf_names else 1024


def child_source(path):
    """The child's program: this file up to the harness's part (a third of the compile time)."""
    with open(path, encoding="utf-8") as file:
        source = file.read()
    return source[source.index("import builtins") : source.index("# " + "--- the harness")] + (
        "\nchild_main(sys.argv[1])\n"
    )


def make_loads():
    """json.loads through json's C scanner, without importing `json` itself; ValueError if malformed."""
    try:
        from _json import make_scanner

        class Context:
            strict, object_hook, object_pairs_hook, memo = True, None, None, {}
            parse_float, parse_int = float, int

            @staticmethod
            def parse_constant(name):
                raise ValueError(name)  # NaN and Infinity are not JSON

        scan = make_scanner(Context())
    except ImportError:
        import json

        return json.loads

    def loads(text):
        try:
            value, end = scan(text.decode("utf-8") if isinstance(text, bytes) else text, 0)
        except (StopIteration, RecursionError, TypeError) as error:
            raise ValueError("not JSON") from error
        if text[end:].strip():
            raise ValueError("not JSON: extra data")
        return value

    return loads


class Child:
    """One exec'd child interpreter, seen from the harness: its pid and the harness's ends of its pipes."""

    def __init__(self, pid, fds, commands_fd):
        import codecs
        import select

        self.pid = pid
        self.fds = fds  # "stdout" / "stderr" / "values" → read end, None once closed
        self.commands_fd = commands_fd  # write end of the command pipe, None once closed
        self.outbox = bytearray()
        self.closing = False  # close the command pipe once the outbox is written: no more tests
        self.data = {"stdout": bytearray(), "stderr": bytearray()}  # kept up to the cap, for grading
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in self.data}
        self.truncated = False
        self.poller = select.poll()
        self.names = {}  # polled descriptor → "stdout" / "stderr" / "values" / "commands"
        for name, fd in fds.items():
            if fd is not None:
                self.poller.register(fd, select.POLLIN)
                self.names[fd] = name

    def send(self, message):
        data = marshal.dumps(message)
        self.outbox += len(data).to_bytes(4, "big") + data

    def readers(self):
        return [fd for fd in self.fds.values() if fd is not None]


class Harness:
    def __init__(self, results_fd, reap_all, path):
        self.results_fd = results_fd
        self.reap_all = reap_all
        self.path = path
        self.loads = make_loads()
        self.current = None  # the test user code is running; None while the submission is imported
        self.output = {"stdout": [], "stderr": []}  # decoded, not reported yet
        self.output_size = 0

    def emit(self, **event):
        data = (to_json(event) + "\n").encode()
        while data:
            data = data[os.write(self.results_fd, data) :]

    def run(self, job_bytes):
        job = self.loads(job_bytes)
        self.output_cap = int(job.get("output_cap", 65536))
        try:
            self.compiled = compile(job["code"], "main.py", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, MemoryError, RecursionError) as error:  # also null bytes, nesting
            line = error.lineno if isinstance(error, SyntaxError) else None
            self.emit(event="syntax_error", line=line, message=describe(error))
            self.emit(event="done")
            return
        self.emit(event="started")
        self.child_program = child_source(self.path)
        tests = job["tests"]
        calls = [(index, test) for index, test in enumerate(tests) if "call" in test]
        if calls:
            self.run_calls(calls)
        for index, test in enumerate(tests):
            if "call" not in test:
                self.run_program(index, test.get("stdin") or "")
        self.emit(event="done")

    # --- children ------------------------------------------------------------------------------

    def spawn(self, mode, stdin_data=None):
        """Fork, and exec a fresh interpreter running the child's program on descriptors 0-4 only."""
        import fcntl

        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        val_r, val_w = os.pipe() if mode == "call" else (None, None)
        stdin_fd = os.memfd_create("stdin") if stdin_data is not None else os.open(os.devnull, os.O_RDONLY)
        if stdin_data is not None:
            encoded = stdin_data.encode("utf-8", "surrogatepass")
            while encoded:
                encoded = encoded[os.write(stdin_fd, encoded) :]
            os.lseek(stdin_fd, 0, os.SEEK_SET)
        argv = [sys.executable, "-I", "-S", "-c", self.child_program, mode]
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                places = [(stdin_fd, 0), (out_w, 1), (err_w, 2), (cmd_r, COMMANDS_FD), (val_w, VALUES_FD)]
                # Copies above 4 first, so no dup2 overwrites a descriptor that still has to move.
                moved = [(fcntl.fcntl(fd, fcntl.F_DUPFD, 5), target) for fd, target in places if fd is not None]
                for fd, target in moved:
                    os.dup2(fd, target)
                # The result channel and every other descriptor of ours go: the child holds 0-4, nothing else.
                os.closerange(VALUES_FD + 1, max_fd())
                os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and program
            finally:
                os._exit(127)
        for fd in (out_w, err_w, cmd_r, val_w, stdin_fd):
            if fd is not None:
                os.close(fd)
        for fd in (out_r, err_r, val_r, cmd_w):
            if fd is not None:
                os.set_blocking(fd, False)
        return Child(pid, {"stdout": out_r, "stderr": err_r, "values": val_r}, cmd_w)

    def collect(self, child, on_line=None):
        """Serve a child until it exits and its leftovers are killed: write its commands, read its pipes
        (every stream capped), hand each complete values line to `on_line` as it arrives (so results reach
        the server before a later test hangs)."""
        self.write_commands(child)
        pending = bytearray()
        exited = False
        while child.readers():
            ready = child.poller.poll(CHILD_POLL_SECONDS * 1000)
            if not ready:
                self.flush_output()  # the child paused: report what it printed so far
            for fd, _ in ready:
                name = child.names.get(fd)
                if name == "commands":
                    self.write_commands(child)
                    continue
                if name is None or not (chunk := self.read(child, name)):
                    continue  # closed meanwhile (by a drain in this round), or nothing yet
                if name == "values":
                    pending += chunk
                    *lines, rest = bytes(pending).split(b"\n")
                    pending[:] = rest if len(rest) <= MAX_VALUE_LINE else b""
                    for line in lines:
                        if on_line is not None and not child.truncated:
                            on_line(child, line)
                else:
                    exited = self.take_output(child, name, chunk) or exited
            if not exited and os.waitpid(child.pid, os.WNOHANG)[0]:
                exited = True
                # A grandchild may still hold the pipes open (or run on after its parent): kill it.
                self.kill_leftovers(child.pid)
        self.close_commands(child)
        if not exited:
            # Every pipe is closed but the child still runs (it closed its stdio): wait for it (the
            # server's timeout bounds this), then kill whatever it left behind.
            os.waitpid(child.pid, 0)
            self.kill_leftovers(child.pid)
        for name, decoder in child.decoders.items():
            self.add_output(name, decoder.decode(b"", True))
        self.flush_output()

    def read(self, child, name):
        """A chunk of the child's stream `name`; b"" (and the pipe closed) at its end, None if none yet."""
        fd = child.fds[name]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return None
        if not chunk:
            child.poller.unregister(fd)
            del child.names[fd]
            os.close(fd)
            child.fds[name] = None
        return chunk

    def drain(self, child):
        """Read what the child printed before its last result, so it is reported with the right test."""
        for name in ("stdout", "stderr"):
            while child.fds[name] is not None and (chunk := self.read(child, name)):
                self.take_output(child, name, chunk)

    def take_output(self, child, name, chunk):
        """Keep a chunk of output up to the cap; past it, the child is stopped. True if it was reaped."""
        kept = child.data[name]
        room = max(self.output_cap - len(kept), 0)
        kept += chunk[:room]
        self.add_output(name, child.decoders[name].decode(chunk[:room]))
        if len(chunk) <= room:
            return False
        # Output past the cap: stop the child now rather than read an endless print loop.
        child.truncated = True
        return self.kill_leftovers(child.pid)

    def add_output(self, name, text):
        if text:
            self.output[name].append(text)
            self.output_size += len(text)
            if self.output_size >= OUTPUT_FLUSH_CHARS:
                self.flush_output()

    def flush_output(self):
        if self.output_size:
            stdout, stderr = ("".join(self.output[name]) for name in ("stdout", "stderr"))
            self.output, self.output_size = {"stdout": [], "stderr": []}, 0
            self.emit(event="output", test=self.current, stdout=stdout, stderr=stderr)

    def begin(self, index):
        """From here on, whatever user code prints belongs to test `index`."""
        self.flush_output()
        self.current = index
        self.emit(event="begin", index=index)

    def write_commands(self, child):
        import select

        fd = child.commands_fd
        if fd is None:
            return
        try:
            while child.outbox:
                del child.outbox[: os.write(fd, child.outbox)]
        except BlockingIOError:
            pass
        except OSError:  # the child is gone (EPIPE): nothing more to say to it
            child.outbox.clear()
            child.closing = True
        if child.outbox and fd not in child.names:
            child.poller.register(fd, select.POLLOUT)
            child.names[fd] = "commands"
        elif not child.outbox and fd in child.names:
            child.poller.unregister(fd)
            del child.names[fd]
        if not child.outbox and child.closing:
            self.close_commands(child)

    def close_commands(self, child):
        fd = child.commands_fd
        if fd is not None:
            if fd in child.names:
                child.poller.unregister(fd)
                del child.names[fd]
            os.close(fd)
            child.commands_fd = None

    def kill_leftovers(self, pid):
        """Kill the child's whole tree; True when the child itself was reaped here."""
        try:  # noqa: SIM105 - contextlib would cost ~2 ms of every start
            os.killpg(pid, SIGKILL)
        except OSError:
            pass
        if not self.reap_all or os.getuid() == 0:  # never as root: kill(-1) would reach the whole host
            return False
        # Our uid is ours alone for this run (or we are in our own PID namespace): kill(-1) reaches every
        # process of it but us, whatever session or process group a grandchild moved to. Then reap them
        # all (the child and adopted orphans) so the uid's process count is back to one.
        try:  # noqa: SIM105
            os.kill(-1, SIGKILL)
        except OSError:
            pass
        reaped = False
        try:
            while True:
                reaped = os.waitpid(-1, 0)[0] == pid or reaped
        except ChildProcessError:
            pass
        return reaped

    # --- call tests ----------------------------------------------------------------------------

    def run_calls(self, calls):
        queue = list(reversed(calls))
        state = {"imported": False, "answered": False}

        def next_test(child):
            if queue:
                index, test = queue.pop()
                self.begin(index)
                state["answered"] = False
                child.send((index, str(test.get("setup") or ""), str(test["call"])))
            else:
                child.closing = True  # end of the commands: the child exits
            self.write_commands(child)

        def on_line(child, line):
            # The child is untrusted: pass on only well-formed events, for the test it is running, once.
            try:
                event = self.loads(line)
            except ValueError:
                return
            kind = event.get("event") if isinstance(event, dict) else None
            if not state["imported"]:
                if kind in ("imported", "import_error"):
                    state["imported"] = True
                    self.drain(child)
                    if kind == "import_error":
                        self.emit(event="import_error", message=str(event.get("message")))
                        queue.clear()
                    next_test(child)
                return
            if kind != "call" or event.get("index") != self.current or state["answered"]:
                return
            state["answered"] = True
            self.drain(child)
            self.flush_output()
            error, exception = event.get("error"), event.get("exception")
            result = {"event": "call", "index": self.current, "value": event.get("value")}
            result |= {"error": error if isinstance(error, str) else None}
            result |= {"exception": exception if isinstance(exception, str) else None}
            result |= {"ms": event["ms"] if type(event.get("ms")) in (int, float) else None}
            try:
                self.emit(**result)
            except RecursionError:  # a forged value nested deeper than we can write
                self.emit(**(result | {"value": None, "error": VALUE_TOO_LARGE}))
            next_test(child)

        child = self.spawn("call")
        child.send(self.compiled)
        self.collect(child, on_line)
        if child.truncated:
            if not state["imported"]:
                self.emit(event="import_error", message=OUTPUT_LIMIT)
            elif not state["answered"]:
                self.emit(event="call", index=self.current, value=None, error=OUTPUT_LIMIT, exception=None)

    # --- program tests -------------------------------------------------------------------------

    def run_program(self, index, stdin_data):
        self.begin(index)
        started = time.perf_counter()
        child = self.spawn("program", stdin_data=stdin_data)
        child.send(self.compiled)
        child.closing = True
        self.collect(child)
        stderr = child.data["stderr"].decode("utf-8", "replace")
        error = None
        if child.truncated:
            error = OUTPUT_LIMIT
        elif stderr.strip() and "Traceback (most recent call last)" in stderr:
            error = stderr.strip().splitlines()[-1]
        self.emit(
            event="program",
            index=index,
            stdout=child.data["stdout"].decode("utf-8", "replace"),
            error=error,
            truncated=child.truncated,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )


def harness_main(args):
    protect_self()
    results_fd = int(args[args.index("--results-fd") + 1]) if "--results-fd" in args else 1
    if results_fd == 1:
        # Piston: our stdout is the channel; keep it away from fd 1 so no child inherits it.
        results_fd = os.dup(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    # Whatever else we were given (a server's listening socket, say) is closed before any user code runs.
    os.closerange(3, results_fd)
    os.closerange(results_fd + 1, max_fd())
    os.set_inheritable(results_fd, False)
    job = read_all(0)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    Harness(results_fd, "--reap-all" in args, os.path.abspath(__file__)).run(job)


def main():
    args = sys.argv[1:]
    if args[:1] == ["--child"]:
        child_main(args[1])
    else:
        harness_main(args)


if __name__ == "__main__":
    main()
