#!/bin/bash
# userns: the user-namespace defaults on Debian 12's stock kernel (6.1). Every node gets its
# own user namespace (root is an unprivileged host id range). The VM's root file system is a
# tmpfs, which kernels before 6.3 cannot idmap: a bind from it then falls back to a plain
# bind, whose files show as nobody (65534) in the node and are readable only by their
# "other" bits; from 6.3 on the bind is idmapped and host root's files are node root's.
# Either way `:ro` holds, node root configures its own interfaces and cannot reach the
# neighbour's namespace, and down leaves nothing.
set -euo pipefail

LAB=vmuserns
FILE=/root/userns.yaml
DATA=/root/userns-data

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$DATA"
echo public >"$DATA/public"
chmod 644 "$DATA/public"
echo secret >"$DATA/secret"
chmod 600 "$DATA/secret"

cat >"$FILE" <<EOF
name: $LAB
nodes:
  a:
    interfaces: {eth0: {addresses: [192.0.2.1/24]}}
    binds: ['$DATA:/run/data:ro']
  b: {interfaces: {eth0: {addresses: [192.0.2.2/24]}}}
links:
  - endpoints: [a:eth0, b:eth0]
EOF

kernel=$(uname -r)
step "kernel $kernel, topo $(topo --version)"
major=${kernel%%.*}
rest=${kernel#*.}
minor=${rest%%[!0-9]*}
idmap_tmpfs=no
if ((major > 6 || (major == 6 && minor >= 3))); then idmap_tmpfs=yes; fi
echo "tmpfs can be idmapped: $idmap_tmpfs"

step "topo up"
topo up "$FILE"

step "node root is an unprivileged host id range"
map=$(topo exec --lab "$LAB" a -- cat /proc/self/uid_map | tr -s ' ' | sed 's/^ //')
echo "uid_map: $map"
[[ $map == "0 "* && $map != "0 0 4294967295" ]] || fail "a has no user namespace of its own"
host_uid=$(awk '/^Uid:/ {print $2}' "/proc/$(topo status --lab "$LAB" -o json |
    grep -o '"init_pid": *[0-9]*' | head -1 | grep -o '[0-9]*$')/status")
((host_uid >= 65536)) || fail "a's init runs as host uid $host_uid"

step "node root configures its own interface"
topo exec --lab "$LAB" a -- ip addr add 192.0.2.101/24 dev eth0 || fail "ip addr add in a"
ip -n "$LAB-a" -br addr show dev eth0 | grep -q 192.0.2.101 || fail "address not in the kernel"
ip netns exec "$LAB-a" ping -c 2 -i 0.2 -W 2 192.0.2.2 || fail "a cannot reach b"

step "the bind from the VM's tmpfs"
owner=$(topo exec --lab "$LAB" a -- stat -c %u /run/data/public)
echo "owner of public in the node: $owner"
[[ $(topo exec --lab "$LAB" a -- cat /run/data/public) == public ]] || fail "public unreadable"
if [[ $idmap_tmpfs == yes ]]; then
    [[ $owner == 0 ]] || fail "idmapped: expected owner 0, got $owner"
    [[ $(topo exec --lab "$LAB" a -- cat /run/data/secret) == secret ]] ||
        fail "idmapped: node root cannot read host root's 0600 file"
else
    [[ $owner == 65534 ]] || fail "fallback: expected owner 65534 (nobody), got $owner"
    if topo exec --lab "$LAB" a -- cat /run/data/secret; then
        fail "fallback: node root read host root's 0600 file"
    fi
fi
if topo exec --lab "$LAB" a -- sh -c 'echo x > /run/data/new'; then
    fail ":ro bind took a write"
fi
[[ ! -e $DATA/new ]] || fail "a file appeared on the host through the :ro bind"

step "topo down"
topo down --lab "$LAB" --wait
[[ -z $(ip netns list | grep "^$LAB-" || true) ]] || fail "namespaces left"
[[ ! -e /run/topo/$LAB ]] || fail "run directory left"
echo "USERNS OK"
