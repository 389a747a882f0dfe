#!/usr/bin/python3
"""Peer benchmark: Mininet (Debian's mininet 2.3.0, through its Python API) building a
linear chain of N hosts and tearing it down.

Each host is a Mininet Host (a shell in its own network namespace), host i and host
i+1 are joined directly by a Mininet Link (a veth pair): no switches, no bridges, no
controller. One /31 per link, with the same addressing as iproute2-chain.sh:
    o = 2*i ; left = 10.(o>>16).(o>>8 & 255).(o & 255)/31 ; right = left + 1
Hosts are created with ip=None (no default 10.x/8 address); Mininet brings lo up in
build() (configHosts). Hosts are named mc0..mc<N-1>, interfaces mc<i>-eth<k>.

  up_s   = Mininet() + N addHost + N-1 addLink + build() + start() + setIP on every
           link end (everything until the chain is addressed and up)
  down_s = net.stop()
Between the two (not timed) it pings across the first and the last link.

usage: mininet-chain.py N
prints: peer=mininet n=N up_s=X down_s=Y           (stdout, one line)
        # peer=mininet n=N ... maxrss_kb=...        (stderr, extra figures)
exit:   0 ok; 1 topology did not come up / go down cleanly / left something; 2 error
env:    MN_LOGLEVEL  Mininet log level (default: warning)
        PREFIX       host name prefix (default: mc)

Note: Mininet() calls Mininet.init() -> fixLimits(), which raises some host sysctls
(fs.file-max, net.core.*mem_max, neigh gc_thresh*, ...) and rlimits if they are
lower than its minimums, as any Mininet run does. It does not run `mn -c`.
"""
import os
import re
import resource
import subprocess
import sys
import time

T_PROC0 = time.monotonic()
from mininet.log import setLogLevel  # noqa: E402
from mininet.net import Mininet  # noqa: E402

T_IMPORT = time.monotonic() - T_PROC0
PREFIX = os.environ.get("PREFIX", "mc")  # bench/run.sh: bnm


def addr(o):
    return f"10.{(o >> 16) & 255}.{(o >> 8) & 255}.{o & 255}"


def pss_kb(pids):
    """Sum of PSS (proportional set size, kB) over pids: the memory footprint."""
    tot = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        tot += int(line.split()[1])
                        break
        except OSError:
            pass
    return tot


def ping(host, dst):
    for _ in range(3):
        out = host.cmd(f"ping -c1 -W2 {dst} >/dev/null 2>&1; echo rc=$?")
        if "rc=0" in out:
            return True
    return False


def leftovers():
    """Our host shells still running, our interfaces still in the root netns."""
    procs = subprocess.run(
        ["pgrep", "-af", f"mininet:{PREFIX}[0-9]"], capture_output=True, text=True
    ).stdout.split("\n")
    procs = [p for p in procs if p.strip()]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    intfs = re.findall(rf"^\d+: ({PREFIX}\d+-eth\d+)", links, re.M)
    return procs, intfs


def main():
    n = int(sys.argv[1])
    if n < 2:
        sys.exit("N must be >= 2")
    setLogLevel(os.environ.get("MN_LOGLEVEL", "warning"))
    ok = True
    net = None
    try:
        t0 = time.monotonic()
        net = Mininet(topo=None, controller=None, build=False)
        hosts = [net.addHost(f"{PREFIX}{i}", ip=None) for i in range(n)]
        links = [net.addLink(hosts[i], hosts[i + 1]) for i in range(n - 1)]
        net.build()
        net.start()
        for i, link in enumerate(links):
            link.intf1.node.setIP(addr(2 * i), 31, link.intf1)
            link.intf2.node.setIP(addr(2 * i + 1), 31, link.intf2)
        t1 = time.monotonic()

        for src, dst in ((hosts[0], addr(1)), (hosts[n - 2], addr(2 * (n - 2) + 1))):
            if not ping(src, dst):
                print(f"mininet: ping {src.name} -> {dst} FAILED", file=sys.stderr)
                ok = False
        t2 = time.monotonic()
        # footprint of the running emulation: this process + the N host shells
        tree_pss = pss_kb([os.getpid()] + [h.pid for h in hosts])

        net.stop()
        net = None
        t3 = time.monotonic()
    except BaseException as error:  # pylint: disable=broad-except
        print(f"mininet: failed: {error!r}", file=sys.stderr)
        if net is not None:
            net.stop()
        return 2

    # The shells got SIGHUP in stop(); give the kernel a moment to finish them.
    procs, intfs = leftovers()
    while (procs or intfs) and time.monotonic() - t3 < 10:
        time.sleep(0.02)
        procs, intfs = leftovers()
    t4 = time.monotonic()
    if procs or intfs:
        print(f"mininet: LEFTOVER processes {procs[:5]} interfaces {intfs[:5]}",
              file=sys.stderr)
        ok = False

    print(f"peer=mininet n={n} up_s={t1 - t0:.3f} down_s={t3 - t2:.3f}", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"# peer=mininet n={n} verify_s={t2 - t1:.3f} reap_s={t4 - t3:.3f} "
        f"procs_up={n + 1} tree_pss_kb={tree_pss} "
        f"import_s={T_IMPORT:.3f} maxrss_kb={rss} verified={'yes' if ok else 'NO'}",
        file=sys.stderr, flush=True,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
