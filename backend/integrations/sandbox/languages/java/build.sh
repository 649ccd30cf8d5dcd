# Compiles a Java job in the sandbox (the runner's compile step, languages/toolchains.py). `build.sh JAVAC
# prepare` compiles the harness (codementor.Main) into /out/harness once per runner, and records the
# classes javac loads in a CDS archive (/out/javac.jsa) that every later javac maps instead of loading
# them again (~25% of its CPU time). `build.sh JAVAC` compiles the submission into /out/solution and copies
# the harness's classes to /out/harness: the run's class path is harness, then solution, so a class of the
# submission cannot stand in for one of the harness's. javac runs with C1 only, one compiler thread, a
# serial GC and a bounded heap: it starts faster and fits the compile's address space. No submission code
# runs here (annotation processing is off).
#
# Several submissions at once (the catalog checks, tests/integrations/test_language_java.py): files named
# <package>.Solution.java, each declaring that package, compiled by one javac; the run's job names the
# package to test.
set -e
javac="$1"
mode="$2"
export MALLOC_ARENA_MAX=1  # glibc reserves 64 MiB of address space per thread's arena otherwise
set -- -J-XX:TieredStopAtLevel=1 -J-XX:CICompilerCount=1 -J-XX:+UseSerialGC -J-Xmx256m \
  -J-XX:MaxMetaspaceSize=128m -J-XX:CompressedClassSpaceSize=64m -J-XX:ReservedCodeCacheSize=32m \
  -J-XX:-UsePerfData -encoding UTF-8 -proc:none -implicit:none -Xmaxerrs 1
quiet="-nowarn -Xlint:none"
# The style part of a submission's grade: javac's own lint of it (warnings never stop the compile), kept in
# /out/style.out for the runner (compiled.py).
lint="-Xlint:rawtypes,unchecked,cast,empty,fallthrough,divzero,finally,static -Xmaxwarns 50"
if [ "$mode" = prepare ]; then
  exec "$javac" -J-XX:ArchiveClassesAtExit=/out/javac.jsa "$@" $quiet -d /out/harness Main.java
fi
if [ -r /job/prepared/javac.jsa ]; then
  set -- -J-XX:SharedArchiveFile=/job/prepared/javac.jsa -J-Xshare:auto "$@"
fi
if [ -e Solution.java ] && ! grep -q -e SuppressWarnings -e '\\u' Solution.java; then
  if "$javac" "$@" $lint -d /out/solution Solution.java 2> /tmp/javac.out; then
    cp /tmp/javac.out /out/style.out
  else
    cat /tmp/javac.out >&2
    exit 1
  fi
elif [ -e Solution.java ]; then
  # javac obeys `@SuppressWarnings` in the file it lints: a submission could declare its own lint clean
  # (docs/SECURITY.md). The classes come from the submission as written; the lint's findings come from a copy
  # (same lines) where the annotation, however written, names one of ours that javac does not obey
  # (lint_copy.py), except the `[unchecked]` ones: Java's generics need that suppression (a generic array
  # cannot be made without it), so those are the submission's own compile's. A copy that does not compile (a
  # class of that very name) cannot be vouched for: it scores as badly as style can.
  "$javac" "$@" $lint -d /out/solution Solution.java 2> /tmp/own.out || { cat /tmp/own.out >&2; exit 1; }
  mkdir -p /tmp/lint/classes
  /usr/bin/python3 -I -S lint_copy.py Solution.java /tmp/lint/Solution.java
  echo '@interface CodementorLintKept { String[] value(); }' >> /tmp/lint/Solution.java
  cd /tmp/lint
  warning='^Solution\.java:[0-9]*: warning: '
  if "$javac" "$@" $lint -d /tmp/lint/classes Solution.java 2> /tmp/copy.out; then
    { grep "$warning\[unchecked\]" /tmp/own.out || true; grep "$warning" /tmp/copy.out | grep -v "$warning\[unchecked\]" || true; } |
      sort -t: -k2,2n -s > /tmp/javac.out
  else
    sed -n 's/^Solution\.java:\([0-9]*\): error: \(.*\)$/Solution.java:\1: warning: [lint] \2/p' /tmp/copy.out > /tmp/errors.out
    for _ in 1 2 3 4 5; do
      echo "Solution.java:1: warning: [lint] this file cannot be linted with its @SuppressWarnings set aside" >> /tmp/errors.out
    done
    head -n 5 /tmp/errors.out > /tmp/javac.out
  fi
  cp /tmp/javac.out /out/style.out
  cd /job
else
  for file in *.Solution.java; do
    mkdir -p "/tmp/src/${file%.Solution.java}"
    cp "$file" "/tmp/src/${file%.Solution.java}/Solution.java"
  done
  "$javac" "$@" $quiet -d /out/solution /tmp/src/*/Solution.java
fi
exec cp -R /job/prepared/harness /out/harness
