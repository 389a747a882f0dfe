#!/bin/bash
# cgroup-v2: the kernel side of node limits (`limits: {memory, pids, cpu}`), checked on
# Debian 12's stock kernel.
#
# PLACEHOLDER FOR TOPO: topo does not put nodes in cgroups yet, so this case checks only
# the KERNEL capabilities that feature will rely on: cgroup2 mounted, the memory, cpu and
# pids controllers available and delegable, and memory.max / pids.max / cpu.max enforced in
# a child group. When limits land in topo, extend it to drive `topo up` with a `limits:`
# block and assert on /sys/fs/cgroup/topo/<lab>/<node>/ (and that `topo down` removes it).
set -euo pipefail

CG=/sys/fs/cgroup
GROUP=$CG/vmtest-cgroup-v2

fail() { echo "FAIL: $*"; exit 1; }
cleanup() {
    [[ -d $GROUP ]] || return 0
    # A group can only be removed once empty: kill what the test left in it.
    echo 1 >"$GROUP/cgroup.kill" 2>/dev/null || true
    for _ in $(seq 50); do [[ -s $GROUP/cgroup.procs ]] || break; sleep 0.1; done
    rmdir "$GROUP" || echo "warning: cannot remove $GROUP"
}
trap cleanup EXIT

if ! grep -q "^cgroup2 $CG cgroup2" /proc/mounts; then
    echo "skipping: kernel has no cgroup2 mounted at $CG"; exit 0
fi
controllers=$(cat "$CG/cgroup.controllers")
echo "kernel $(uname -r); cgroup2 controllers: $controllers"
for c in memory cpu pids; do
    if [[ " $controllers " != *" $c "* ]]; then
        echo "skipping: kernel has no cgroup v2 $c controller"; exit 0
    fi
done
subtree=$(cat "$CG/cgroup.subtree_control")
for c in memory cpu pids; do
    [[ " $subtree " == *" $c "* ]] || fail "$c is not enabled in $CG/cgroup.subtree_control: $subtree"
done

mkdir "$GROUP"
echo $((64 * 1024 * 1024)) >"$GROUP/memory.max"
echo 4 >"$GROUP/pids.max"
echo "50000 100000" >"$GROUP/cpu.max"
echo "memory.max=$(cat "$GROUP/memory.max") pids.max=$(cat "$GROUP/pids.max") cpu.max=$(cat "$GROUP/cpu.max")"
[[ $(cat "$GROUP/memory.max") == 67108864 ]] || fail "memory.max did not take"
[[ $(cat "$GROUP/cpu.max") == "50000 100000" ]] || fail "cpu.max did not take"

# pids.max is enforced: a shell in the group (1 task) can start 3 children, and the 4th
# fork fails. busybox sh, because bash retries a failed fork for many seconds.
out=$(busybox sh -c 'echo $$ >"$1/cgroup.procs"
                     for i in 1 2 3 4 5; do sleep 30 >/dev/null 2>&1 & echo started; done' sh "$GROUP" 2>&1) || true
echo "$out"
started=$(grep -c '^started$' <<<"$out" || true)
[[ $started == 3 ]] || fail "pids.max=4 let $started of 5 children start (expected 3)"
events=$(cat "$GROUP/pids.events")
[[ $events == *"max "[1-9]* ]] || fail "pids.events shows no refused fork: $events"
echo "pids.events: $events"
echo "CGROUP-V2 OK"
