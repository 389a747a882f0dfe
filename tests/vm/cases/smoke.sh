#!/bin/bash
# smoke: topo's whole life cycle on Debian 12's stock kernel. Runs as root inside the VM
# (tests/vm/run.sh boots it): validate, up, a ping across the link, veths with one queue
# and chosen interface indexes (a second link added next to someone else's), static routes of both
# families in place, a second up that changes nothing (its route dump is filtered by this
# kernel, which must still return topo's routes), down, and then nothing of the lab left in
# the kernel: no namespace, no interface, no mount, no process, no run directory.
set -euo pipefail

LAB=vmsmoke
FILE=/root/smoke.yaml

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }

# PIDs and command lines of processes running topo's programs (node inits and helpers are
# topo-core).
topo_processes() {
    local d exe
    for d in /proc/[0-9]*; do
        exe=$(readlink "$d/exe" 2>/dev/null) || continue
        if [[ ${exe%" (deleted)"} == */topo || ${exe%" (deleted)"} == */topo-core ]]; then
            echo "${d#/proc/} $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
        fi
    done
}

# Interfaces of the root namespace, by name. Not just lo: loading dummy and ifb at boot
# creates dummy0, ifb0 and ifb1.
root_links() { ip -o link show | awk -F': ' '{print $2}' | sort; }

cat >"$FILE" <<EOF
name: $LAB
nodes:
  a:
    interfaces: {eth0: {addresses: [192.0.2.1/24, 2001:db8:1::1/64]}}
    routes:
      - {to: 198.51.100.0/24, via: 192.0.2.2}
      - {to: 2001:db8:99::/48, via: 2001:db8:1::2}
  b: {interfaces: {eth0: {addresses: [192.0.2.2/24, 2001:db8:1::2/64]}}}
links:
  - endpoints: [a:eth0, b:eth0]
EOF

step "kernel $(uname -r), topo $(topo --version)"

links_before=$(root_links)

step "topo validate"
topo validate "$FILE"

step "topo up"
topo up "$FILE"
ip netns list
[[ $(ip netns list | grep -c "^$LAB-") == 2 ]] || fail "expected 2 namespaces $LAB-a and $LAB-b"
procs=$(topo_processes)
echo "$procs"
[[ -n $procs ]] || fail "no node process after up (the process check below would prove nothing)"

step "ping a -> b across the veth"
ip -n "$LAB-a" -br addr show dev eth0
ip netns exec "$LAB-a" ping -c 3 -i 0.2 -W 2 192.0.2.2 || fail "a cannot reach b"
ip netns exec "$LAB-b" ping -c 1 -W 2 192.0.2.1 || fail "b cannot reach a"

step "veth ends: one queue each way, and indexes above what their namespace holds"
ip -d -n "$LAB-a" link show eth0 | grep -q "numtxqueues 1 numrxqueues 1" ||
    fail "a:eth0 does not have one queue each way"
# Someone else's pair in b at indexes 7 and 8; a second link then gives b:eth1 the next, 9
# (the kernel alone would give it 3), with the request sent in a's namespace.
ip -n "$LAB-b" link add vmx0 index 7 type veth peer name vmx1 index 8
echo "  - endpoints: [a:eth1, b:eth1]" >>"$FILE"
topo up "$FILE"
idx=$(ip -n "$LAB-b" -o link show eth1 | cut -d: -f1)
[[ $idx == 9 ]] || fail "b:eth1 has index $idx, not 9"
ip -n "$LAB-b" -o link show vmx0 | grep -q "^7: " || fail "the foreign pair was touched"

step "static routes of both families, marked as topo's"
ip -n "$LAB-a" route show proto 200 | grep -q "^198.51.100.0/24 via 192.0.2.2" ||
    fail "the IPv4 route is missing"
ip -n "$LAB-a" -6 route show proto 200 | grep -q "^2001:db8:99::/48 via 2001:db8:1::2" ||
    fail "the IPv6 route is missing"

step "topo up again: no changes"
out=$(topo up "$FILE")
echo "$out"
[[ $out == *"no changes"* ]] || fail "second up was not a no-op"

step "topo down"
topo down "$FILE"

step "nothing left"
left=$(ip netns list)
[[ -z $left ]] || fail "namespaces left: $left"
# The killed processes end after `down` returns; its reaper removes the run directory
# once they have.
for _ in $(seq 100); do
    [[ -e /run/topo/$LAB ]] || break
    sleep 0.1
done
procs=$(topo_processes)
[[ -z $procs ]] || fail "processes left: $procs"
links=$(root_links | grep -vxF -f <(echo "$links_before") || true)
[[ -z $links ]] || fail "interfaces left in the root namespace: $links"
mounts=$(grep " /run/netns/$LAB" /proc/mounts || true)
[[ -z $mounts ]] || fail "namespace mounts left: $mounts"
[[ ! -e /run/topo/$LAB ]] || fail "run directory left: /run/topo/$LAB"
echo "SMOKE OK"
