// The JavaScript call child: runs the submission for the Python harness (harness/main.py with `--node`),
// which is the trusted supervisor: it holds the job, is non-dumpable, and attributes what this process
// prints to the test it handed over. This process holds descriptors 0-4 only and never the result channel:
//   node harness.js call|check      (in the job dir, next to the submission `main.js`)
// Commands on fd 3, each a 4-byte big-endian length and JSON: first {"test_timeout_ms"}, then one
// [index, {"function", "args"} | {"ops"}] at a time, the next only after this one answered; EOF = no more.
// Answers on fd 4, one JSON object per line, in the Python child's shapes:
//   {"event": "syntax_error", "line", "message"} | {"event": "imported"} | {"event": "import_error", "message"}
//   {"event": "call", "index", "value": <tagged tree> | null, "error": str | null, "exception": str | null, "ms"}
// `check` only compiles (a program-only exercise: importing a program would run it). What the submission
// prints goes to fds 1 and 2 as it happens. Program tests never come here: the supervisor runs main.js.
// Calls run in a `vm` context of their own (a fresh global object) with a per-call time limit, so an endless
// loop costs one test, not the run. vm is not a security boundary: this process is all the submission can
// reach, and it holds only the tests already handed to it.
"use strict";
const fs = require("fs");
const vm = require("vm");

const COMMANDS_FD = 3;
const VALUES_FD = 4;
const MAX_VALUE_LINE = 256 * 1024; // bytes of one answer the supervisor accepts (child.py's MAX_VALUE_LINE)
const MAX_DEPTH = 64;
const MAX_ITEMS = 32768;
const MAX_ITERATED = 100000;
const BUILTIN_ERRORS = new Set(["Error", "TypeError", "RangeError", "ReferenceError", "SyntaxError", "EvalError", "URIError", "AggregateError"]);

function send(event) {
  let line = JSON.stringify(event) + "\n";
  if (Buffer.byteLength(line) > MAX_VALUE_LINE) {
    line = JSON.stringify({ ...event, value: null, error: "the returned value is too large to compare", exception: null }) + "\n";
  }
  fs.writeSync(VALUES_FD, line);
}

function readExactly(size) {
  const buffer = Buffer.alloc(size);
  let got = 0;
  while (got < size) {
    let read;
    try {
      read = fs.readSync(COMMANDS_FD, buffer, got, size - got, null);
    } catch (error) {
      if (error.code === "EAGAIN") continue; // the submission made the pipe non-blocking
      throw error;
    }
    if (read === 0) return null;
    got += read;
  }
  return buffer;
}

function receive() {
  const header = readExactly(4);
  const body = header === null ? null : readExactly(header.readUInt32BE(0));
  return body === null ? null : JSON.parse(body.toString("utf8"));
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

function write(fd, text) {
  let data = Buffer.from(text, "utf8");
  while (data.length) {
    try {
      data = data.subarray(fs.writeSync(fd, data));
    } catch (error) {
      if (error.code !== "EAGAIN") return; // the supervisor stopped reading (the output cap): it ends us
    }
  }
}

function makeConsole() {
  const format = (args) => args.map((a) => (typeof a === "string" ? a : safeInspect(a))).join(" ") + "\n";
  const out = (...args) => write(1, format(args));
  const err = (...args) => write(2, format(args));
  return { log: out, info: out, debug: out, warn: err, error: err, trace: err, dir: out, table: out };
}

function safeInspect(value) {
  try {
    return require("util").inspect(value, { depth: 4 });
  } catch (_) {
    return "[value]";
  }
}

function main(mode) {
  const setup = receive();
  const timeout = setup && Number.isInteger(setup.test_timeout_ms) ? setup.test_timeout_ms : 5000;
  let script;
  try {
    script = new vm.Script(fs.readFileSync("main.js", "utf8"), { filename: "main.js" });
  } catch (error) {
    send({ event: "syntax_error", line: syntaxLine(error), message: describe(error) });
    return;
  }
  if (mode === "check") {
    send({ event: "imported" });
    return;
  }
  // `module.exports` works as in a CommonJS file, though nothing needs to be exported.
  const module = { exports: {} };
  // `require` is node's own (the sandbox, not vm, is the boundary); `require.main === module` is false here,
  // so a file that is also runnable as a program does not start its main part when its functions are tested.
  const context = vm.createContext({ console: makeConsole(), module, exports: module.exports, require, process, Buffer });
  try {
    script.runInContext(context, { timeout });
  } catch (error) {
    send({ event: "import_error", message: describe(error) });
    return;
  }
  send({ event: "imported" });
  for (let command = receive(); command !== null; command = receive()) {
    const [index, test] = command;
    const started = process.hrtime.bigint();
    let event;
    try {
      const value = "ops" in test ? runOps(test.ops, context, timeout) : callFunction(test.function, test.args, context, timeout);
      event = { event: "call", index, value: encode(value), error: null, exception: null };
    } catch (error) {
      const message = error instanceof TooLarge ? "the returned value is too large to compare"
        : error && error.code === "ERR_SCRIPT_EXECUTION_TIMEOUT" ? "timed out"
        : describe(error);
      // Only a builtin error's name: a class of the submission's own could carry a hidden test's arguments.
      const name = error && typeof error === "object" ? error.name : null;
      event = { event: "call", index, value: null, error: message, exception: BUILTIN_ERRORS.has(name) ? name : null };
    }
    event.ms = Number(process.hrtime.bigint() - started) / 1e6;
    send(event);
    if (event.error === "timed out") return; // the rest would most likely loop too: the run is a timeout
  }
}

// The expression for a name a test uses: a global of the submission (a declaration, or a `let`, `const` or
// `class` of its script), else a property of `module.exports`. It is looked up, its arguments built from
// JSON inside the context (so arrays and objects belong to the submission's realm) and it is called, all in
// one script with the time limit: node starts a watchdog thread for every timed script (~0.1 ms of CPU).
function found(name, what) {
  const missing = JSON.stringify(`${name} is not defined as a ${what}`);
  return `(() => { const found = typeof ${name} === "undefined" ? (module.exports && typeof module.exports === "object" ? module.exports[${JSON.stringify(name)}] : undefined) : ${name};
    if (typeof found !== "function") throw new ReferenceError(${missing});
    return found; })()`;
}

function callFunction(name, args, context, timeout) {
  context.__args = JSON.stringify(args);
  try {
    return vm.runInContext(`${found(name, "function")}(...JSON.parse(__args))`, context, { timeout });
  } finally {
    delete context.__args;
  }
}

function runOps(ops, context, timeout) {
  const [className, ctorArgs] = ops[0];
  context.__json = JSON.stringify(ops.slice(1).map(([name, args]) => [name, args]));
  context.__ctor = JSON.stringify(ctorArgs);
  try {
    return vm.runInContext(
      `(() => { const o = new (${found(className, "class")})(...JSON.parse(__ctor)); const out = [null];
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
    delete context.__json;
    delete context.__ctor;
  }
}

main(process.argv[2]);
process.exit(0); // timers or handles the submission left behind must not keep the child alive
