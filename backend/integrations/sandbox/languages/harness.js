// The JavaScript grading harness: the trusted program that runs *inside* the sandbox (never on the server).
//
// Started as `node harness.js` in the job dir next to the submission (`main.js`; for TypeScript, the
// JavaScript its compile run emitted), with the job on stdin:
//   {"tests": [{"function": name, "args": [...]} | {"ops": [[name, [args...]], ...]} | {"stdin": str}],
//    "output_cap": int, "test_timeout_ms": int}
// The job never holds an expected value: the server compares what is reported here with the expectations.
// Events go to the descriptor given as `--results-fd N` (default 3), one JSON object per line, in the shapes the Python harness uses (base.Report):
//   {"event": "started"} | {"event": "syntax_error", "line", "message"} | {"event": "import_error", "message"}
//   {"event": "begin", "index"}                       test `index` is handed to the submission now
//   {"event": "output", "test": index | null, "stdout", "stderr"}   what that test (or the import) printed
//   {"event": "call", "index", "value": <tagged tree> | null, "error": str | null, "exception": str | null, "ms"}
//   {"event": "program", "index", "stdout", "error", "truncated", "ms"}
//   {"event": "done"}
// Output is attributed to its test, so the server shows what the visible examples printed and withholds
// what hidden tests printed.
// Calls run in a `vm` context of their own (a fresh global object) with a per-call time limit, so an endless
// loop costs one test, not the run; console output is captured per context. Programs run as child node
// processes, one per test, with that test's stdin. vm is not a security boundary: the sandbox around this
// process is (and a submission that reached the result channel could only claim values, never pass).
"use strict";
const fs = require("fs");
const vm = require("vm");
const childProcess = require("child_process");

const RESULTS_FD = process.argv.includes("--results-fd") ? Number(process.argv[process.argv.indexOf("--results-fd") + 1]) : 3;
const MAX_DEPTH = 64;
const MAX_ITEMS = 32768;
const MAX_ITERATED = 100000;
const BUILTIN_ERRORS = new Set(["Error", "TypeError", "RangeError", "ReferenceError", "SyntaxError", "EvalError", "URIError", "AggregateError"]);

function emit(event) {
  fs.writeSync(RESULTS_FD, JSON.stringify(event) + "\n");
}

class TooLarge extends Error {}

// A JSON tree of tagged values, as harness.py's `encode` makes them (decoded by base.decode on the server).
function encode(value, depth = 0, budget = { left: MAX_ITEMS }) {
  if (--budget.left < 0) throw new TooLarge();
  if (depth > MAX_DEPTH) return ["other", "too deeply nested"];
  if (value === null || value === undefined) return ["none"];
  switch (typeof value) {
    case "boolean":
      return ["bool", value];
    case "bigint":
      return ["int", value.toString()];
    case "number":
      if (Number.isInteger(value)) return ["int", BigInt(value).toString()];
      if (Number.isNaN(value)) return ["float", "nan"];
      if (!Number.isFinite(value)) return ["float", value > 0 ? "inf" : "-inf"];
      return ["float", String(value)];
    case "string":
      return ["str", value];
    case "function":
      return ["other", "a function"];
    case "symbol":
      return ["other", value.toString()];
  }
  if (Array.isArray(value)) return ["list", value.map((item) => encode(item, depth + 1, budget))];
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object Map]") {
    return ["dict", Array.from(value, ([k, v]) => [encode(k, depth + 1, budget), encode(v, depth + 1, budget)])];
  }
  if (tag === "[object Set]") return ["set", Array.from(value, (item) => encode(item, depth + 1, budget))];
  if (tag === "[object Generator]" || (typeof value.next === "function" && typeof value[Symbol.iterator] === "function")) {
    const items = [];
    for (const item of value) {
      if (items.length >= MAX_ITERATED) throw new TooLarge();
      items.push(encode(item, depth + 1, budget));
    }
    return ["list", items];
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === null || Object.getPrototypeOf(proto) === null) {
    // A plain object (from any realm): a dict with string keys.
    return ["dict", Object.keys(value).map((k) => [["str", k], encode(value[k], depth + 1, budget)])];
  }
  let text;
  try {
    text = String(value).slice(0, 200);
  } catch (error) {
    text = "an object";
  }
  return ["other", text];
}

