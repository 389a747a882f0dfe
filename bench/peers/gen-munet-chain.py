#!/usr/bin/env python3
"""Write a munet config (YAML) for a linear chain of N nodes to stdout.

Node i is r<i>; the link i <-> i+1 is a munet p2p connection (a veth pair, no
bridge) with interfaces r<i>:eth1 and r<i+1>:eth0 and one /31 per link, using the
same addressing as iproute2-chain.sh:
    o = 2*i ; left = 10.(o>>16).(o>>8 & 255).(o & 255)/31 ; right = left + 1
Loopback is brought up by munet for every node.

usage: gen-munet-chain.py N > chain.yaml      (env PREFIX: node name prefix, default r)
"""
import os
import sys

PREFIX = os.environ.get("PREFIX", "r")


def addr(o):
    return f"10.{(o >> 16) & 255}.{(o >> 8) & 255}.{o & 255}"


def main():
    n = int(sys.argv[1])
    if n < 2:
        sys.exit("N must be >= 2")
    out = ["version: 1", "topology:", "  nodes:"]
    for i in range(n):
        out.append(f"  - name: {PREFIX}{i}")
        out.append("    connections:")
        if i > 0:  # link (i-1) <-> i, we are the right side
            out.append(f"    - {{to: {PREFIX}{i - 1}, name: eth0, ip: {addr(2 * (i - 1) + 1)}/31}}")
        if i < n - 1:  # link i <-> (i+1), we are the left side
            out.append(f"    - {{to: {PREFIX}{i + 1}, name: eth1, ip: {addr(2 * i)}/31}}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
