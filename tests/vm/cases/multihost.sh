#!/bin/bash
# multihost: one lab on two machines. Both VMs of a pair read the same file; VM a runs the
# share of host `left` (198.51.100.1), VM b that of host `right` (198.51.100.2):
#
#   h1 --veth-- r1 ==tunnel 1001== r2 --veth-- h2       routed: 192.0.2.0/26 -> 192.0.2.64/26
#   left          |     left|right      |      right     (IPv6 2001:db8:1::/64 -> 2001:db8:2::/64)
#   h1:eth1 ==== bridge lan (vx-lan on each host) ==== h2:eth1   203.0.113.0/24, 2001:db8:5::/64
#
# Each VM: `topo up FILE --host NAME`; a cross-host link's end in the node is a veth (MTU
# 1450) stitched in the bridge namespace to a VXLAN (VNI, UDP port 14789, remote = the other
# host, no learning), and the node holds no VXLAN; pings of both families end to end
# over the routed path and across the bridge; `plan` finds nothing to do; a TCP transfer
# h1 -> h2 arrives whole. Left alone: an impairment on r1:eth1 (a second `up` of a changed
# file) adds its 100 ms to the RTT; then left's `down`. Right: its share still runs, its
# `plan` reports the cross-host link whose peer (r1:eth1) no longer answers; then its `down`.
# vm-pair
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../pair.sh
. /vmtest/pair.sh

LAB=mvmwan
FILE=/root/lab.yaml
if [[ $VMTEST_ROLE == a ]]; then HOST=left; else HOST=right; fi

step() { printf '\n== %s: %s\n' "$HOST" "$*"; }
fail() { echo "FAIL ($HOST): $*"; exit 1; }
ns() { echo "$LAB-$1"; }

lab_file() {  # lab_file [IMPAIR-LINE]
    cat <<EOF
name: $LAB
hosts:
  left: {address: 198.51.100.1}
  right: {address: 198.51.100.2}
groups:
  router: {sysctls: {net.ipv4.ip_forward: 1, net.ipv6.conf.all.forwarding: 1}}
nodes:
  h1:
    host: left
    interfaces:
      eth0: {addresses: [192.0.2.10/26, "2001:db8:1::10/64"]}
      eth1: {addresses: [203.0.113.1/24, "2001:db8:5::1/64"]}
    routes: [{to: default, via: 192.0.2.1}, {to: "::/0", via: "2001:db8:1::1"}]
  r1:
    host: left
    group: router
    interfaces:
      eth0: {addresses: [192.0.2.1/26, "2001:db8:1::1/64"]}
      eth1: {addresses: [192.0.2.253/30, "2001:db8:12::1/64"]}
    routes: [{to: 192.0.2.64/26, via: 192.0.2.254}, {to: "2001:db8:2::/64", via: "2001:db8:12::2"}]
  r2:
    host: right
    group: router
    interfaces:
      eth0: {addresses: [192.0.2.65/26, "2001:db8:2::1/64"]}
      eth1: {addresses: [192.0.2.254/30, "2001:db8:12::2/64"]}
    routes: [{to: 192.0.2.0/26, via: 192.0.2.253}, {to: "2001:db8:1::/64", via: "2001:db8:12::1"}]
  h2:
    host: right
    interfaces:
      eth0: {addresses: [192.0.2.70/26, "2001:db8:2::10/64"]}
      eth1: {addresses: [203.0.113.2/24, "2001:db8:5::2/64"]}
    routes: [{to: default, via: 192.0.2.65}, {to: "::/0", via: "2001:db8:2::1"}]
links:
  - endpoints: [h1:eth0, r1:eth0]
  - endpoints: [r1:eth1, r2:eth1]
    vni: 1001
${1:-}
  - endpoints: [r2:eth0, h2:eth0]
bridges:
  lan: {members: [h1:eth1, h2:eth1]}
EOF
}

# reach NS ADDR: the first answer may take a while (ARP over the tunnel, IPv6 DAD, the other
# VM still coming up); then three pings.
reach() {
    for _ in $(seq 1 60); do
        ip netns exec "$1" ping -c 1 -W 1 "$2" >/dev/null 2>&1 && break
    done
    ip netns exec "$1" ping -c 3 -i 0.2 -W 2 "$2" || fail "$1 cannot reach $2"
}

# min_rtt NS ADDR: the lowest of 5 RTTs, in ms.
min_rtt() {
    ip netns exec "$1" ping -c 5 -i 0.2 -W 2 "$2" |
        sed -n 's|.*min/avg/max/mdev = \([0-9.]*\)/.*|\1|p'
}

namespaces() { ip netns list | awk '{print $1}' | grep -E "^${LAB}[-.]" | sort || true; }

