"""Go: the submission is `solution.go` (package main); the API generates `dispatch.go` for each job.

dispatch.go maps every name the cases call to the submission's function: camelCase functions
(`second_largest` is `secondLargest`), and for a class exercise its constructor `new<Class>` (`newStack`),
whose result's exported methods are the operations (`is_empty` is `IsEmpty`: reflection reaches exported
methods only). It adds an empty `func main()` when the exercise has no program test and the submission
has none. The harness (the .go files here) and the compile step are described in parent.go and build.sh;
docs/LANGUAGES.md has the conventions students see.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from backend.content import neutral
from backend.integrations.sandbox.languages.language import Language

HAS_MAIN = re.compile(r"^func\s+main\s*\(\s*\)", re.MULTILINE)


@dataclass(frozen=True)
class GoLanguage(Language):
    source_file: str = "solution.go"

    def files(self, code: str, cases: list[dict]) -> dict[str, str]:
        return {self.source_file: code, "dispatch.go": dispatch(code, cases)}


def dispatch(code: str, cases: list[dict]) -> str:
    names = {neutral.function_name(case["function"], "go") for case in cases if "args" in case}
    names |= {"new" + json.loads(case["ops"])[0][0] for case in cases if "ops" in case}
    entries = "".join(f'\t\t"{name}": {name},\n' for name in sorted(names))
    needs_main = not HAS_MAIN.search(code) and not any("stdin" in case for case in cases)
    return (
        "package main\n\n"
        'import codementorHarness "codementor/harness"\n\n'
        "func init() {\n"
        f"\tcodementorHarness.Run(map[string]any{{\n{entries}\t}})\n"
        "}\n" + ("\nfunc main() {}\n" if needs_main else "")
    )


GO = GoLanguage("go", "Go", "go", version_command=("/usr/bin/go", "version"), version_pattern=r"go(\d+(?:\.\d+)+)")
