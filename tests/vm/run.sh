#!/usr/bin/env bash
# run.sh: the VM test suite. Builds `topo` (release: much faster than debug under TCG, and a
# 7 MB binary instead of 100 MB to pack into each initramfs), then runs each case
# (tests/vm/cases/*.sh, or the ones given) as root in its own throwaway VM with Debian 12's
# stock kernel (run-in-vm.sh), and prints one line per case and a summary:
#
#   vm: smoke ok (6.1s)
#   vm: netem FAILED (7.9s)
#   1 passed, 1 failed
#
# Exit status: 0 if every case passed, 1 if any failed, 2 on a usage error, 130/143 when
# interrupted. A case's console output goes to its log (printed when the case fails).
#
# Inside the VM every case has: /usr/local/bin/topo and topo-core, iproute2's ip and tc (with tc's
# distribution tables), bash, iputils ping and busybox. A case may ask for more with one
# header line of run-in-vm.sh options, e.g.  # vm-options: --modules vxlan --timeout 300
#
# Two more header lines: `# vm-pair` runs the case on two VMs at once, a and b, joined by a
# virtual network (a QEMU socket netdev on a free 127.0.0.1 TCP port, nothing else of the
# host); it passes when both exit 0, and logs to CASE-a.log and CASE-b.log. `# vm-manual`
# keeps a case out of the default set: it runs only when named. See tests/vm/README.md.
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
    cat <<EOF
usage: $PROG [-v] [CASE...]