# After down: no namespace, run directory or VXLAN of the lab left on this host.
nothing_left() {
    local left
    left=$(namespaces)
    [[ -z $left ]] || fail "namespaces left after down: $left"
    [[ ! -e /run/topo/$LAB ]] || fail "run directory left: /run/topo/$LAB"
    [[ -z $(ip link show type vxlan) ]] || fail "a VXLAN is left in the root namespace"
}

lab_file >"$FILE"
step "kernel $(uname -r), topo $(topo --version), underlay $VMTEST_ADDR, peer $VMTEST_PEER"
topo validate "$FILE" --host "$HOST"

step "topo up --host $HOST"
topo up "$FILE" --host "$HOST"
namespaces
if [[ $HOST == left ]]; then mine=(h1 r1) theirs=(h2 r2) router=r1 peer_label=r2:eth1
else mine=(h2 r2) theirs=(h1 r1) router=r2 peer_label=r1:eth1; fi
spaces=$(namespaces)
for n in "${mine[@]}"; do grep -qx "$(ns "$n")" <<<"$spaces" || fail "no namespace for $n"; done
for n in "${theirs[@]}"; do
    ! grep -qx "$(ns "$n")" <<<"$spaces" || fail "a namespace for $n, which runs on the other host"
done
vm_barrier up

step "the cross-host link: a veth in $router, stitched to VXLAN 1001 in the bridge namespace"
end=$(ip -d -n "$(ns $router)" link show eth1)
echo "$end"
grep -q "veth" <<<"$end" || fail "$router:eth1 is not a veth"
grep -q " mtu 1450 " <<<"$end" || fail "$router:eth1 does not have MTU 1450 (1500 - 50)"
grep -q "alias topo/$LAB vxlan " <<<"$end" || fail "$router:eth1 has no topo marker"
[[ -z $(ip -n "$(ns $router)" link show type vxlan) ]] || fail "$router holds a VXLAN"
vx=$(ip -d -n "$LAB.br" link show V1001)
echo "$vx"
grep -q "vxlan id 1001 remote $VMTEST_PEER local $VMTEST_ADDR .*dstport 14789" <<<"$vx" ||
    fail "V1001 is not VXLAN 1001 to $VMTEST_PEER, UDP port 14789"
grep -q "nolearning" <<<"$vx" || fail "V1001 learns addresses"
grep -q "master X1001" <<<"$vx" || fail "V1001 is not a port of X1001"
grep -q "master X1001" <<<"$(ip -n "$LAB.br" link show "$router.eth1")" ||
    fail "$router:eth1's peer is not a port of X1001"

step "the bridge lan: one VXLAN port, flooding to the other host"
vxl=$(ip -d -n "$LAB.br" link show vx-lan)
echo "$vxl"
grep -q "vxlan id .* local $VMTEST_ADDR .*dstport 14789" <<<"$vxl" ||
    fail "vx-lan is not a VXLAN from $VMTEST_ADDR on UDP port 14789"
grep -q "master lan" <<<"$vxl" || fail "vx-lan is not a port of lan"
fdb=$(bridge -n "$LAB.br" fdb show dev vx-lan)
echo "$fdb"
grep -q "^00:00:00:00:00:00 dst $VMTEST_PEER " <<<"$fdb" ||
    fail "vx-lan has no all-zero FDB entry to $VMTEST_PEER"
member=$(ip -n "$(ns "${mine[0]}")" link show eth1)
grep -q " mtu 1450 " <<<"$member" || fail "${mine[0]}:eth1, a member of lan, does not have MTU 1450"

step "pings across the hosts"
if [[ $HOST == left ]]; then
    reach "$(ns h1)" 192.0.2.70        # routed: h1 r1 =vxlan= r2 h2
    reach "$(ns h1)" 2001:db8:2::10
    reach "$(ns h1)" 203.0.113.2       # bridged
    reach "$(ns h1)" 2001:db8:5::2
else
    reach "$(ns h2)" 192.0.2.10
    reach "$(ns h2)" 2001:db8:1::10
    reach "$(ns h2)" 203.0.113.1
    reach "$(ns h2)" 2001:db8:5::1
fi
far6=2001:db8:2::10
[[ $HOST == left ]] || far6=2001:db8:1::10
route=$(ip -n "$(ns $router)" -6 route get "$far6")
grep -q " dev eth1 " <<<"$route" || fail "the routed path does not leave $router by the tunnel"

step "topo plan: both ends answer, nothing to do"
out=$(topo plan "$FILE" --host "$HOST" 2>&1) || fail "plan failed: $out"
echo "$out"
! grep -q "no answer" <<<"$out" || fail "plan says a peer does not answer while both are up"
grep -q "no changes" <<<"$out" || fail "plan of a share that is up wants changes"

