# --- the harness: trusted, never runs user code --------------------------------------------------------
"""The harness's side of a child interpreter: starting it on fresh descriptors, serving its pipes (commands
out, values and output in, every stream capped), output attributed to the running test, leftovers killed.
Part of the harness (see child.py's docstring); a child is given the part above this module's first line
(`child_program`: precompiled by the runner as child.pyc, else as source), never the harness's."""

import marshal
import os
import sys

if __package__:  # in the repository; in the sandbox the parts are one file and these are defined above
    from backend.integrations.sandbox.harness.child import (
        CHILD_POLL_SECONDS,
        COMMANDS_FD,
        MAX_VALUE_LINE,
        OUTPUT_FLUSH_CHARS,
        SIGKILL,
        VALUES_FD,
        to_json,
    )


F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032  # on Linux; fcntl names them only since Python 3.10


def protect_self():
    """PR_SET_DUMPABLE=0: other processes of our uid (the user's code) can no longer ptrace us, read our
    memory or reopen our file descriptors through /proc. PR_SET_CHILD_SUBREAPER: orphaned grandchildren
    become ours, so we can reap them and the uid's process count drops before the next run.
    Through `_ctypes`, the C module under ctypes: `import ctypes` and CDLL(None) cost ~4-5 ms of CPU of every
    start; ctypes is the fallback (a C library other than glibc). Best effort where neither is available."""
    try:
        prctl = c_function("prctl")
    except Exception:
        try:
            import ctypes

            prctl = ctypes.CDLL(None).prctl
        except Exception:  # a minimal image without libffi still grades correctly
            return
    prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def c_function(name):
    """glibc's function `name`, taking and returning C ints. Found in libc.so.6, which is loaded already
    (RTLD_NOLOAD: nothing is searched for, the sandbox has no ld.so.cache), not through dlopen(NULL) as
    ctypes.CDLL(None) does: _ctypes always adds RTLD_NOW, which for the interpreter itself binds every
    one of its lazy symbols (~2 ms)."""
    import _ctypes

    class Int(_ctypes._SimpleCData):
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = Int

    return Function(_ctypes.dlsym(_ctypes.dlopen("libc.so.6", os.RTLD_NOW | os.RTLD_NOLOAD), name))


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
    """The child's program, from the harness's file (when the harness runs from source)."""
    with open(path, encoding="utf-8") as file:
        return child_program(file.read())


def child_program(source):
    """The child's program: the harness's source up to its own part (child.py's source, a third of the
    whole: less to load at every start, and nothing of the harness's code in the child), then its call."""
    return source[source.index("import builtins") : source.index("# " + "--- the harness")] + (
        "\nchild_main(sys.argv[1])\n"
    )


class InputTooLarge(Exception):
    """A program test's stdin is larger than a pipe can hold."""


def input_pipe(text):
    """The read end of a pipe that already holds all of `text` (its write end closed): a program test's
    stdin. Not a memfd: the sandbox refuses memfd_create, whose files no memory cap bounds. The pipe is
    grown to fit (F_SETPIPE_SZ, up to /proc/sys/fs/pipe-max-size: 1 MiB by default, while an exercise's
    stdin is at most 50,000 characters); InputTooLarge if it cannot hold the data."""
    import fcntl

    data = text.encode("utf-8", "surrogatepass")
    read_fd, write_fd = os.pipe()
    try:
        if len(data) > fcntl.fcntl(write_fd, F_GETPIPE_SZ):
            try:  # noqa: SIM105 - contextlib would cost ~2 ms of every start
                fcntl.fcntl(write_fd, F_SETPIPE_SZ, len(data))
            except OSError:  # over pipe-max-size, or the uid's pipe-user-pages-soft
                pass
        os.set_blocking(write_fd, False)
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
    except BlockingIOError:
        os.close(read_fd)
        raise InputTooLarge(
            f"the test's input ({len(data)} bytes) is larger than the sandbox's stdin pipe can hold "
            f"({fcntl.fcntl(write_fd, F_GETPIPE_SZ)} bytes)"
        ) from None
    finally:
        os.close(write_fd)
    return read_fd


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
        text = text.decode("utf-8") if isinstance(text, bytes) else text  # `end` counts characters
        try:
            value, end = scan(text, 0)
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
        self.status = None  # the wait status once reaped here (not when killed for its output)
        self.poller = select.poll()
        self.names = {}  # polled descriptor → "stdout" / "stderr" / "values" / "commands"
        for name, fd in fds.items():
            if fd is not None:
                self.poller.register(fd, select.POLLIN)
                self.names[fd] = name

    def send(self, message, as_json=False):
        data = (to_json(message) + "\n").encode() if as_json else marshal.dumps(message)
        self.outbox += len(data).to_bytes(4, "big") + data

    def readers(self):
        return [fd for fd in self.fds.values() if fd is not None]


class Supervisor:
    """Children and the result channel; `Harness` (main.py) decides what runs in them."""

    def __init__(self, results_fd, reap_all, path):
        self.results_fd = results_fd
        self.reap_all = reap_all
        self.path = path
        self.child_file = None  # the child's precompiled program, when there is one (else child_program)
        self.child_program = None
        self.loads = make_loads()
        self.current = None  # the test user code is running; None while the submission is imported
        self.output = {"stdout": [], "stderr": []}  # decoded, not reported yet
        self.output_size = 0

    def child_argv(self, mode):
        """A fresh interpreter of ours running the child's part of this file: the runner's precompiled
        child.pyc next to a precompiled harness, else its source (main.py's Harness may run another
        language's child instead)."""
        if self.child_file is not None:
            return [sys.executable, "-I", "-S", self.child_file, mode]
        return [sys.executable, "-I", "-S", "-c", self.child_program, mode]

    def emit(self, **event):
        data = (to_json(event) + "\n").encode()
        while data:
            data = data[os.write(self.results_fd, data) :]

    def spawn(self, mode, stdin_data=None):
        """Fork, and exec a fresh interpreter running the child's program on descriptors 0-4 only.
        InputTooLarge (before anything is started) when `stdin_data` does not fit in a pipe."""
        import fcntl

        stdin_fd = os.open(os.devnull, os.O_RDONLY) if stdin_data is None else input_pipe(stdin_data)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cmd_r, cmd_w = os.pipe()
        val_r, val_w = os.pipe() if mode != "program" else (None, None)
        argv = self.child_argv(mode)
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
                os.execv(argv[0], argv)  # noqa: S606 - our own interpreter and program (or node and its own)
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
            if not exited and (reaped := os.waitpid(child.pid, os.WNOHANG))[0]:
                exited, child.status = True, reaped[1]
                # A grandchild may still hold the pipes open (or run on after its parent): kill it.
                self.kill_leftovers(child.pid)
        self.close_commands(child)
        if not exited:
            # Every pipe is closed but the child still runs (it closed its stdio): wait for it (the
            # server's timeout bounds this), then kill whatever it left behind.
            child.status = os.waitpid(child.pid, 0)[1]
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