function describe(error) {
  if (error && typeof error === "object" && "name" in error && "message" in error) {
    return error.message ? `${error.name}: ${error.message}` : String(error.name);
  }
  try {
    return `thrown: ${String(error)}`.slice(0, 300);
  } catch (_) {
    return "thrown: a value";
  }
}

function syntaxLine(error) {
  // "main.js:7" on the first line of the stack of a vm.Script SyntaxError.
  const match = /main\.js:(\d+)/.exec(String(error && error.stack));
  return match ? Number(match[1]) : null;
}

function capped(text, cap) {
  return text.length > cap ? text.slice(0, cap) : text;
}

function makeConsole(sink) {
  const format = (args) => args.map((a) => (typeof a === "string" ? a : safeInspect(a))).join(" ") + "\n";
  const out = (...args) => sink.write("stdout", format(args));
  const err = (...args) => sink.write("stderr", format(args));
  return { log: out, info: out, debug: out, warn: err, error: err, trace: err, dir: out, table: out };
}

function safeInspect(value) {
  try {
    return require("util").inspect(value, { depth: 4 });
  } catch (_) {
    return "[value]";
  }
}

function runCalls(job, script, calls) {
  const cap = job.output_cap;
  const sink = {
    stdout: "",
    stderr: "",
    write(stream, text) {
      this[stream] = capped(this[stream] + text, cap);
    },
  };
  // `module.exports` works as in a CommonJS file, though nothing needs to be exported.
  const module = { exports: {} };
  // `require` is node's own (the sandbox, not vm, is the boundary); `require.main === module` is false here,
  // so a file that is also runnable as a program does not start its main part when its functions are tested.
  const context = vm.createContext({ console: makeConsole(sink), module, exports: module.exports, require, process, Buffer });
  const timeout = job.test_timeout_ms;
  try {
    script.runInContext(context, { timeout });
  } catch (error) {
    emit({ event: "import_error", message: describe(error) });
    emit({ event: "output", test: null, stdout: sink.stdout, stderr: sink.stderr });
    return;
  }
  // What the import printed is the import's (shown to the student); from here on each test's own.
  const flush = (test) => {
    if (sink.stdout || sink.stderr) emit({ event: "output", test, stdout: sink.stdout, stderr: sink.stderr });
    sink.stdout = "";
    sink.stderr = "";
  };
  flush(null);
  const lookup = (name) => {
    const found = vm.runInContext(`typeof ${name} === "undefined" ? undefined : ${name}`, context, { timeout });
    const exported = context.module && context.module.exports;
    return found !== undefined ? found : exported && typeof exported === "object" ? exported[name] : undefined;
  };
  for (const [index, test] of calls) {
    emit({ event: "begin", index });
    const started = process.hrtime.bigint();
    let event;
    try {
      const value = "ops" in test ? runOps(test.ops, lookup, context, timeout) : callFunction(test.function, test.args, lookup, context, timeout);
      event = { event: "call", index, value: encode(value), error: null };
    } catch (error) {
      const message = error instanceof TooLarge ? "the returned value is too large to compare"
        : error && error.code === "ERR_SCRIPT_EXECUTION_TIMEOUT" ? "timed out"
        : describe(error);
      // Only a builtin error's name: a class of the submission's own could carry a hidden test's arguments.
      const name = error && typeof error === "object" ? error.name : null;
      event = { event: "call", index, value: null, error: message, exception: BUILTIN_ERRORS.has(name) ? name : null };
    }
    event.ms = Number(process.hrtime.bigint() - started) / 1e6;
    flush(index);
    emit(event);
    if (event.error === "timed out") break; // the rest would most likely loop too: the run is a timeout
  }
}

