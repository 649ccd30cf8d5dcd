# Compiles a C++ job in the sandbox (the runner's compile step, languages/toolchains.py). `build.sh prepare`
# runs once per runner: it precompiles sandbox.hpp (with the standard headers it includes) and compiles the
# harness, with the conversions and containers sandbox.hpp declares extern, into /out. `build.sh` compiles
# dispatch.cpp (which #includes solution.cpp) against that header, links it with the harness: /out/program.
# The flags must be the same in both (GCC ignores a precompiled header built with other flags).
# No submission code runs here.
set -e
flags="-std=c++17 -O1 -pipe"
if [ "$1" = prepare ]; then
  cp sandbox.hpp /out/sandbox.hpp
  g++ $flags -x c++-header /out/sandbox.hpp -o /out/sandbox.hpp.gch &
  g++ $flags -I/out -c harness.cpp -o /out/harness.o
  wait $!
  exit
fi
# <sandbox.hpp>, not "sandbox.hpp": the copy next to its precompiled form, not the one in /job.
exec g++ $flags -fuse-ld=gold -I/job/prepared -fdiagnostics-color=never -fno-diagnostics-show-caret \
  dispatch.cpp /job/prepared/harness.o -o /out/program
