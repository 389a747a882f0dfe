#!/bin/bash
# cgroup-v2: node limits (`limits: {memory, pids, cpu}`) on a real cgroup v2 kernel (Debian
# 12's stock 6.1), driven through topo: the limit files hold the declared values, memory and
# pids are enforced, the node's init survives, and `topo down` removes the groups.
set -euo pipefail

CG=/sys/fs/cgroup
fail() { echo "FAIL: $*"; exit 1; }

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

dir=$(mktemp -d)
cat >"$dir/lab.yaml" <<'YAML'
name: vmcg
nodes:
  a: {limits: {memory: 64Mi, pids: 8, cpu: 0.5}}
  b: {}
YAML
trap 'topo down --lab vmcg >/dev/null 2>&1 || true' EXIT
topo up "$dir/lab.yaml"
G=$CG/topo/vmcg/a
[[ -d $G ]] || fail "no group $G"
echo "memory.max=$(cat $G/memory.max) pids.max=$(cat $G/pids.max) cpu.max=$(cat $G/cpu.max)"
[[ $(cat $G/memory.max) == 67108864 ]] || fail "memory.max"
[[ $(cat $G/pids.max) == 8 ]] || fail "pids.max"
[[ $(cat $G/cpu.max) == "50000 100000" ]] || fail "cpu.max"
[[ -d $CG/topo/vmcg/b ]] || fail "a node without limits still gets a group (accounting)"
grep -q "^0::/topo/vmcg/a$" <(topo exec --lab vmcg a -- cat /proc/self/cgroup) || fail "node process not in its group"

# memory: a 200 MB string in a 64 MiB node is killed; the node lives on.
if topo exec --lab vmcg a -- busybox awk 'BEGIN { s = sprintf("%200000000s", ""); print length(s) }'; then
    fail "a 200 MB allocation succeeded in a 64 MiB node"
fi
grep -q "oom_kill [1-9]" $G/memory.events || fail "no OOM kill recorded: $(cat $G/memory.events)"
topo exec --lab vmcg a -- true || fail "the node died with its allocator"

# pids: forking past pids.max fails (busybox sh: bash retries failed forks for long).
out=$(topo exec --lab vmcg a -- busybox sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 >/dev/null 2>&1 & echo started; done' 2>&1) || true
started=$(grep -c '^started$' <<<"$out" || true)
echo "pids: $started of 10 children started"
(( started < 10 )) || fail "pids.max=8 let all 10 start"
grep -q "max [1-9]" $G/pids.events || fail "pids.events shows no refused fork: $(cat $G/pids.events)"

topo down --lab vmcg --wait
[[ ! -d $CG/topo/vmcg ]] || fail "down left $CG/topo/vmcg"
# memory is accounted where it is limited: a lab without memory limits gets no memory
# controller; a limit added to a running node enables it, the node keeps running.
cat >"$dir/nomem.yaml" <<'YAML'
name: vmnm
nodes:
  c: {services: {idle: sleep 300}}
YAML
trap 'topo down --lab vmnm >/dev/null 2>&1 || true' EXIT
topo up "$dir/nomem.yaml"
L=$CG/topo/vmnm
[[ " $(cat $L/cgroup.subtree_control) " != *" memory "* ]] || fail "memory enabled for a lab without memory limits: $(cat $L/cgroup.subtree_control)"
[[ ! -e $L/c/memory.max ]] || fail "node c has memory files without a limit"
init=$(cat $L/c/cgroup.procs | sort -n | head -1)
sed -i 's/c: {services: {idle: sleep 300}}/c: {services: {idle: sleep 300}, limits: {memory: 32Mi}}/' "$dir/nomem.yaml"
topo up "$dir/nomem.yaml"
[[ $(cat $L/c/memory.max) == 33554432 ]] || fail "memory.max after the limit was added: $(cat $L/c/memory.max 2>&1)"
[[ $(cat $L/c/cgroup.procs | sort -n | head -1) == "$init" ]] || fail "the node was restarted"
if topo exec --lab vmnm c -- busybox awk 'BEGIN { s = sprintf("%100000000s", ""); print length(s) }'; then
    fail "a 100 MB allocation succeeded after a 32 MiB limit was added"
fi
topo down --lab vmnm
echo "CGROUP-V2 OK"
