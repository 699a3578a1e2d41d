#!/bin/sh
# A stand-in for the kernel's sched_ext selftests runner that breaks in
# every way a real one can: it takes the runner's `-t FILTER` (substring)
# and `-s` (print the tests the filter leaves out, as skipped), prints the
# same blocks, and its tests pass, skip, fail, hang, crash, and take the
# kernel down (after which the last is never run).
filter=""
print_skipped=0
while [ $# -gt 0 ]; do
  case "$1" in
    -t) filter="$2"; shift 2 ;;
    -s) print_skipped=1; shift ;;
    *) shift ;;
  esac
done
n=0
for t in good skipper bad hang crash panic after_panic; do
  n=$((n + 1))
  preamble() {
    printf '===== START =====\nTEST: %s\nDESCRIPTION: the fixture test %s\nOUTPUT:\n' "$t" "$t"
  }
  case "$t" in
    *"$filter"*) ;;
    *)
      if [ "$print_skipped" = 1 ]; then
        preamble
        printf 'ok %d %s # SKIP\n=====  END  =====\n' "$n" "$t"
      fi
      continue
      ;;
  esac
  preamble
  case "$t" in
    good) echo "all fine"; echo "ok $n good # " ;;
    skipper) echo "ok $n skipper # SKIP" ;;
    bad) echo "ERR: bad.c:12: expected 1, got 2"; echo "not ok $n bad # " ;;
    hang) echo "about to hang"; sleep 100000 ;;
    crash) echo "about to crash"; kill -SEGV $$ ;;
    panic) echo "about to panic the kernel"; echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger; sleep 100000 ;;
    after_panic) echo "ok $n after_panic # " ;;
  esac
  echo "=====  END  ====="
done
