# Compiles a C++ job in the sandbox (the runner's compile step, languages/toolchains.py). No submission code
# runs here.
#
# `build.sh prepare` runs once per toolchain version, on the toolchain's files only: it precompiles
# sandbox.hpp (with the standard headers it includes), compiles the harness's JSON (value.cpp, with the
# conversions sandbox.hpp declares extern) and the child side (child.cpp), and links the parent harness
# (parent.cpp) into /out, two compilers at a time. `build.sh` compiles dispatch.cpp (which #includes
# solution.cpp) against the precompiled header into /out/program, next to a copy of the parent,
# /out/harness. The flags must be the same in both steps: GCC ignores a precompiled header built with
# other flags.
set -e
flags="-std=c++17 -O1 -pipe"
if [ "$1" = prepare ]; then
  cp sandbox.hpp /out/sandbox.hpp
  g++ $flags -x c++-header /out/sandbox.hpp -o /out/sandbox.hpp.gch &
  header=$!
  g++ $flags -c value.cpp -o /out/value.o &
  value=$!
  g++ $flags -c child.cpp -o /out/child.o
  wait $value
  g++ $flags -fuse-ld=gold parent.cpp /out/value.o -o /out/harness
  wait $header
  exit
fi
cp /job/prepared/harness /out/harness
# <sandbox.hpp> in dispatch.cpp, not "sandbox.hpp": the copy next to its precompiled form, not the one in /job.
g++ $flags -fuse-ld=gold -I/job/prepared -fdiagnostics-color=never -fno-diagnostics-show-caret \
  dispatch.cpp /job/prepared/child.o /job/prepared/value.o -o /out/program
# The style part of the grade: clang-format's diff of the submission, in the catalog's style (Google's, with
# 4-space indents and 120 columns: docs/LANGUAGES.md). An empty diff is a clean file; none at all (no
# clang-format on this host) is style not checked.
style='{BasedOnStyle: Google, IndentWidth: 4, ColumnLimit: 120, AccessModifierOffset: -4, AllowShortIfStatementsOnASingleLine: WithoutElse, AllowShortLoopsOnASingleLine: true, AllowShortFunctionsOnASingleLine: Inline}'
# clang-format obeys `// clang-format off` (and `/* clang-format off */`) in the file it formats: the check
# runs on a copy where those comments say something else (same lines, so the findings' lines stay true), or
# a submission could declare any layout clean (docs/SECURITY.md).
if [ -x /usr/bin/clang-format ] && sed 's/clang-format o/clang-format_o/g' solution.cpp > /tmp/checked.cpp &&
  /usr/bin/clang-format "--style=$style" /tmp/checked.cpp > /tmp/formatted.cpp; then
  status=0
  diff -u /tmp/checked.cpp /tmp/formatted.cpp > /tmp/style.diff || status=$?
  if [ "$status" -le 1 ]; then
    cp /tmp/style.diff /out/style.out
  fi
fi
