"""Run by `topo exec` on a terminal: tries to push characters into the input of the terminal
it was given, now (while `topo exec` runs) and later, from a process left behind after the
command returned. Writes what happened to /tmp/tty-during and /tmp/tty-after."""
import errno
import fcntl
import os
import signal
import sys
import termios
import time

TIOCLINUX = 0x541C
PAYLOAD = b"echo INJECTED\n"


def attempt(request, payload):
    try:
        for ch in payload:
            fcntl.ioctl(0, request, bytes([ch]))
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def record(path, text):
    with open(path + ".part", "w") as f:
        f.write(text)
    os.rename(path + ".part", path)


cols, rows = os.get_terminal_size(0)
print(f"hello-from-node size={cols}x{rows}", flush=True)
record("/tmp/tty-during", f"TIOCSTI={attempt(termios.TIOCSTI, PAYLOAD)} "
       f"TIOCLINUX={attempt(TIOCLINUX, bytes([6]))}\n")

if os.fork() == 0:
    # Left behind: outlives the command and tries once `topo exec` has returned.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    time.sleep(1.5)
    record("/tmp/tty-after", f"TIOCSTI={attempt(termios.TIOCSTI, PAYLOAD)} "
           f"TIOCLINUX={attempt(TIOCLINUX, bytes([6]))}\n")
    os._exit(0)

# The caller changes its window size now; the new size must reach this terminal.
got = []
signal.signal(signal.SIGWINCH, lambda *_: got.append(1))
print("ready-for-resize", flush=True)
deadline = time.time() + 5
while not got and time.time() < deadline:
    time.sleep(0.05)
cols, rows = os.get_terminal_size(0)
print(f"resized size={cols}x{rows}", flush=True)
sys.exit(3)
