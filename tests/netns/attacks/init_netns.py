"""Tries, from inside a node, to reach the network namespace its init lives in (outside the
node's), or the node's through the init's descriptor: opens /proc/1/ns/net,
/proc/1/task/1/ns/net and /proc/1/fd/3, and joins whatever opens (setns). Prints one line
per path, `PATH opened-joined`, `PATH opened-refused ERRNO` or `PATH closed ERRNO`, then
`own net:[INODE]` (this process's namespace after the attempts) and `init-ifaces NAMES`,
the interfaces /proc/1/net/dev lists."""
import ctypes
import os

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)

for path in ["/proc/1/ns/net", "/proc/1/task/1/ns/net", "/proc/1/fd/3"]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        print(f"{path} closed {e.errno}")
        continue
    if libc.setns(fd, CLONE_NEWNET) == 0:
        print(f"{path} opened-joined")
    else:
        print(f"{path} opened-refused {ctypes.get_errno()}")
    os.close(fd)
print("own " + os.readlink("/proc/self/ns/net"))
with open("/proc/1/net/dev") as f:
    names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
print("init-ifaces " + " ".join(names))
