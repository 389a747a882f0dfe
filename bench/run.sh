#!/bin/bash
# topo's benchmark, side by side with the peers (docs/performance.md says what each figure is).
#
# For each N, REPS times, interleaved in one run:
#   topo      `topo up` of `topo gen chain --nodes N` (timed, peak RSS), then while it is up the
#             PSS of the node init processes and the kernel memory it holds; a no-op `topo up`;
#             `topo up` after one link of the file changed (`state: down` on the middle link);
#             `topo down`
#   floor     peers/floor-chain.sh: the same namespaces and veths from one `ip -batch`
#   iproute2  peers/iproute2-chain.sh: one `ip` command per step    (N <= IPROUTE2_MAX_N)
#   mininet   peers/mininet-chain.py, when Mininet is installed        (N <= PEERS_MAX_N)
#   munet     peers/munet-chain.sh, when munet is installed            (N <= PEERS_MAX_N)
# then prints medians, ratios and each target of the performance contract (docs/performance.md,
# "The contract") as MET / NOT MET.
#
# usage: bench/run.sh [--quick] [--reps R] [N ...]     (as root; default N = 10 100 1000 5000 10000,
#        bench/run.sh --summarize RESULTS_FILE          --quick: 10 100 1000, R = 3)
# env:   GEN_ARGS="--bare"  extra `topo gen chain` options; --bare builds exactly what the
#                           peers build (links, /31s, forwarding): no loopbacks, no routes
#        IPROUTE2_MAX_N=1000  PEERS_MAX_N=100  (larger N skipped for those, with a note)
#        DRAIN_MAX=600: before each run wait up to DRAIN_MAX s for the kernel to finish
#                           freeing the network namespaces of the runs before (their count
#                           back to what it was when the bench started; 0: no wait)
#        SETTLE_MAX=10 (3 with --quick) SETTLE_IDLE=80: then wait up to
#                           SETTLE_MAX s for the CPUs to be SETTLE_IDLE % idle (0: no wait)
#        EXEC_PAIRS=101     runs each of `topo exec` and `nsenter -a` per lab, interleaved
#        TOPO=path          use this binary (and the topo-core next to it), do not build
#        OUT=file           raw results (default bench/results/run-DATE.txt)
#        MUNET_PYTHON=python3  the python that has munet (PATH must have its `mutini`)
# Leaves nothing behind: every lab and namespace is named bn<id>…, and an exit trap removes
# them, also after Ctrl-C.
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")

