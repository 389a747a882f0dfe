"""Watches /proc for new processes and reads each one's mount table as soon as it appears:
a process entering the node that is visible here while still in the host's mount namespace
shows the host's mounts (marked by the named network namespaces under /run/netns, which a
node's own mount table does not have). Appends what it saw to /tmp/mountinfo-watch: a
`seen N` line (new processes so far) at its start and after each round that found new ones,
and `LEAK <line>` for a host mount."""
import os
import time

seen = set(os.listdir("/proc"))
new = 0
with open("/tmp/mountinfo-watch", "a", buffering=1) as out:
    out.write("seen 0\n")
    deadline = time.time() + 120
    while time.time() < deadline:
        before = new
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid in seen:
                continue
            seen.add(pid)
            new += 1
            try:
                with open(f"/proc/{pid}/mountinfo") as f:
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                if " /run/netns/" in line:
                    out.write(f"LEAK {line}\n")
                    break
        if new != before:
            out.write(f"seen {new}\n")
