"""The harness's main part: reads the job, compiles the submission, runs the call tests one at a time in
one child and each program test in a child of its own, and reports events (see child.py's docstring)."""

import os
import sys
import time

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

    def run_program(self, index, stdin_data):
        self.begin(index)
        started = time.perf_counter()
        try:
            child = self.spawn("program", stdin_data=stdin_data)
        except InputTooLarge as too_large:
            self.emit(event="program", index=index, stdout="", error=str(too_large), truncated=False, ms=0.0)
            return
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


if __name__ == "__main__":
    harness_main(sys.argv[1:])
