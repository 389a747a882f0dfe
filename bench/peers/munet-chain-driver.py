#!/usr/bin/env python3
"""Time munet bringing a chain topology up and down, through munet's Python API.

usage: munet-chain-driver.py CONFIG.yaml RUNDIR N      (normally run by munet-chain.sh)

It does what `munet -c CONFIG -d RUNDIR --no-cli --no-wait` does (munet/__main__.py:
setup_logging, get_config, validate_config, parser.async_build_topology, unet.run,
unet.async_delete), with the same default logging (DEBUG to RUNDIR/munet-exec.log,
INFO to stderr), but with time.monotonic() around the phases:

  up_s   = get_config + validate_config + async_build_topology + unet.run()
  down_s = unet.async_delete()

Between the two (not timed) it pings across the first and the last link.
Prints one line on stdout:  peer=munet n=N up_s=X down_s=Y
and one line on stderr starting with '#' with extra figures (import time, peak RSS).
Exit status: 0 ok, 1 topology did not really come up / did not go down, 2 error.

Must run in a fresh PID namespace whose PID 1 is one of our processes that reaps
orphans (munet-chain.sh: `unshare --pid --fork --mount-proc bash -c ...`): munet
runs its "root" commands through `nsenter --mount=<proc>/1/ns/mnt --net=... --uts=...`,
i.e. in PID 1's namespaces, and on this machine the real PID 1's /proc/1/ns/*
cannot be opened (EACCES). PID 1 must reap: munet's teardown orphans some processes
(their zombies would otherwise pin munet's nested PID namespace, as on a normal
host where systemd reaps them).
"""
import argparse
import asyncio
import logging
import os
import resource
import sys
import time

T_PROC0 = time.monotonic()
from munet import parser  # noqa: E402
from munet.compat import PytestConfig  # noqa: E402

T_IMPORT = time.monotonic() - T_PROC0
PREFIX = os.environ.get("PREFIX", "r")  # node names, as gen-munet-chain.py writes them


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


def make_args(config, rundir):
    # the same attributes munet/__main__.py's argparse produces for
    # `munet -c CONFIG -d RUNDIR --no-cli --no-wait`
    return argparse.Namespace(
        config=config, rundir=rundir, kinds_config=None, project_root=None,
        gdb=None, gdb_breakpoints=None, gdb_use_emacs=False, host=False, pcap=None,
        shell=None, stderr=None, stdout=None, cleanup=False, topology_only=False,
        validate_only=False,
        # hidden munet option; its inline mode avoids the pgrep race but then
        # delete waits 30 s for the top namespace process: not used by default
        unshare_inline=os.environ.get("MUNET_UNSHARE_INLINE") == "1",
        verbose=False, version=False,
        # default None = munet's logconf.yaml (DEBUG file log, INFO console)
        log_config=os.environ.get("MUNET_LOG_CONFIG"),
        kill=False, no_kill=False, no_cli=True, no_wait=True,
    )


def ping(unet, src, dst):
    for _ in range(3):
        rc, _, _ = unet.hosts[src].cmd_status(f"ping -c1 -W2 {dst}", warn=False)
        if rc == 0:
            return True
    return False


def other_pids():
    """PIDs in our PID namespace other than PID 1 and us, zombies excluded."""
    left = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (1, os.getpid()):
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="ascii") as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            if not cmd:  # exiting (mm gone) or kernel-side: show its name
                with open(f"/proc/{d}/comm", encoding="ascii") as f:
                    cmd = "[" + f.read().strip() + "]"
        except OSError:
            continue
        if st != "Z":
            left.append(f"{d}:{st}:{cmd}")
    return left


async def amain(args, n):
    logger = logging.getLogger("munet")
    ok = True

    t0 = time.monotonic()
    config = parser.get_config(args.config)
    if not parser.validate_config(config, logger, args):
        print("munet: config validation failed", file=sys.stderr)
        return 2, None
    t_cfg = time.monotonic()
    unet = await parser.async_build_topology(
        config, rundir=args.rundir, args=args, pytestconfig=PytestConfig(args)
    )
    tasks = await unet.run()  # no node cmds: returns at once, as in the CLI
    t1 = time.monotonic()

    nodes = len(unet.hosts)
    if nodes != n:
        print(f"munet: {nodes} nodes, expected {n}", file=sys.stderr)
        ok = False
    checks = [(f"{PREFIX}0", addr(1)), (f"{PREFIX}{n - 2}", addr(2 * (n - 2) + 1))]
    for src, dst in checks:
        if not ping(unet, src, dst):
            print(f"munet: ping {src} -> {dst} FAILED", file=sys.stderr)
            ok = False
    if os.environ.get("MUNET_DUMP") == "1":
        print(unet.hosts[f"{PREFIX}1"].cmd_raises("ip -br addr; ip route"), file=sys.stderr)
    t2 = time.monotonic()
    # footprint of the whole running emulation: munet + every process it started
    # (all of them live in our PID namespace), measured after t2, not timed
    procs = [x.split(":", 1)[0] for x in other_pids()]
    tree_pss = pss_kb([os.getpid()] + procs)

    for task in tasks:
        task.cancel()
    await unet.async_delete()
    t3 = time.monotonic()

    # munet's delete returns after SIGHUPing its namespace inits; their nested PID
    # namespaces finish exiting in the kernel a moment later. Wait (not timed in
    # down_s, reported as reap_s) and fail if anything is still there after 10 s.
    left = other_pids()
    while left and time.monotonic() - t3 < 10:
        time.sleep(0.02)
        left = other_pids()
    t4 = time.monotonic()
    if left:
        print(f"munet: processes left after async_delete: {left[:10]}", file=sys.stderr)
        ok = False

    print(f"peer=munet n={n} up_s={t1 - t0:.3f} down_s={t3 - t2:.3f}", flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"# peer=munet n={n} cfg_s={t_cfg - t0:.3f} verify_s={t2 - t1:.3f} "
        f"reap_s={t4 - t3:.3f} procs_up={len(procs) + 1} tree_pss_kb={tree_pss} "
        f"import_s={T_IMPORT:.3f} maxrss_kb={rss} verified={'yes' if ok else 'NO'}",
        file=sys.stderr,
        flush=True,
    )
    return (0 if ok else 1), unet


def main():
    cfg, rundir, n = sys.argv[1], os.path.abspath(sys.argv[2]), int(sys.argv[3])
    os.makedirs(rundir, mode=0o755, exist_ok=True)
    os.environ["MUNET_RUNDIR"] = rundir
    args = make_args(os.path.abspath(cfg), rundir)
    parser.setup_logging(args)  # munet's default logconf.yaml, as the CLI does
    try:
        status, _ = asyncio.get_event_loop().run_until_complete(amain(args, n))
    except Exception as error:  # pylint: disable=broad-except
        logging.getLogger("munet").critical("driver failed: %s", error, exc_info=True)
        print(f"munet: driver failed: {error}", file=sys.stderr)
        status = 2
    sys.stdout.flush()
    sys.stderr.flush()
    # When PID 1 of our PID namespace exits right after us, the kernel kills
    # whatever might be left, so no stray process can outlive the run.
    os._exit(status)


if __name__ == "__main__":
    main()