usage() { sed -n '/^# usage:/,/^# Leaves/p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "bench: $*" >&2; exit 2; }

# ---- the summary: medians, ratios, contract (also for an old results file) -------------
summarize() {
  awk '
  function num(v) { return v ~ /^-?([0-9]+|[0-9]*\.[0-9]+)$/ }
  function median(key,   a, n, i, j, t) {
    if (!(key in vals)) return "";
    n = split(vals[key], a, " ");
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2;
  }
  function m(tool, n, metric) { return median(tool SUBSEP n SUBSEP metric) }
  function f(v, fmt) { return v == "" ? "-" : sprintf(fmt, v) }
  function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "" : a / b }
  function verdict(ok, what, detail) {
    printf "%-16s %s: %s\n", ok ? "[MET]" : "[NOT MET]", what, detail; }
  function unmeasured(what, why) { printf "%-16s %s: %s\n", "[NOT MEASURED]", what, why }
  /^tool=/ {
    delete kv;
    for (i = 1; i <= NF; i++) { split($i, kvp, "="); kv[kvp[1]] = substr($i, length(kvp[1]) + 2) }
    t = kv["tool"]; n = kv["n"]; if (!(n in seen)) { seen[n] = 1; ns[++nn] = n + 0 }
    reps[t SUBSEP n]++;
    for (k in kv) {
      if (!num(kv[k]) || k == "n" || k == "rep") continue;
      key = t SUBSEP n SUBSEP k;
      vals[key] = (key in vals) ? vals[key] " " kv[k] : kv[k];
    }
  }
  END {
    for (i = 2; i <= nn; i++) { x = ns[i]; for (j = i - 1; j >= 1 && ns[j] > x; j--) ns[j + 1] = ns[j]; ns[j + 1] = x }
    print "";
    print "== time: medians in seconds (reps per N in the results file) ==";
    printf "%6s %8s %8s %8s %8s | %8s %8s %8s %8s | %10s %13s %12s %10s\n", "N", "topo up", "no-op", "1-link", "down",
      "floor up", "ip up", "mininet", "munet", "topo/floor", "iproute2/topo", "mininet/topo", "munet/topo";
    for (i = 1; i <= nn; i++) {
      n = ns[i]; up = m("topo", n, "up_s");
      printf "%6d %8s %8s %8s %8s | %8s %8s %8s %8s | %10s %13s %12s %10s\n", n,
        f(up, "%.3f"), f(m("topo", n, "noop_s"), "%.3f"), f(m("topo", n, "change_s"), "%.3f"), f(m("topo", n, "down_s"), "%.3f"),
        f(m("floor", n, "up_s"), "%.3f"), f(m("iproute2", n, "up_s"), "%.3f"), f(m("mininet", n, "up_s"), "%.3f"), f(m("munet", n, "up_s"), "%.3f"),
        f(ratio(up, m("floor", n, "up_s")), "%.2fx"), f(ratio(m("iproute2", n, "up_s"), up), "%.1fx"),
        f(ratio(m("mininet", n, "up_s"), up), "%.1fx"), f(ratio(m("munet", n, "up_s"), up), "%.1fx");
    }
    print "";
    print "== down: medians in seconds ==";
    printf "%6s %8s %8s %8s %8s %8s\n", "N", "topo", "floor", "iproute2", "mininet", "munet";
    for (i = 1; i <= nn; i++) {
      n = ns[i];
      printf "%6d %8s %8s %8s %8s %8s\n", n, f(m("topo", n, "down_s"), "%.3f"), f(m("floor", n, "down_s"), "%.3f"),
        f(m("iproute2", n, "down_s"), "%.3f"), f(m("mininet", n, "down_s"), "%.3f"), f(m("munet", n, "down_s"), "%.3f");
    }
    print "";
    print "== memory: medians, KiB (per node = total / N) ==";
    printf "%6s %12s %14s %15s %16s %14s\n", "N", "topo maxrss", "topo PSS/node", "topo kmem/node", "floor kmem/node", "1-link actions";
    for (i = 1; i <= nn; i++) {
      n = ns[i];
      printf "%6d %12s %14s %15s %16s %14s\n", n, f(m("topo", n, "maxrss_kb"), "%d"), f(m("topo", n, "pss_kb_per_node"), "%.0f"),
        f(m("topo", n, "kmem_kb_per_node"), "%.0f"), f(m("floor", n, "kmem_kb_per_node"), "%.0f"), f(m("topo", n, "change_actions"), "%d");
    }
    print "";
    print "== topo exec of /bin/true beside nsenter -a: medians, ms ==";
    printf "%6s %10s %10s\n", "N", "topo exec", "nsenter";
    for (i = 1; i <= nn; i++) {
      n = ns[i];
      printf "%6d %10s %10s\n", n, f(m("topo", n, "exec_ms"), "%.2f"), f(m("topo", n, "nsenter_ms"), "%.2f");
    }
    print "";
    print "== load: 1-minute load average at the start of each timed run ==";
    printf "%6s %8s %8s %8s %14s\n", "N", "min", "median", "max", "drain wait s";
    for (i = 1; i <= nn; i++) {
      n = ns[i]; lo = ""; hi = "";
      key = "topo" SUBSEP n SUBSEP "load1";
      if (key in vals) { k2 = split(vals[key], lv, " "); for (j = 1; j <= k2; j++) { if (lo == "" || lv[j] + 0 < lo) lo = lv[j] + 0; if (hi == "" || lv[j] + 0 > hi) hi = lv[j] + 0 } }
      printf "%6d %8s %8s %8s %14s\n", n, f(lo, "%.2f"), f(m("topo", n, "load1"), "%.2f"), f(hi, "%.2f"), f(m("topo", n, "drain_s"), "%.1f");
    }
    print "";
    print "== PID 1 of the machine: CPU seconds it used meanwhile (medians) ==";
    printf "%6s %12s %12s %14s %16s\n", "N", "topo up", "topo no-op", "up: % of 1 CPU", "floor (up+down)";
    for (i = 1; i <= nn; i++) {
      n = ns[i]; p = m("topo", n, "up_pid1_s"); up = m("topo", n, "up_s");
      printf "%6d %12s %12s %14s %16s\n", n, f(p, "%.2f"), f(m("topo", n, "noop_pid1_s"), "%.2f"),
        f((p == "" || up == "" || up == 0) ? "" : 100 * p / up, "%.0f%%"), f(m("floor", n, "pid1_s"), "%.2f");
    }
    print "";
    print "== performance contract (docs/performance.md) ==";
    seen_big = 0;
    for (i = 1; i <= nn; i++) {
      n = ns[i]; if (n < 1000) continue; seen_big = 1;
      up = m("topo", n, "up_s"); fl = m("floor", n, "up_s");
      what = sprintf("%d-node up <= 2x the ip -batch floor", n);
      if (up == "" || fl == "") unmeasured(what, "topo or floor failed");
      else verdict(up <= 2 * fl, what, sprintf("topo %.3f s, floor %.3f s, %.2fx", up, fl, up / fl));
      no = m("topo", n, "noop_s"); what = sprintf("%d-node no-op up <= %.1f s (0.2 s per 1000 nodes)", n, n / 5000);
      if (no == "") unmeasured(what, "no no-op figure");
      else verdict(no <= n / 5000, what, sprintf("%.3f s", no));
      ch = m("topo", n, "change_s"); act = m("topo", n, "change_actions");
      ex = m("topo", n, "change_extra_s"); bk = m("topo", n, "back_actions");
      # results files from before the second pair: the medians against each other
      if (ex == "" && ch != "" && no != "") { ex = ch - no; bk = act }
      what = sprintf("%d-node one-link change <= 50 ms beyond a no-op up, only that link", n);
      if (ex == "" || act == "" || bk == "") unmeasured(what, "no change or no-op figure");
      else verdict(ex <= 0.05 && act <= 2 && bk <= 2, what,
        sprintf("%+.0f ms beyond the no-op before it (change %.3f s, no-op %.3f s), %d and %d actions",
          ex * 1000, ch, no, act, bk));
    }
    if (!seen_big) unmeasured("up, no-op and one-link change at N >= 1000", "needs N >= 1000");
    for (i = 1; i <= nn; i++) {
      n = ns[i]; d = m("topo", n, "down_s"); fd = m("floor", n, "down_s");
      what = sprintf("%d-node down <= 2x the ip netns del batch", n);
      if (d == "" || fd == "") unmeasured(what, "topo or floor failed");
      else verdict(d <= 2 * fd, what, sprintf("topo %.3f s, floor %.3f s, %.2fx", d, fd, fd > 0 ? d / fd : 0));
    }
    big = ns[nn];
    pss = m("topo", big, "pss_kb_per_node"); km = m("topo", big, "kmem_kb_per_node");
    what = sprintf("memory per node (init PSS + kernel memory) <= 1 MiB at N=%d", big);
    if (pss == "" || km == "") unmeasured(what, "no memory figure");
    else verdict(pss + km <= 1024, what, sprintf("%.0f KiB (PSS %.0f + kernel %.0f)", pss + km, pss, km));
    worst = ""; at = "";
    for (i = 1; i <= nn; i++) {
      ex = m("topo", ns[i], "exec_ms"); nse = m("topo", ns[i], "nsenter_ms");
      if (ex == "" || nse == "") continue;
      if (worst == "" || ex / nse > worst) { worst = ex / nse; at = ns[i]; wex = ex; wns = nse }
    }
    if (worst == "") unmeasured("topo exec /bin/true <= nsenter -a", "no exec figure");
    else verdict(worst <= 1, "topo exec /bin/true <= nsenter -a (worst N)",
      sprintf("N=%d: topo exec %.2f ms, nsenter %.2f ms, %.2fx", at, wex, wns, worst));
    up = m("topo", 100, "up_s");
    split("mininet munet", peers, " "); need["mininet"] = 10; need["munet"] = 100;
    for (j = 1; j <= 2; j++) {
      pr = peers[j]; pu = m(pr, 100, "up_s"); what = sprintf("%s/topo up >= %dx at N=100", pr, need[pr]);
      if (up == "" || pu == "") unmeasured(what, up == "" ? "needs N=100" : pr " not run (not installed or skipped)");
      else verdict(pu / up >= need[pr], what, sprintf("%s %.3f s, topo %.3f s, %.1fx", pr, pu, up, pu / up));
    }
  }' "$@"
}

