# Compiles a Go job in the sandbox (the runner's compile step, languages/toolchains.py). `build.sh TOOLS
# prepare` compiles the harness (package codementor/harness) into /out once per runner; `build.sh TOOLS`
# compiles the submission and dispatch.go as package main (dispatch.go last: its init runs after the
# submission's own) against that harness (in /job/prepared), links /out/prog and writes gofmt's diff of
# the submission to /out/style.out. The go command is not
# used: it needs a writable GOCACHE and checks the whole standard library for staleness on every build;
# GOROOT's precompiled archives are named in importcfg. No submission code runs here.
set -e
tools="$1"
if [ "$2" = prepare ]; then
  exec "$tools/compile" -p codementor/harness -complete -importcfg importcfg -o /out/harness.a harness_*.go
fi
"$tools/compile" -p main -complete -importcfg importcfg -o /tmp/main.a solution.go dispatch.go
"$tools/link" -importcfg importcfg -s -w -o /out/prog /tmp/main.a
# The style part of the grade: how gofmt would reformat the submission (the runner reads the diff's hunks,
# compiled.py). Only a program that compiled gets here, so gofmt can parse it; an empty diff is a clean
# file, and no diff at all (gofmt failed) is style not checked.
if "$tools/../../../bin/gofmt" -d solution.go > /tmp/style.diff; then
  cp /tmp/style.diff /out/style.out
fi
