"""Java: the submission is `Solution.java`; the harness (Main.java, package codementor) finds what the cases
call by reflection, so nothing is generated per job.

Calls run public static methods of class `Solution` (or instance methods of a `new Solution()`), named in
camelCase (`second_largest` is `secondLargest`); a class exercise constructs the class its first op names
(`LRUCache`, a top-level class of Solution.java or one nested in Solution) and calls its methods; a program
test runs `Solution.main`. Main.java's header has the value conversions, build.sh the compile step, and
docs/LANGUAGES.md what students see.
"""

from __future__ import annotations

from backend.integrations.sandbox.languages.language import Language
from backend.integrations.sandbox.languages.toolchains import JAVA_HOME

JAVA = Language(
    "java",
    "Java",
    "java",
    source_file="Solution.java",
    version_command=(str(JAVA_HOME / "bin" / "javac"), "-version"),
)
