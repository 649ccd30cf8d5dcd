// The compile run of a TypeScript job, inside the sandbox: type-check each source strictly with the pinned
// compiler (bound read-only at /opt/typescript) and report, per source key, either the emitted JavaScript
// or the first errors with their lines. Nothing of the submissions runs here (the compiler only reads them),
// so the server may cache what this reports by source hash. The style part of the grade comes from the same
// check: the compiler's unused-code diagnostics (noUnusedLocals, noUnusedParameters) are not errors here but
// the `style` findings of a compiled source.
// stdin: {"sources": {key: code}}. Events on the results fd (`--results-fd N`, default 3), one per line:
//   {"event": "started"} {"event": "compiled", "key", "output", "style"}
//   {"event": "compile_error", "key", "line", "message"} {"event": "done"}
"use strict";
const fs = require("fs");
const ts = require("/opt/typescript/lib/typescript.js");

const RESULTS_FD = process.argv.includes("--results-fd") ? Number(process.argv[process.argv.indexOf("--results-fd") + 1]) : 3;
const OPTIONS = {
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.CommonJS,
  lib: ["lib.es2022.d.ts"],
  types: [],
  skipLibCheck: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  outDir: "/tmp/out",
};
// What noUnusedLocals and noUnusedParameters add: "'x' is declared but its value is never read." and kin.
const UNUSED = new Set([6133, 6138, 6192, 6196, 6198, 6199, 6205]);
const MAX_REPORTED = 5;
const MAX_STYLE = 50;
const SOURCE = "/tmp/src/main.ts";
const DIRECTIVES = /@ts-(?=nocheck|ignore|expect-error)/gi; // pragmas are matched in any case

function emit(event) {
  fs.writeSync(RESULTS_FD, JSON.stringify(event) + "\n");
}

function main() {
  const { sources } = JSON.parse(fs.readFileSync(0, "utf8"));
  emit({ event: "started" });
  fs.mkdirSync("/tmp/src", { recursive: true });
  // One host for every source: the standard library's declarations are parsed once, not once per source.
  const host = ts.createCompilerHost(OPTIONS);
  const libCache = new Map();
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) => {
    if (name === SOURCE) return getSourceFile(name, version, onError, create);
    if (!libCache.has(name)) libCache.set(name, getSourceFile(name, version, onError, create));
    return libCache.get(name);
  };
  let oldProgram;
  const compile = (text) => {
    fs.writeFileSync(SOURCE, text);
    oldProgram = ts.createProgram([SOURCE, "/job/sandbox.d.ts"], OPTIONS, host, oldProgram);
    return oldProgram;
  };
  for (const [key, code] of Object.entries(sources)) {
    // The compiler obeys `@ts-nocheck`, `@ts-ignore` and `@ts-expect-error` in the file it checks: that
    // would hide every strict error and every style finding (docs/SECURITY.md). The check reads a copy where
    // they say something else (same length: every line and column stays); the JavaScript that runs is still
    // emitted from the submission as written.
    const checked = code.replace(DIRECTIVES, "@ts_");
    let program = compile(checked);
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
    const errors = diagnostics.filter((d) => !UNUSED.has(d.code));
    if (errors.length) {
      let line = null;
      const lines = errors.slice(0, MAX_REPORTED).map((d) => {
        const text = ts.flattenDiagnosticMessageText(d.messageText, " ");
        if (!d.file) return `error TS${d.code}: ${text}`;
        const at = d.file.getLineAndCharacterOfPosition(d.start || 0).line + 1;
        const name = d.file.fileName === SOURCE ? "main.ts" : d.file.fileName.split("/").pop();
        if (line === null && d.file.fileName === SOURCE) line = at;
        return `${name}:${at}: error TS${d.code}: ${text}`;
      });
      if (errors.length > MAX_REPORTED) lines.push(`... and ${errors.length - MAX_REPORTED} more`);
      emit({ event: "compile_error", key, line, message: lines.join("\n") });
      continue;
    }
    if (checked !== code) program = compile(code);
    let output = "";
    program.emit(program.getSourceFile(SOURCE), (name, text) => {
      if (name.endsWith(".js")) output = text;
    });
    const style = diagnostics
      .filter((d) => UNUSED.has(d.code) && d.file && d.file.fileName === SOURCE)
      .slice(0, MAX_STYLE)
      .map((d) => {
        const at = d.file.getLineAndCharacterOfPosition(d.start || 0).line + 1;
        return `line ${at}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
      });
    emit({ event: "compiled", key, output, style });
  }
  emit({ event: "done" });
}

main();
