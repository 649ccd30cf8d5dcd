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
if [ -e Solution.java ]; then
  if "$javac" "$@" $lint -d /out/solution Solution.java 2> /tmp/javac.out; then
    cp /tmp/javac.out /out/style.out
  else
    cat /tmp/javac.out >&2
    exit 1
  fi
else
  for file in *.Solution.java; do
    mkdir -p "/tmp/src/${file%.Solution.java}"
    cp "$file" "/tmp/src/${file%.Solution.java}/Solution.java"
  done
  "$javac" "$@" $quiet -d /out/solution /tmp/src/*/Solution.java
fi
exec cp -R /job/prepared/harness /out/harness
