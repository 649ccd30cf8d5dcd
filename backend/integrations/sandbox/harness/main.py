"""The harness's main part: reads the job, compiles the submission, runs the call tests one at a time in
one child and each program test in a child of its own, and reports events (see child.py's docstring).

With `--node NODE,FLAGS...` it supervises JavaScript the same way: the call child is node running
harness.js (which checks the syntax of main.js, imports it and answers one test at a time, each sent as
JSON after the same 4-byte length), each program test is node running main.js. So the submission's process
never holds a test it is not running nor the result channel, and this process, which holds the job, is
non-dumpable: node cannot make itself so, and any node process of the run could read another's memory.
With `--java JAVA,FLAGS...` the same for Java: the call child is the JVM running codementor.Main (compiled
with the submission by the runner, in /job/build), each program test is the JVM running Solution.main."""

import os
import sys
import time

CHILD_PYC = "child.pyc"  # the child's program, precompiled by the runner next to harness.pyc

if __package__:  # in the repository; in the sandbox the parts are one file and these are defined above
    from backend.integrations.sandbox.harness.child import OUTPUT_LIMIT, VALUE_TOO_LARGE, describe
    from backend.integrations.sandbox.harness.supervise import (
        InputTooLarge,
        Supervisor,
        child_source,
        max_fd,
        protect_self,
        read_all,
    )


class Harness(Supervisor):
    node = None  # the node command and its flags when the submission is JavaScript
    java = None  # the JVM and its flags when the submission is Java
    main_class = "Solution"  # Java: the program's class (in the job's `package`, when it names one)

    @property
    def python(self):
        return self.node is None and self.java is None

    def child_argv(self, mode):
        here = os.path.dirname(self.path)
        if self.java is not None:
            build = os.path.join(here, "build")
            if mode == "program":
                return [*self.java, "-cp", os.path.join(build, "solution"), self.main_class]
            classes = os.path.join(build, "harness") + ":" + os.path.join(build, "solution")
            return [*self.java, "-cp", classes, "codementor.Main", mode]
        if self.node is None:
            return super().child_argv(mode)
        if mode == "program":
            return [*self.node, os.path.join(here, "main.js")]
        return [*self.node, os.path.join(here, "harness.js"), mode]

    def is_call(self, test):
        return "call" in test if self.python else "stdin" not in test

    def run(self, job_bytes):
        job = self.loads(job_bytes)
        self.output_cap = int(job.get("output_cap", 65536))
        self.compiled = None  # JavaScript: the call (or check) child compiles it and reports a syntax error
        if self.java is not None and isinstance(job.get("package"), str) and job["package"]:
            self.main_class = job["package"] + ".Solution"  # several submissions compiled at once
        if self.python:
            try:
                self.compiled = compile(job["code"], "main.py", "exec", dont_inherit=True)
            except (SyntaxError, ValueError, MemoryError, RecursionError) as error:  # also null bytes, nesting
                line = error.lineno if isinstance(error, SyntaxError) else None
                self.emit(event="syntax_error", line=line, message=describe(error))
                self.emit(event="done")
                return
            if self.path.endswith(".pyc"):  # the runner precompiled us, and the child's program beside us
                self.child_file = os.path.join(os.path.dirname(self.path), CHILD_PYC)
            else:
                self.child_program = child_source(self.path)
        self.emit(event="started")
        tests = job["tests"]
        calls = [(index, test) for index, test in enumerate(tests) if self.is_call(test)]
        if (calls or self.node is not None) and not self.run_calls(calls, job):
            self.emit(event="done")  # a syntax error: nothing runs
            return
        for index, test in enumerate(tests):
            if not self.is_call(test):
                self.run_program(index, test.get("stdin") or "")
        self.emit(event="done")

    def run_calls(self, calls, job):
        """The call tests in one child; False when it found a syntax error (JavaScript)."""
        queue = list(reversed(calls))
        state = {"imported": False, "answered": False, "syntax_error": False}

        def next_test(child):
            if queue:
                index, test = queue.pop()
                self.begin(index)
                state["answered"] = False
                if self.python:
                    child.send((index, str(test.get("setup") or ""), str(test["call"])))
                else:
                    child.send([index, test], as_json=True)
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
                if kind in ("imported", "import_error") or (kind == "syntax_error" and self.node is not None):
                    state["imported"] = True
                    self.drain(child)
                    if kind == "import_error":
                        self.emit(event="import_error", message=str(event.get("message")))
                        queue.clear()
                    elif kind == "syntax_error":
                        line = event.get("line")
                        message = str(event.get("message"))
                        self.emit(event="syntax_error", line=line if type(line) is int else None, message=message)
                        state["syntax_error"] = True
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

        if self.python:
            child = self.spawn("call")
            child.send(self.compiled)
        else:  # without call tests, only the syntax check: importing a program would run it
            child = self.spawn("call" if calls else "check")
            setup = {"test_timeout_ms": int(job.get("test_timeout_ms") or 5000)}
            if self.java is not None:
                setup["package"] = str(job.get("package") or "")
            child.send(setup, as_json=True)
        self.collect(child, on_line)
        if child.truncated:
            if not state["imported"]:
                self.emit(event="import_error", message=OUTPUT_LIMIT)
            elif not state["answered"]:
                self.emit(event="call", index=self.current, value=None, error=OUTPUT_LIMIT, exception=None)
        return not state["syntax_error"]

    def run_program(self, index, stdin_data):
        self.begin(index)
        started = time.perf_counter()
        try:
            child = self.spawn("program", stdin_data=stdin_data)
        except InputTooLarge as too_large:
            self.emit(event="program", index=index, stdout="", error=str(too_large), truncated=False, ms=0.0)
            return
        if self.python:
            child.send(self.compiled)
        child.closing = True
        self.collect(child)
        stderr = child.data["stderr"].decode("utf-8", "replace")
        error = None
        if child.truncated:
            error = OUTPUT_LIMIT
        elif self.node is not None:
            error = node_error(stderr, child.status)
        elif self.java is not None:
            error = java_error(stderr, child.status)
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


def node_error(stderr, status):
    """A node program's failure: the first `Name: message` line of what it printed, or its exit status."""
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    if not code:
        return None
    for line in stderr.strip().split("\n"):
        head = line.split(":", 1)[0]
        if head.isidentifier() and (head.endswith("Error") or ": " in line):
            return line[:300]
    return f"exited with status {code}"


def java_error(stderr, status):
    """A Java program's failure: its uncaught exception (`Exception in thread "main" java.lang.X: message` is
    `X: message`), the JVM's own complaint (`Error: Main method not found...`), or its exit status."""
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    if not code:
        return None
    for line in stderr.strip().split("\n"):
        if line.startswith("Exception in thread ") and '" ' in line:
            name, _, message = line.split('" ', 1)[1].partition(":")
            return (name.rsplit(".", 1)[-1] + (":" + message if message else ""))[:300]
        if line.startswith("Error: "):
            return line[:300]
    return f"exited with status {code}"


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
    harness = Harness(results_fd, "--reap-all" in args, os.path.abspath(__file__))
    if "--node" in args:
        harness.node = args[args.index("--node") + 1].split(",")
    if "--java" in args:
        harness.java = args[args.index("--java") + 1].split(",")
    if harness.node is not None or harness.java is not None:
        for name in set(os.environ) - {"PATH", "HOME"}:  # Python's locale coercion added LC_CTYPE, say
            del os.environ[name]
    harness.run(job)


if __name__ == "__main__":
    harness_main(sys.argv[1:])
