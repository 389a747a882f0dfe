#!/bin/bash
# The kernel floor: the same N namespaces and N-1 veth pairs as the chain, created by ONE
# `ip -batch` process (no addresses, no processes per node). Nothing a tool does can avoid this work.
# usage: floor-chain.sh N    prints: peer=floor n=N up_s=X down_s=Y
#                            stderr: # peer=floor n=N kmem_kb=K  (kernel memory held while up)
# env:   PREFIX  namespace name prefix (default flr; bench/run.sh uses bnf)
set -u
n=$1 p=${PREFIX:-flr}
b=$(mktemp); trap 'rm -f "$b"' EXIT
now() { date +%s.%N; }
# Slab + KernelStack + PageTables + Percpu, kB: what namespaces and veths cost the kernel
# (machine-wide, so other activity adds noise; not timed)
kmem() { awk '/^(Slab|KernelStack|PageTables|Percpu):/ {s += $2} END {print s}' /proc/meminfo; }
for ((i=0;i<n;i++)); do echo "netns add $p$i"; done >"$b"
for ((i=0;i<n-1;i++)); do echo "link add e1 netns $p$i type veth peer name e0 netns $p$((i+1))"; done >>"$b"
k0=$(kmem)
s=$(now); ip -batch "$b" >/dev/null; u=$(now)
k1=$(kmem)
for ((i=0;i<n;i++)); do echo "netns del $p$i"; done >"$b"
s2=$(now); ip -batch "$b" >/dev/null; d=$(now)
echo "peer=floor n=$n up_s=$(echo "$u - $s" | bc) down_s=$(echo "$d - $s2" | bc)"
echo "# peer=floor n=$n kmem_kb=$((k1 - k0))" >&2
