#!/bin/bash
# What a step of `topo test` costs beyond the command it runs, beside entering the node by
# hand: the median time of an `exec: "true"` step against `nsenter -a -t INIT --net=NETNS
# true`, and of a `ping` step against `ip netns exec NS ping -c1 -W1`, REPS of each in one run
# on a two-node lab (the steps' times from `topo test -o json`, the others timed around each command).
#
# usage: bench/steps.sh [REPS]     (as root; default 50; TOPO=path uses that binary)
# Leaves nothing behind: the lab is named bnsteps and brought down by an exit trap.
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
reps=${1:-50}
topo=${TOPO:-}
if [ -z "$topo" ]; then
  topo=$(cd "$root" && cargo build --release -q --bins --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/topo"' | tail -n 1 | cut -d'"' -f4) || exit 2
fi
for tool in nsenter ping jq; do
  command -v "$tool" >/dev/null || { echo "bench: needs $tool" >&2; exit 2; }
done
dir=$(mktemp -d)
trap '"$topo" down --lab bnsteps --missing-ok --discard-logs >/dev/null 2>&1; rm -rf "$dir"' EXIT
{
  printf 'name: bnsteps\nnodes:\n'
  printf '  a: {interfaces: {eth1: {addresses: [192.0.2.1/24]}}}\n'
  printf '  b: {interfaces: {eth1: {addresses: [192.0.2.2/24]}}}\n'
  printf 'links:\n  - endpoints: [a:eth1, b:eth1]\ntests:\n'
  for i in $(seq "$reps"); do
    printf '  - {name: exec %s, node: b, exec: "true"}\n' "$i"
    printf '  - {name: ping %s, node: b, ping: 192.0.2.1}\n' "$i"
  done
} > "$dir/lab.yaml"
"$topo" up "$dir/lab.yaml" >/dev/null || exit 1
"$topo" test "$dir/lab.yaml" -o json > "$dir/report.json" 2>/dev/null || { echo "bench: topo test failed" >&2; exit 1; }
init=$("$topo" status --lab bnsteps -o json | jq -r '.nodes[] | select(.name == "b") | .init_pid')
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }'; }
: > "$dir/nsenter"; : > "$dir/ipping"
for _ in $(seq "$reps"); do
  t0=$(date +%s%N); nsenter -a -t "$init" --net=/run/netns/bnsteps-b /bin/sh -c true; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$dir/nsenter"
  t0=$(date +%s%N); ip netns exec bnsteps-b ping -c1 -W1 -q 192.0.2.1 >/dev/null; t1=$(date +%s%N)
  ms "$t0" "$t1" >> "$dir/ipping"
done
jq -r '.steps[] | select(.kind == "exec") | .seconds * 1000' "$dir/report.json" > "$dir/exec"
jq -r '.steps[] | select(.kind == "ping") | .seconds * 1000' "$dir/report.json" > "$dir/ping"
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
printf 'topo test step costs, %s reps, %s cores, load %s\n' "$reps" "$(nproc)" "$load"
printf '%-34s %10s\n' "what" "median ms"
printf '%-34s %10.2f\n' 'exec step: /bin/sh -c true' "$(median "$dir/exec")"
printf '%-34s %10.2f\n' 'nsenter -a -t INIT sh -c true' "$(median "$dir/nsenter")"
printf '%-34s %10.2f\n' 'ping step (one echo)' "$(median "$dir/ping")"
printf '%-34s %10.2f\n' 'ip netns exec NS ping -c1' "$(median "$dir/ipping")"