function callFunction(name, args, lookup, context, timeout) {
  const fn = lookup(name);
  if (typeof fn !== "function") throw new ReferenceError(`${name} is not defined as a function`);
  // Arguments are built inside the context from JSON, so arrays and objects belong to the submission's realm.
  context.__args = JSON.stringify(args);
  const native = vm.runInContext("JSON.parse(__args)", context, { timeout });
  delete context.__args;
  context.__fn = fn;
  context.__argv = native;
  try {
    return vm.runInContext("__fn(...__argv)", context, { timeout });
  } finally {
    delete context.__fn;
    delete context.__argv;
  }
}

function runOps(ops, lookup, context, timeout) {
  const [className, ctorArgs] = ops[0];
  const cls = lookup(className);
  if (typeof cls !== "function") throw new ReferenceError(`${className} is not defined as a class`);
  context.__cls = cls;
  context.__json = JSON.stringify(ops.slice(1).map(([name, args]) => [name, args]));
  context.__ctor = JSON.stringify(ctorArgs);
  try {
    return vm.runInContext(
      `(() => { const o = new __cls(...JSON.parse(__ctor)); const out = [null];
        for (const [name, args] of JSON.parse(__json)) {
          if (name === "__iter__") { out.push(Array.from(o)); continue; }
          if (typeof o[name] !== "function") throw new TypeError(name + " is not a method");
          out.push(o[name](...args));
        }
        return out; })()`,
      context,
      { timeout }
    );
  } finally {
    delete context.__cls;
    delete context.__json;
    delete context.__ctor;
  }
}

function runProgram(job, index, stdin) {
  emit({ event: "begin", index });
  const started = process.hrtime.bigint();
  const cap = job.output_cap;
  const result = childProcess.spawnSync(process.execPath, [...process.execArgv, job.source], {
    input: stdin,
    timeout: job.test_timeout_ms,
    maxBuffer: cap,
    killSignal: "SIGKILL",
    env: {},
  });
  const stdout = result.stdout ? result.stdout.toString("utf8") : "";
  const stderr = result.stderr ? result.stderr.toString("utf8") : "";
  let error = null;
  let truncated = false;
  if (result.error && result.error.code === "ENOBUFS") {
    truncated = true;
    error = "output limit exceeded";
  } else if (result.error && result.error.code === "ETIMEDOUT") {
    error = "timed out";
  } else if (result.status !== 0) {
    const lines = stderr.trim().split("\n").filter((line) => /^\w*Error\b|^\w+: /.test(line));
    error = lines.length ? lines[0].slice(0, 300) : `exited with status ${result.status ?? result.signal}`;
  }
  emit({ event: "program", index, stdout: capped(stdout, cap), error, truncated, ms: Number(process.hrtime.bigint() - started) / 1e6 });
  emit({ event: "output", test: index, stdout: capped(stdout, cap), stderr: capped(stderr, cap) });
}

function main({ source = "main.js" } = {}) {
  const job = JSON.parse(fs.readFileSync(0, "utf8"));
  job.source = source;
  const code = fs.readFileSync(source, "utf8");
  let script;
  try {
    script = new vm.Script(code, { filename: "main.js" });
  } catch (error) {
    emit({ event: "syntax_error", line: syntaxLine(error), message: describe(error) });
    emit({ event: "done" });
    return;
  }
  emit({ event: "started" });
  const calls = [];
  job.tests.forEach((test, index) => {
    if (!("stdin" in test)) calls.push([index, test]);
  });
  if (calls.length) runCalls(job, script, calls);
  job.tests.forEach((test, index) => {
    if ("stdin" in test) runProgram(job, index, test.stdin);
  });
  emit({ event: "done" });
}

main();