# ---- arguments ----------------------------------------------------------------------------
reps=3 quick=0 ns=()
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --reps) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive number"; reps=$2; shift ;;
    --reps=*) reps=${1#--reps=}; [[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive number" ;;
    --summarize) [[ -f ${2:-} ]] || die "--summarize needs a results file"; summarize "$2"; exit 0 ;;
    -h|--help) usage ;;
    *) [[ $1 =~ ^[0-9]+$ && $1 -ge 2 ]] || die "not a node count (>= 2): $1"; ns+=("$1") ;;
  esac
  shift
done
if ((${#ns[@]} == 0)); then ns=(10 100 1000); ((quick)) || ns+=(5000 10000); fi
[[ $EUID == 0 ]] || die "needs root (namespaces, veths)"
for tool in ip bc awk; do command -v $tool >/dev/null || die "needs '$tool'"; done
GEN_ARGS=${GEN_ARGS---bare}
IPROUTE2_MAX_N=${IPROUTE2_MAX_N:-1000}
PEERS_MAX_N=${PEERS_MAX_N:-100}
SETTLE_IDLE=${SETTLE_IDLE:-80}
DRAIN_MAX=${DRAIN_MAX:-600}
EXEC_PAIRS=${EXEC_PAIRS:-101}
if ((quick)); then SETTLE_MAX=${SETTLE_MAX:-3}; else SETTLE_MAX=${SETTLE_MAX:-10}; fi

if [[ -z ${TOPO:-} ]]; then
  echo "bench: cargo build --release" >&2
  # The binary's path from cargo itself (its directory depends on the build target).
  TOPO=$(cd "$root" && cargo build --release --quiet --bins --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/topo"' | tail -n 1 | cut -d'"' -f4) ||
    die "cargo build --release failed"
fi
[[ -x $TOPO ]] || die "no topo binary at $TOPO"
# topo runs topo-core from its own directory.
[[ -x $(dirname "$(realpath "$TOPO")")/topo-core ]] || die "no topo-core next to $TOPO"

# ---- state, cleanup -------------------------------------------------------------------
id=$(printf '%03d' $(($$ % 1000)))   # our names: bn<id>c<N> (topo), bn<id>f/i/m/u<k> (peers)
mkdir -p "$here/results"
out=${OUT:-$here/results/run-$(date +%Y%m%d-%H%M%S).txt}
work=$(mktemp -d /tmp/bn-bench.XXXXXX)
lab=
cleanup() {
  [[ -n $lab ]] && "$TOPO" down --lab "$lab" >/dev/null 2>&1
  # a peer script interrupted midway leaves its namespaces: ours have our prefix
  ip netns list 2>/dev/null | awk -v re="^bn${id}[fi][0-9]+$" '$1 ~ re {print $1}' |
    while read -r ns_; do ip netns del "$ns_"; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
addr() { local o=$1; echo "10.$((o >> 16)).$(((o >> 8) & 255)).$((o & 255))"; }
# Slab + KernelStack + PageTables + Percpu, kB (as peers/floor-chain.sh)
kmem() { awk '/^(Slab|KernelStack|PageTables|Percpu):/ {s += $2} END {print s}' /proc/meminfo; }
log() { echo "$*" | tee -a "$out"; }

cpu_idle_pct() {  # idle % of all CPUs over 0.5 s
  local a b tot=0 i
  read -r -a a < <(grep '^cpu ' /proc/stat); sleep 0.5; read -r -a b < <(grep '^cpu ' /proc/stat)
  for i in 1 2 3 4 5 6 7 8; do tot=$((tot + b[i] - a[i])); done
  echo $((100 * (b[4] - a[4] + b[5] - a[5]) / (tot > 0 ? tot : 1)))
}
settle() {  # until SETTLE_IDLE % idle, at most SETTLE_MAX s; the kernel frees netns lazily
  local t0=$EPOCHREALTIME idle
  while awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$SETTLE_MAX" 'BEGIN { exit !(b - a < m) }'; do
    idle=$(cpu_idle_pct); ((idle >= SETTLE_IDLE)) && return
  done
}

# The kernel's network namespaces, live or still being freed (the active objects of their
# slab cache), or nothing when /proc/slabinfo cannot be read. The count is approximate (the
# allocator keeps some freed objects counted), so a drain ends when it stops falling.
netns_live() { awk '$1 == "net_namespace" { print $2 }' /proc/slabinfo 2>/dev/null; }
drained_s=0 run_load=NA
drain() {  # until the count has not fallen for 3 s, at most DRAIN_MAX s
  local t0=$EPOCHREALTIME low now still=0
  drained_s=0
  low=$(netns_live)
  [[ -n $low ]] || return
  while ((still < 3)); do
    awk -v a="$t0" -v b="$EPOCHREALTIME" -v m="$DRAIN_MAX" 'BEGIN { exit !(b - a < m) }' || {
      log "# drain: namespaces still being freed after ${DRAIN_MAX} s ($low live)"; break; }
    sleep 1
    now=$(netns_live)
    if ((now < low - 2)); then low=$now still=0; else still=$((still + 1)); fi
  done
  drained_s=$(elapsed "$t0" "$EPOCHREALTIME")
}
load1() { cut -d' ' -f1 /proc/loadavg; }
# CPU time (user + system, in clock ticks) that the machine's PID 1 has used: on a machine
# whose PID 1 does work for each process in a network namespace of its own (a VM's agent
# that watches them), that work competes with `topo` and the peers that run processes, and
# not with the floor. NA where /proc/1/stat cannot be read.
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)
pid1_ticks() {
  local f
  read -r f </proc/1/stat 2>/dev/null || { echo NA; return; }
  f=${f##*) }
  # shellcheck disable=SC2086
  set -- $f
  echo $((${12} + ${13}))
}
# Seconds of PID 1's CPU between two pid1_ticks readings.
pid1_s() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { if (a == "NA" || b == "NA") print "NA"; else printf "%.2f", (b - a) / hz }'; }
# Wait for earlier runs' namespaces to be freed and for the CPUs to be idle; then note the
# load and how long the wait took (in the run's result line).
ready() { drain; settle; run_load=$(load1); }

# Median of the numbers on standard input.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "NA"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Runs a command and appends how long it took, in whole microseconds, to the array named first.
time_into() {
  local -n into=$1
  shift
  local t0=${EPOCHREALTIME/./}
  "$@"
  into+=($((${EPOCHREALTIME/./} - t0)))
}

# Milliseconds of `topo exec` and `nsenter -a` of /bin/true in node n0, EXEC_PAIRS runs each,
# interleaved, the first of each pair alternating: prints "topo_ms nsenter_ms" (medians), or
# "NA NA". Times are taken in whole microseconds by the shell itself, with no process between
# the runs. nsenter takes the node's network namespace by its name: a default node's init
# lives outside it.
exec_cost() {
  local lab=$1 pid=$2 i net=/run/netns/$1-n0
  local -a topo_us=() ns_us=()
  command -v nsenter >/dev/null && [[ -n $pid ]] || { echo "NA NA"; return; }
  for ((i = 0; i < EXEC_PAIRS; i++)); do
    if ((i % 2)); then time_into ns_us nsenter -a -t "$pid" --net="$net" /bin/true; fi
    time_into topo_us "$TOPO" exec --lab "$lab" n0 -- /bin/true
    if ((i % 2 == 0)); then time_into ns_us nsenter -a -t "$pid" --net="$net" /bin/true; fi
  done
  printf '%s\n' "${topo_us[@]}" | awk '{ print $1 / 1000 }' >"$work/exec.ms"
  printf '%s\n' "${ns_us[@]}" | awk '{ print $1 / 1000 }' >"$work/nsenter.ms"
  echo "$(median <"$work/exec.ms") $(median <"$work/nsenter.ms")"
}

# Sums the PSS of the given PIDs: prints "kB count" (pure bash: no process per PID).
pss_sum() {
  local pid k v rest s=0 c=0
  for pid in "$@"; do
    [[ -r /proc/$pid/smaps_rollup ]] || continue
    while read -r k v rest; do
      if [[ $k == Pss: ]]; then s=$((s + v)); c=$((c + 1)); break; fi
    done <"/proc/$pid/smaps_rollup"
  done
  echo "$s $c"
}

ping_ok() {  # lab node address: up to 3 tries, like the peers' checks
  local i
  for i in 1 2 3; do
    "$TOPO" exec --lab "$1" "$2" -- ping -c1 -W2 "$3" >"$work/ping.out" 2>&1 && return 0
  done
  log "# topo: ping from $2 to $3 failed 3 times; last output:"
  tail -n 4 "$work/ping.out" | sed 's/^/#   /' | tee -a "$out"
  return 1
}

actions() {  # the number of changes `topo up` reported in file $1
  if grep -q 'no changes' "$1"; then echo 0
  else grep -o 'up, [0-9]* changes' "$1" | awk '{print $2}' | tail -n1; fi
}

# ---- topo -------------------------------------------------------------------------------
run_topo() {
  local n=$1 r=$2 f=$work/chain.yaml f2=$work/chain-1link.yaml k t0 t1 rss=NA rc
  local up_s noop_s=NA change_s=NA down_s=NA reap_s=NA ok=yes pss=NA procs=0 km=NA
  lab=bn${id}c$n
  # shellcheck disable=SC2086
  "$TOPO" gen chain --nodes "$n" --name "$lab" $GEN_ARGS >"$f" || { log "tool=topo n=$n rep=$r FAILED gen"; return; }
  k=$(((n - 1) / 2))   # the middle link: n<k>:eth1 -- n<k+1>:eth0
  sed "s/^  - {endpoints: \[n$k:eth1, n$((k + 1)):eth0\]}\$/  - {endpoints: [n$k:eth1, n$((k + 1)):eth0], state: down}/" "$f" >"$f2"
  grep -q 'state: down' "$f2" || { log "# topo: could not find link n$k--n$((k + 1)) to change"; f2=; }

  local k0 p0 up_pid1=NA noop_pid1=NA; k0=$(kmem); p0=$(pid1_ticks)
  t0=$EPOCHREALTIME
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f %M -o "$work/rss" "$TOPO" up "$f" >"$work/up.out" 2>&1; rc=$?
    t1=$EPOCHREALTIME; rss=$(tail -n1 "$work/rss")
  else
    "$TOPO" up "$f" >"$work/up.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
  fi
  up_s=$(elapsed "$t0" "$t1"); up_pid1=$(pid1_s "$p0" "$(pid1_ticks)")
  if ((rc != 0)); then
    log "tool=topo n=$n rep=$r FAILED up rc=$rc up_s=$up_s"
    tail -n 5 "$work/up.out" | sed 's/^/# /' | tee -a "$out"
    "$TOPO" down --lab "$lab" >/dev/null 2>&1; lab=
    return
  fi
  # while the lab is up (not timed): kernel memory, PSS of the node init processes, pings
  km=$(awk -v a="$k0" -v b="$(kmem)" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
  local pids; pids=$("$TOPO" status --lab "$lab" -o json | grep -o '"init_pid": *[0-9]*' | grep -o '[0-9]*$')
  # shellcheck disable=SC2086
  read -r pss procs < <(pss_sum $pids)
  local n0pid exec_ms nsenter_ms
  n0pid=$("$TOPO" status --lab "$lab" n0 -o json | grep -o '"init_pid": *[0-9]*' | grep -o '[0-9]*$' | head -n1)
  read -r exec_ms nsenter_ms < <(exec_cost "$lab" "$n0pid")
  pss=$(awk -v s="$pss" -v n="$n" 'BEGIN { printf "%.1f", s / n }')
  ping_ok "$lab" n0 "$(addr 1)" && ping_ok "$lab" "n$((n - 2))" "$(addr $((2 * (n - 2) + 1)))" || ok=NO

  p0=$(pid1_ticks)
  t0=$EPOCHREALTIME; "$TOPO" up "$f" >"$work/noop.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
  noop_pid1=$(pid1_s "$p0" "$(pid1_ticks)")
  ((rc == 0)) && noop_s=$(elapsed "$t0" "$t1") || ok=NO
  local noop_actions; noop_actions=$(actions "$work/noop.out")
  local change_actions=NA
  if [[ -n $f2 ]]; then
    t0=$EPOCHREALTIME; "$TOPO" up "$f2" >"$work/change.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
    ((rc == 0)) && change_s=$(elapsed "$t0" "$t1") || ok=NO
    change_actions=$(actions "$work/change.out")
  fi
  # A second pair, back to the first file: the same no-op on the changed file, then the link
  # up again. What a change adds is taken against the no-op just before it, in each pair (a
  # large lab's no-op varies by more than that from one run to the next).
  local noop2_s=NA back_s=NA back_actions=NA change_extra_s=NA
  if [[ -n $f2 && $change_s != NA ]]; then
    t0=$EPOCHREALTIME; "$TOPO" up "$f2" >"$work/noop2.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
    ((rc == 0)) && noop2_s=$(elapsed "$t0" "$t1") || ok=NO
    t0=$EPOCHREALTIME; "$TOPO" up "$f" >"$work/back.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
    ((rc == 0)) && back_s=$(elapsed "$t0" "$t1") || ok=NO
    back_actions=$(actions "$work/back.out")
    if [[ $noop_s != NA && $noop2_s != NA && $back_s != NA ]]; then
      change_extra_s=$(awk -v a="$noop_s" -v b="$change_s" -v c="$noop2_s" -v d="$back_s" \
        'BEGIN { printf "%.6f", ((b - a) + (d - c)) / 2 }')
    fi
  fi
  t0=$EPOCHREALTIME; "$TOPO" down --lab "$lab" >"$work/down.out" 2>&1; rc=$?; t1=$EPOCHREALTIME
  ((rc == 0)) && down_s=$(elapsed "$t0" "$t1") || ok=NO
  local left; left=$(ip netns list | grep -c "^$lab-")
  ((left == 0)) || { ok=NO; log "# topo: $left namespaces of $lab left after down"; }
  # `down` returns while the killed processes still end; its reaper removes the run directory
  # once they have. Not timed: waited for (at most 600 s), as the kernel's namespace cleanup.
  local rundir=${TOPO_RUN_DIR:-/run/topo}/$lab r0=$EPOCHREALTIME
  while [[ -d $rundir && ! -e $rundir/reap-error ]]; do
    (( ${EPOCHREALTIME%.*} - ${r0%.*} < 600 )) || break
    sleep 0.2
  done
  reap_s=$(elapsed "$r0" "$EPOCHREALTIME")
  [[ -d $rundir ]] && { ok=NO; log "# topo: run directory of $lab left after down: $(cat "$rundir/reap-error" 2>/dev/null)"; }
  lab=
  log "tool=topo n=$n rep=$r up_s=$up_s noop_s=$noop_s change_s=$change_s down_s=$down_s" \
    "noop2_s=$noop2_s back_s=$back_s change_extra_s=$change_extra_s" \
    "noop_actions=${noop_actions:-NA} change_actions=${change_actions:-NA}" \
    "back_actions=${back_actions:-NA} maxrss_kb=$rss" \
    "pss_kb_per_node=$pss node_procs=$procs kmem_kb_per_node=$km exec_ms=$exec_ms" \
    "nsenter_ms=$nsenter_ms reap_s=$reap_s up_pid1_s=$up_pid1 noop_pid1_s=$noop_pid1" \
    "load1=$run_load drain_s=$drained_s verified=$ok"
}

# ---- peers ------------------------------------------------------------------------------
mininet_ok() { /usr/bin/python3 -c 'import mininet.net' 2>/dev/null; }
munet_ok() { "${MUNET_PYTHON:-python3}" -c 'import munet' 2>/dev/null && command -v mutini >/dev/null; }

run_peer() {  # name n rep prefix script...
  local name=$1 n=$2 r=$3 prefix=$4 rc line extra km p0 pid1
  shift 4
  p0=$(pid1_ticks)
  PREFIX=$prefix "$@" "$n" >"$work/peer.out" 2>"$work/peer.err"; rc=$?
  pid1=$(pid1_s "$p0" "$(pid1_ticks)")
  line=$(grep "^peer=$name " "$work/peer.out" | sed "s/^peer=$name n=$n /tool=$name n=$n rep=$r /")
  extra=$(grep "^# peer=$name " "$work/peer.err" | sed "s/^# peer=$name n=$n //")
  if [[ $name == floor ]]; then
    km=$(echo "$extra" | grep -o 'kmem_kb=-*[0-9]*' | cut -d= -f2)
    extra="kmem_kb_per_node=$(awk -v k="${km:-0}" -v n="$n" 'BEGIN { printf "%.1f", k / n }')"
  fi
  if [[ -z $line ]]; then
    log "tool=$name n=$n rep=$r FAILED rc=$rc"
    grep -v '^# peer=' "$work/peer.err" | tail -n 5 | sed 's/^/# /' | tee -a "$out"
    return
  fi
  log "$line $extra pid1_s=$pid1 load1=$run_load drain_s=$drained_s rc=$rc"
}

# ---- the run ----------------------------------------------------------------------------
{
  echo "# ---- $(date -Is) bench/run.sh reps=$reps N=${ns[*]} GEN_ARGS=$GEN_ARGS"
  echo "# host: $(uname -r), $(nproc) cpus, $(free -m | awk '/Mem:/{print $2}') MiB;" \
    "topo $("$TOPO" --version | awk '{print $2}') ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
} | tee -a "$out"
have_mininet=0 have_munet=0
if mininet_ok; then have_mininet=1; else log "# mininet: not installed, skipped (bench/peers/README.md says how to install it)"; fi
if munet_ok; then have_munet=1; else log "# munet: not installed, skipped (bench/peers/README.md says how to install it)"; fi
[[ -x /usr/bin/time ]] || log "# /usr/bin/time missing (apt-get install time): no peak RSS"

for n in "${ns[@]}"; do
  ((n > IPROUTE2_MAX_N)) && log "# iproute2: n=$n skipped (IPROUTE2_MAX_N=$IPROUTE2_MAX_N)"
  ((n > PEERS_MAX_N && (have_mininet || have_munet))) &&
    log "# mininet, munet: n=$n skipped (PEERS_MAX_N=$PEERS_MAX_N)"
  for ((r = 1; r <= reps; r++)); do
    log "# n=$n rep=$r load=$(cut -d' ' -f1-3 /proc/loadavg)"
    ready; run_topo "$n" "$r"
    ready; run_peer floor "$n" "$r" "bn${id}f" "$here/peers/floor-chain.sh"
    if ((n <= IPROUTE2_MAX_N)); then
      ready; run_peer iproute2 "$n" "$r" "bn${id}i" "$here/peers/iproute2-chain.sh"
    fi
    if ((n <= PEERS_MAX_N && have_mininet)); then
      ready; run_peer mininet "$n" "$r" "bn${id}m" "$here/peers/mininet-chain.py"
    fi
    if ((n <= PEERS_MAX_N && have_munet)); then
      ready; run_peer munet "$n" "$r" "bn${id}u" "$here/peers/munet-chain.sh"
    fi
  done
done
summarize "$out" | tee -a "$out"
echo "# ---- done $(date -Is); leftovers: netns=$(ip netns list | grep -c "^bn$id")" \
  "run directories=$(find "${TOPO_RUN_DIR:-/run/topo}" -maxdepth 1 -name "bn$id*" 2>/dev/null | wc -l)" | tee -a "$out"
echo "bench: raw results in $out" >&2
