#!/bin/bash
# netem: the kernel side of link impairment (`impair: {delay, jitter, loss, rate}`), checked
# on Debian 12's stock kernel.
#
# PLACEHOLDER FOR TOPO: topo does not apply `impair:` yet, so this case checks only the
# KERNEL capability that feature will rely on: a netem qdisc on a veth between two network
# namespaces adds its delay to the round trip. When impairment lands in topo, extend it to
# drive `topo up` with an `impair: {delay: 50ms}` link and assert on the measured RTT and on
# `tc qdisc show` in the node namespaces (and that `topo down` leaves nothing).
set -euo pipefail

NS1=vmtest-netem1
NS2=vmtest-netem2

fail() { echo "FAIL: $*"; exit 1; }
cleanup() { ip netns del "$NS1" 2>/dev/null || true; ip netns del "$NS2" 2>/dev/null || true; }
trap cleanup EXIT

# Minimum RTT in ms, from iputils' "rtt min/avg/max/mdev = 0.05/0.06/0.08/0.01 ms" (or
# busybox's "round-trip min/avg/max = ...").
min_rtt_ms() {
    ip netns exec "$NS1" ping -c 3 -i 0.2 -W 2 192.0.2.2 | tee /dev/stderr \
        | sed -n 's|.*min/avg/max[/a-z]* = \([0-9.]*\)/.*|\1|p'
}

echo "kernel $(uname -r)"
if [[ ! -d /sys/module/sch_netem ]] && ! modprobe sch_netem 2>/dev/null; then
    echo "skipping: kernel has no sch_netem"; exit 0
fi

ip netns add "$NS1"
ip netns add "$NS2"
ip link add eth0 netns "$NS1" type veth peer name eth0 netns "$NS2"
ip -n "$NS1" addr add 192.0.2.1/24 dev eth0
ip -n "$NS2" addr add 192.0.2.2/24 dev eth0
for ns in "$NS1" "$NS2"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
done

before=$(min_rtt_ms) || fail "ping without netem failed"
tc -n "$NS1" qdisc add dev eth0 root netem delay 50ms
tc -n "$NS1" qdisc show dev eth0
tc -n "$NS1" qdisc show dev eth0 | grep -q 'netem.*delay 50ms' || fail "netem qdisc not installed"
after=$(min_rtt_ms) || fail "ping with netem failed"

echo "min RTT without netem: ${before} ms, with 50 ms netem on one side: ${after} ms"
# One direction delayed by 50 ms: the round trip grows by 50 ms (TCG adds a little noise).
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a - b >= 45 && a < 150) }' \
    || fail "RTT ${after} ms is not about 50 ms more than ${before} ms"
echo "NETEM OK"
