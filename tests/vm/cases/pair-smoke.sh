#!/bin/bash
# pair-smoke: the two-VM harness itself, no topo. Runs in both VMs of a pair (run.sh joins
# them by a virtual network): the underlay (eth0, 198.51.100.1/24 and .2/24) carries pings
# both ways, the barrier helpers meet and exchange a word, and a VXLAN made by hand with
# iproute2 (VNI 42, UDP port 14789) carries IPv4 and IPv6 pings between the VMs.
# vm-pair
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../pair.sh
. /vmtest/pair.sh

step() { printf '\n== %s: %s\n' "$VMTEST_ROLE" "$*"; }
fail() { echo "FAIL ($VMTEST_ROLE): $*"; exit 1; }

step "underlay: $VMTEST_ADDR, peer $VMTEST_PEER"
ip -br addr show dev eth0
ip -br addr show dev eth0 | grep -q " $VMTEST_ADDR/24" || fail "eth0 does not have $VMTEST_ADDR/24"

# The other VM may still be booting: wait for it, then meet it.
for _ in $(seq 1 120); do
    ping -c 1 -W 1 "$VMTEST_PEER" >/dev/null 2>&1 && break
done
peer_role=$(vm_exchange roles "$VMTEST_ROLE")
[[ $VMTEST_ROLE$peer_role == ab || $VMTEST_ROLE$peer_role == ba ]] ||
    fail "the other VM says it is '$peer_role'"

step "underlay ping to $VMTEST_PEER"
ping -c 3 -i 0.2 -W 2 "$VMTEST_PEER" || fail "no answer from $VMTEST_PEER on the underlay"

step "VXLAN 42 by hand"
n=${VMTEST_ADDR##*.}      # 1 or 2
m=${VMTEST_PEER##*.}
ip link add vx42 type vxlan id 42 dstport 14789 local "$VMTEST_ADDR" remote "$VMTEST_PEER" dev eth0
ip addr add "192.0.2.$n/24" dev vx42
ip addr add "2001:db8:42::$n/64" dev vx42 nodad
ip link set vx42 up
ip -d link show vx42
ip -d link show vx42 | grep -q "vxlan id 42 remote $VMTEST_PEER local $VMTEST_ADDR .*dstport 14789" ||
    fail "vx42 is not the VXLAN asked for"
vm_barrier vxlan-up

step "pings through the VXLAN"
ping -c 3 -i 0.2 -W 2 "192.0.2.$m" || fail "no IPv4 answer through the VXLAN"
ping -6 -c 3 -i 0.2 -W 2 "2001:db8:42::$m" || fail "no IPv6 answer through the VXLAN"
rx=$(cat /sys/class/net/vx42/statistics/rx_packets)
((rx >= 6)) || fail "vx42 received $rx packets; the pings did not come through it"
# Neither VM powers off while the other still pings it.
vm_barrier end
echo "PAIR-SMOKE OK"