step "TCP h1 -> h2 across the hosts"
if [[ $HOST == right ]]; then
    # The receiver's standard input never ends (busybox nc closes the connection when it
    # does, possibly before the sender is through): a FIFO this shell holds open.
    mkfifo /root/hold
    exec 3<>/root/hold
    ip netns exec "$(ns h2)" nc -l -p 5001 <&3 >/root/received &
    listener=$!
    # Listening (port 5001 = 0x1389, state 0A) before the sender is let go.
    for _ in $(seq 1 100); do
        grep -q ":1389 00000000:0000 0A" <<<"$(ip netns exec "$(ns h2)" cat /proc/net/tcp)" && break
        sleep 0.1
    done
    vm_barrier tcp-listen
    for _ in $(seq 1 600); do kill -0 "$listener" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$listener" 2>/dev/null; then
        kill "$listener"
        fail "h2 received $(wc -c </root/received) bytes and no end in 120 s"
    fi
    wait "$listener" || fail "the receiver in h2 failed"
    exec 3>&-
    our_sum="$(($(wc -c </root/received))):$(md5sum </root/received | cut -d' ' -f1)"
    their_sum=$(vm_exchange tcp-done "$our_sum")
    sent=$their_sum received=$our_sum
else
    seq 1 60000 >/root/sent   # 348894 bytes
    our_sum="$(($(wc -c </root/sent))):$(md5sum </root/sent | cut -d' ' -f1)"
    vm_barrier tcp-listen
    ip netns exec "$(ns h1)" nc 192.0.2.70 5001 </root/sent || fail "the sender in h1 failed"
    their_sum=$(vm_exchange tcp-done "$our_sum")
    sent=$our_sum received=$their_sum
fi
echo "bytes:md5 sent $sent, received $received"
[[ $sent == "$received" ]] || fail "h1 sent $sent, h2 received $received (bytes:md5)"

if [[ $HOST == left ]]; then
    step "impair r1:eth1 (delay 100ms) with a second up of a changed file"
    base=$(min_rtt "$(ns h1)" 192.0.2.70)
    lab_file "    impair: {r1:eth1: {delay: 100ms}}" >"$FILE"
    topo up "$FILE" --host left
    qdisc=$(tc -n "$(ns r1)" qdisc show dev eth1)
    echo "$qdisc"
    grep -q "netem .*delay 100ms" <<<"$qdisc" || fail "no netem delay on r1:eth1"
    slow=$(min_rtt "$(ns h1)" 192.0.2.70)
    echo "min RTT h1 -> h2: $base ms, impaired $slow ms"
    awk -v a="$slow" -v b="$base" 'BEGIN { d = a - b; exit !(d >= 80 && d <= 300) }' ||
        fail "delay 100ms on r1:eth1 changed the RTT from $base to $slow ms"
fi
vm_barrier impaired

if [[ $HOST == left ]]; then
    step "topo down (left's share)"
    topo down --lab "$LAB" --wait
    nothing_left
    vm_barrier left-down
    echo "MULTIHOST OK (left)"
    exit 0
fi

vm_barrier left-down
step "right's share runs on without left"
# The processes that are in namespace $1 or hold it on descriptor 3 (a node's init, which
# lives outside its node's namespace).
holders() {
    local want pid f
    want=$(stat -L -c '%d %i' "/run/netns/$1")
    for pid in /proc/[0-9]*; do
        for f in "$pid/ns/net" "$pid/fd/3"; do
            if [[ $(stat -L -c '%d %i' "$f" 2>/dev/null) == "$want" ]]; then
                echo "${pid#/proc/}"
                break
            fi
        done
    done
}
for n in h2 r2; do
    pids=$(holders "$(ns "$n")")
    [[ -n $pids ]] || fail "no process left in $n"
done
[[ -e /run/netns/$LAB.br ]] || fail "the bridge namespace is gone"
reach "$(ns h2)" 192.0.2.65
ip -n "$(ns r2)" link show eth1 >/dev/null || fail "r2:eth1 is gone"
grep -q "vxlan id 1001" <<<"$(ip -d -n "$LAB.br" link show V1001)" || fail "V1001 is gone"

step "topo plan: the peer of the cross-host link does not answer"
out=$(topo plan "$FILE" --host right 2>&1) || echo "(plan exited $?)"
echo "$out"
grep -Eq "$peer_label.*no answer|no answer.*$peer_label" <<<"$out" ||
    fail "plan does not report that $peer_label (on host left) does not answer"

step "topo down (right's share)"
topo down "$FILE" --host right --wait
nothing_left
echo "MULTIHOST OK (right)"
