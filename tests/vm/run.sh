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
# Inside the VM every case has: /usr/local/bin/topo, iproute2's ip and tc (with tc's
# distribution tables), bash, iputils ping and busybox. A case may ask for more with one
# header line of run-in-vm.sh options, e.g.  # vm-options: --modules vxlan --timeout 300
set -euo pipefail

PROG=${0##*/}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
    cat <<EOF
usage: $PROG [-v] [CASE...]

Build topo and run each VM test case (default: every tests/vm/cases/*.sh) in its own VM.
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
    CASES=("$HERE"/cases/*.sh)
    [[ -f ${CASES[0]} ]] || { echo "$PROG: no cases in $HERE/cases" >&2; exit 2; }
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
    (cd "$REPO" && cargo build --release --bin topo) || { echo "$PROG: build failed" >&2; exit 1; }
    topo=$target_dir/release/topo
fi
[[ -x $topo ]] || { echo "$PROG: no topo binary at $topo" >&2; exit 1; }

logs=${VMTEST_LOGS:-$target_dir/vmtest}
mkdir -p "$logs"

# What every case gets. The binary sits at a fixed path: topo re-executes itself for node
# helpers. tc's netem distribution tables are dlopen-style data that ldd cannot see.
ADDS=(--add "$topo:/usr/local/bin/topo" --add /usr/sbin/ip --add /usr/sbin/tc
      --add /usr/bin/bash --add "$(command -v ping):/usr/bin/ping")
if [[ -d /usr/lib/x86_64-linux-gnu/tc ]]; then ADDS+=(--add /usr/lib/x86_64-linux-gnu/tc); fi

now() { date +%s.%N; }

passed=0 failed=0
for case in "${CASES[@]}"; do
    name=$(basename "$case" .sh)
    log=$logs/$name.log
    # One optional header line of extra run-in-vm.sh options; later options win.
    extra=$(sed -n 's/^# vm-options:[[:space:]]*//p' "$case" | head -n1)
    read -r -a extra_opts <<<"$extra"
    start=$(now)
    for attempt in 1 2; do
        rc=0
        if ((VERBOSE)); then
            "$HERE/run-in-vm.sh" --timeout 180 "${ADDS[@]}" "${extra_opts[@]}" -- "$case" 2>&1 \
                | tee "$log" || rc=${PIPESTATUS[0]}
        else
            "$HERE/run-in-vm.sh" --timeout 180 "${ADDS[@]}" "${extra_opts[@]}" -- "$case" >"$log" 2>&1 \
                || rc=$?
        fi
        # Without KVM the VM is emulated (TCG), and on a busy host its virtual CPUs have
        # stalled for minutes (the guest kernel reports soft lockups and a starved RCU thread;
        # once in seven runs of the netem case here). Such a run says nothing about the case:
        # it is run once more. A case that times out without those reports fails at once.
        if ((rc == 124 && attempt == 1)) && grep -q -e 'soft lockup' -e 'kthread starved' "$log"; then
            echo "  $name: the emulated VM stalled (guest soft lockup); running the case again"
            cp "$log" "$log.stalled"
            continue
        fi
        break
    done
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    if ((rc == 130 || rc == 143)); then
        echo "vm: $name interrupted"
        exit "$rc"
    fi
    # A case that finds the kernel lacking something says "skipping: ..." and passes.
    skip=$(grep -m1 -o 'skipping: .*' "$log" || true)
    if ((rc == 0)); then
        passed=$((passed + 1))
        [[ -z $skip ]] || echo "  $name: $skip"
        echo "vm: $name ok (${secs}s)"
    else
        failed=$((failed + 1))
        if ((!VERBOSE)); then sed "s/^/  $name| /" "$log"; fi
        echo "  $name: exit status $rc; log: $log"
        echo "vm: $name FAILED (${secs}s)"
    fi
done
echo "$passed passed, $failed failed"
((failed == 0))
