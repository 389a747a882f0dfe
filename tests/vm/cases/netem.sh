#!/bin/bash
# netem: link impairment through topo on Debian 12's stock kernel (which has sch_netem):
# a 50 ms delay on one end adds about 50 ms to the RTT (on both ends: 100 ms), loss: 30%
# drops roughly that share of 100 pings, jitter widens the RTT spread, and a changed
# impairment is applied in place (same qdisc handle, same ifindex); removing it removes it.
# vm-options: --timeout 400
set -euo pipefail

fail() { echo "FAIL: $*"; exit 1; }
echo "kernel $(uname -r)"
if [[ ! -d /sys/module/sch_netem ]] && ! modprobe sch_netem 2>/dev/null; then
    echo "skipping: kernel has no sch_netem"; exit 0
fi

dir=$(mktemp -d)
lab() {  # lab IMPAIR-LINE: writes and applies the topology
    cat >"$dir/lab.yaml" <<YAML
name: vmnem
nodes:
  a: {interfaces: {eth0: {addresses: [192.0.2.1/24]}}}
  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}
links:
  - endpoints: [a:eth0, b:eth0]
$1
YAML
    topo up "$dir/lab.yaml" >/dev/null
}
trap 'topo down --lab vmnem >/dev/null 2>&1 || true' EXIT
# "rtt min/avg/max/mdev = 0.05/0.06/0.08/0.01 ms" -> field N (1 min, 2 avg, 4 mdev)
rtt() { ip netns exec vmnem-a ping -c "$1" -i 0.05 -W 2 192.0.2.2 | sed -n "s|.*min/avg/max/mdev = \([0-9./]*\) ms|\1|p" | cut -d/ -f"$2"; }
within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

lab ""
base=$(rtt 5 1); echo "no impairment: min RTT $base ms"

lab "    impair: {a:eth0: {delay: 50ms}}"
one=$(rtt 5 1); echo "50 ms on a:eth0: min RTT $one ms"
tc -n vmnem-a qdisc show dev eth0 | grep -q "netem.*delay 50ms" || fail "no netem qdisc: $(tc -n vmnem-a qdisc show dev eth0)"
within "$(awk -v a="$one" -v b="$base" 'BEGIN { print a - b }')" 45 60 || fail "one-way 50 ms added $one - $base ms"
idx_before=$(ip -n vmnem-a -o link show eth0 | cut -d: -f1)

lab "    impair: {delay: 50ms}"
both=$(rtt 5 1); echo "50 ms both ways: min RTT $both ms"
within "$(awk -v a="$both" -v b="$base" 'BEGIN { print a - b }')" 95 115 || fail "two-way 50 ms added $both - $base ms"
[[ $(ip -n vmnem-a -o link show eth0 | cut -d: -f1) == "$idx_before" ]] || fail "relinked"

lab "    impair: {loss: 30%}"
lost=$(ip netns exec vmnem-a ping -c 100 -i 0.02 -W 1 192.0.2.2 | sed -n 's/.* \([0-9]*\) received.*/\1/p')
lost=$((100 - lost))
echo "loss 30% both ways: $lost of 100 pings lost"
# Both directions at 30%: a round trip survives with 0.49, so about 51 lost; allow a wide band.
(( lost >= 30 && lost <= 72 )) || fail "lost $lost of 100"

lab "    impair: {a:eth0: {delay: 20ms}}"
steady=$(rtt 30 4); echo "20 ms, no jitter: mdev $steady ms"
lab "    impair: {a:eth0: {delay: 20ms, jitter: 10ms}}"
spread=$(rtt 30 4); echo "20 ms, jitter 10 ms: mdev $spread ms"
awk -v s="$spread" -v t="$steady" 'BEGIN { exit !(s > t + 2) }' || fail "jitter did not widen the spread ($steady -> $spread)"

lab ""
tc -n vmnem-a qdisc show dev eth0 | grep -q netem && fail "netem left after removing impair"
topo plan "$dir/lab.yaml" | grep -q "no changes" || fail "plan not empty"
topo down --lab vmnem
echo "NETEM OK"
