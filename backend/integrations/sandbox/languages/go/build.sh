# Compiles a Go job in the sandbox (the runner's compile step, languages/toolchains.py). `build.sh TOOLS
# prepare` compiles the harness (package codementor/harness) into /out once per runner; `build.sh TOOLS`
# compiles the submission and dispatch.go as package main (dispatch.go last: its init runs after the
# submission's own) against that harness (in /job/prepared), then links /out/prog. The go command is not
# used: it needs a writable GOCACHE and checks the whole standard library for staleness on every build;
# GOROOT's precompiled archives are named in importcfg. No submission code runs here.
set -e
tools="$1"
if [ "$2" = prepare ]; then
  exec "$tools/compile" -p codementor/harness -complete -importcfg importcfg -o /out/harness.a harness_*.go
fi
"$tools/compile" -p main -complete -importcfg importcfg -o /tmp/main.a solution.go dispatch.go
exec "$tools/link" -importcfg importcfg -s -w -o /out/prog /tmp/main.a
