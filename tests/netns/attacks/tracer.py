"""A tracer left running in a node: attaches (PTRACE_SEIZE) to every new process of the node
as soon as it can, and logs, per attach, the process's name and seccomp mode at that moment
to /tmp/tracer.log. A `topo` process (not yet the program it will exec) in that log was
caught before its seccomp filter, where the tracer could rewrite its seccomp() call."""
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000
ESRCH = 3
me = os.getpid()
log = open("/tmp/tracer.log", "a", buffering=1)


def last_pid():
    with open("/proc/sys/kernel/ns_last_pid") as f:
        return int(f.read())


def field(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


log.write(f"tracer {me} ready\n")
target = last_pid() + 1
tries = 0
while True:
    if target == me:
        target += 1
        continue
    if libc.ptrace(PTRACE_SEIZE, target, None, None) == 0:
        libc.ptrace(PTRACE_INTERRUPT, target, None, None)
        try:
            os.waitpid(target, WALL)
        except OSError:
            pass
        log.write(f"attached pid={target} comm={field(target, 'Name')} "
                  f"seccomp={field(target, 'Seccomp:')}\n")
        libc.ptrace(PTRACE_DETACH, target, None, None)
        target += 1
        tries = 0
        continue
    if ctypes.get_errno() == ESRCH:
        # Not there yet, or gone already: then aim at the next PID the node hands out.
        last = last_pid()
        if last >= target:
            target = last + 1
    else:
        # There, but not ours to trace (yet): keep trying for a while.
        tries += 1
        if tries > 200000:
            target, tries = max(target, last_pid()) + 1, 0