Build topo and run each VM test case (default: every tests/vm/cases/*.sh without a
"# vm-manual" line) in its own VM, or its own two VMs ("# vm-pair").
CASE is a path or a case name (smoke = tests/vm/cases/smoke.sh).

  -v, --verbose   also stream each VM's console while it runs

environment:
  TOPO_BIN        use this topo binary instead of running cargo build --release
  VMTEST_LOGS     where case logs go (default: the cargo target dir's vmtest/)
  VMTEST_CACHE, VMTEST_KERNEL_PKG   passed to run-in-vm.sh (see tests/vm/README.md)
EOF
}

VERBOSE=0
CASES=()
while (($#)); do
    case $1 in
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; CASES+=("$@"); break ;;
        -*) echo "$PROG: unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) CASES+=("$1"); shift ;;
    esac
done

# A case given by name or by path.
resolve_case() {
    local c=$1
    if [[ -f $c ]]; then realpath "$c"
    elif [[ -f $HERE/cases/$c ]]; then echo "$HERE/cases/$c"
    elif [[ -f $HERE/cases/$c.sh ]]; then echo "$HERE/cases/$c.sh"
    else echo "$PROG: no such case: $c (see $HERE/cases/)" >&2; exit 2
    fi
}
if ((${#CASES[@]})); then
    for i in "${!CASES[@]}"; do CASES[i]=$(resolve_case "${CASES[i]}"); done
else
    # Every case but those with a `# vm-manual` header line: they run only when named.
    for c in "$HERE"/cases/*.sh; do
        [[ -f $c ]] || continue
        if grep -Eq '^# vm-manual([[:space:]]|$)' "$c"; then
            echo "$PROG: $(basename "$c" .sh) is a manual case: not run unless named" >&2
            continue
        fi
        CASES+=("$c")
    done
    ((${#CASES[@]})) || { echo "$PROG: no cases in $HERE/cases" >&2; exit 2; }
fi

# The host's iproute2, iputils ping and bash are copied into every VM; install them if
# missing, as run-in-vm.sh does with its own tools.
ensure_host_tools() {
    local -a missing=()
    [[ -x /usr/sbin/ip && -x /usr/sbin/tc ]] || missing+=(iproute2)
    command -v ping >/dev/null || missing+=(iputils-ping)
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || { echo "$PROG: missing host packages: ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1; }
    echo "$PROG: installing host packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    local -a apt=(apt-get install -y --no-install-recommends --no-remove -o DPkg::Lock::Timeout=600)
    "${apt[@]}" "${missing[@]}" >&2 || { apt-get update >&2 && "${apt[@]}" "${missing[@]}" >&2; } \
        || { echo "$PROG: apt-get install ${missing[*]} failed" >&2; exit 1; }
}
ensure_host_tools

target_dir=${CARGO_TARGET_DIR:-$REPO/target}
[[ $target_dir == /* ]] || target_dir=$REPO/$target_dir
if [[ -n ${TOPO_BIN:-} ]]; then
    topo=$(realpath "$TOPO_BIN")
else
    echo "$PROG: cargo build --release" >&2
    # The binary's path from cargo itself (its directory depends on the build target).
    topo=$(cd "$REPO" && cargo build --release --bins --message-format=json-render-diagnostics |
        grep -o '"executable":"[^"]*/topo"' | tail -n 1 | cut -d'"' -f4) \
        || { echo "$PROG: build failed" >&2; exit 1; }
fi
[[ -x $topo ]] || { echo "$PROG: no topo binary at $topo" >&2; exit 1; }
# The front runs topo-core from its own directory: both go in.
core=$(dirname "$topo")/topo-core
[[ -x $core ]] || { echo "$PROG: no topo-core next to $topo" >&2; exit 1; }

logs=${VMTEST_LOGS:-$target_dir/vmtest}
mkdir -p "$logs"

# What every case gets. The binaries sit at a fixed path: topo runs topo-core next to it, and
# topo-core re-executes itself for node helpers. tc's netem distribution tables are dlopen-style data that ldd cannot see.
ADDS=(--add "$topo:/usr/local/bin/topo" --add "$core:/usr/local/bin/topo-core" --add /usr/sbin/ip --add /usr/sbin/tc
      --add /usr/bin/bash --add "$(command -v ping):/usr/bin/ping")
if [[ -d /usr/lib/x86_64-linux-gnu/tc ]]; then ADDS+=(--add /usr/lib/x86_64-linux-gnu/tc); fi

now() { date +%s.%N; }

# What a pair case gets on top: one CPU per VM (two emulated VMs share the host), a longer
# timeout, vxlan, the bridge tool and the barrier helpers. The case's own header wins.
PAIR_OPTS=(--cpus 1 --timeout 600 --modules vxlan --add /usr/sbin/bridge
           --add "$HERE/pair.sh:/vmtest/pair.sh")

# A free TCP port on 127.0.0.1 for the QEMU socket netdev of a pair: below the kernel's
# ephemeral range (32768-60999 by default), used by no socket now.
free_port() {
    local -A used=()
    local local_addr p i
    while read -r _ local_addr _; do
        [[ $local_addr == *:* ]] || continue
        used[$((16#${local_addr##*:}))]=1
    done < <(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 10000))
        [[ -n ${used[$p]:-} ]] || { echo "$p"; return 0; }
    done
    echo "$PROG: no free TCP port found in 20000-29999" >&2
    return 1
}

# run_one LOG OPTS... : one VM; sets rc.
run_one() {
    local log=$1; shift
    rc=0
    if ((VERBOSE)); then
        "$HERE/run-in-vm.sh" --timeout 180 "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
    else
        "$HERE/run-in-vm.sh" --timeout 180 "$@" >"$log" 2>&1 || rc=$?
    fi
}

PAIR_PIDS=()
# shellcheck disable=SC2317  # trap handler
stop_pair() {
    local p
    for p in "${PAIR_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "vm: interrupted"
    exit "$1"
}

# start_vm NAME CASE ROLE OPTS... : one VM of a pair, in the background; sets pid.
start_vm() {
    local name=$1 case=$2 role=$3; shift 3
    local log=$logs/$name-$role.log
    if ((VERBOSE)); then
        "$HERE/run-in-vm.sh" "${ADDS[@]}" "${PAIR_OPTS[@]}" "$@" -- "$case" \
            > >(tee "$log" | sed -u "s/^/$name-$role| /") 2>&1 &
    else
        "$HERE/run-in-vm.sh" "${ADDS[@]}" "${PAIR_OPTS[@]}" "$@" -- "$case" >"$log" 2>&1 &
    fi
    pid=$!
}

# run_pair NAME CASE OPTS... : VMs a and b joined by a socket netdev on a free port, both
# started at once (b's run-in-vm.sh waits for a's QEMU to listen). Sets rc_a and rc_b, rc
# (0 only when both exited 0, else the status of the VM that failed) and stopped (a or b:
# the VM stopped because the other failed; it would only wait at its next barrier until
# its timeout). A failed VM's partner gets 10 s to finish on its own first.
run_pair() {
    local name=$1 case=$2; shift 2
    local port pid pid_a pid_b
    rc_a=125 rc_b=125 rc=125 stopped=""
    port=$(free_port) || return 0
    trap 'stop_pair 130' INT
    trap 'stop_pair 143' TERM
    start_vm "$name" "$case" a --net "listen:$port" --mac 52:54:00:00:51:01 --ip 198.51.100.1/24 \
        --env VMTEST_ROLE=a --env VMTEST_ADDR=198.51.100.1 --env VMTEST_PEER=198.51.100.2 "$@"
    pid_a=$pid
    start_vm "$name" "$case" b --net "connect:$port" --mac 52:54:00:00:51:02 --ip 198.51.100.2/24 \
        --env VMTEST_ROLE=b --env VMTEST_ADDR=198.51.100.2 --env VMTEST_PEER=198.51.100.1 "$@"
    pid_b=$pid
    PAIR_PIDS=("$pid_a" "$pid_b")
    local first first_rc=0 other other_role i
    wait -n -p first "$pid_a" "$pid_b" || first_rc=$?
    if [[ $first == "$pid_a" ]]; then
        rc_a=$first_rc other=$pid_b other_role=b
    else
        rc_b=$first_rc other=$pid_a other_role=a
    fi
    if ((first_rc != 0)); then
        rc=$first_rc
        for i in $(seq 1 50); do kill -0 "$other" 2>/dev/null || break; sleep 0.2; done
        if kill -TERM "$other" 2>/dev/null; then stopped=$other_role; fi
    fi
    local orc=0
    wait "$other" || orc=$?
    if [[ $other_role == a ]]; then rc_a=$orc; else rc_b=$orc; fi
    PAIR_PIDS=()
    trap - INT TERM
    if ((first_rc == 0)); then rc=$orc; fi
}

stalled() { grep -q -e 'soft lockup' -e 'kthread starved' "$@"; }

passed=0 failed=0
for case in "${CASES[@]}"; do
    name=$(basename "$case" .sh)
    # One optional header line of extra run-in-vm.sh options; later options win.
    extra=$(sed -n 's/^# vm-options:[[:space:]]*//p' "$case" | head -n1)
    read -r -a extra_opts <<<"$extra"
    pair=0
    if grep -Eq '^# vm-pair([[:space:]]|$)' "$case"; then pair=1; fi
    if ((pair)); then logfiles=("$logs/$name-a.log" "$logs/$name-b.log"); else logfiles=("$logs/$name.log"); fi
    start=$(now)
    for attempt in 1 2; do
        if ((pair)); then
            run_pair "$name" "$case" "${extra_opts[@]}"
            timed_out=0
            if ((rc_a == 124 || rc_b == 124)); then timed_out=1; fi
        else
            run_one "${logfiles[0]}" "${ADDS[@]}" "${extra_opts[@]}" -- "$case"
            timed_out=$((rc == 124))
        fi
        # Without KVM the VM is emulated (TCG), and on a busy host its virtual CPUs have
        # stalled for minutes (the guest kernel reports soft lockups and a starved RCU thread;
        # once in seven runs of the netem case here). Such a run says nothing about the case:
        # it is run once more (a pair: both VMs). A case that times out without those
        # reports fails at once.
        if ((timed_out && attempt == 1)) && stalled "${logfiles[@]}"; then
            echo "  $name: the emulated VM stalled (guest soft lockup); running the case again"
            for f in "${logfiles[@]}"; do cp "$f" "$f.stalled"; done
            continue
        fi
        break
    done
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    if ((!pair && (rc == 130 || rc == 143))); then
        echo "vm: $name interrupted"
        exit "$rc"
    fi
    # A case that finds the kernel lacking something says "skipping: ..." and passes.
    skip=$(grep -h -m1 -o 'skipping: .*' "${logfiles[@]}" | head -n1 || true)
    if ((rc == 0)); then
        passed=$((passed + 1))
        [[ -z $skip ]] || echo "  $name: $skip"
        echo "vm: $name ok (${secs}s)"
    else
        failed=$((failed + 1))
        if ((pair)); then
            for role in a b; do
                if ((!VERBOSE)); then sed "s/^/  $name-$role| /" "$logs/$name-$role.log"; fi
            done
            for role in a b; do
                r=rc_$role
                if [[ $role == "$stopped" ]]; then
                    echo "  $name-$role: stopped after the other VM failed; log: $logs/$name-$role.log"
                else
                    echo "  $name-$role: exit status ${!r}; log: $logs/$name-$role.log"
                fi
            done
        else
            if ((!VERBOSE)); then sed "s/^/  $name| /" "${logfiles[0]}"; fi
            echo "  $name: exit status $rc; log: ${logfiles[0]}"
        fi
        echo "vm: $name FAILED (${secs}s)"
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
