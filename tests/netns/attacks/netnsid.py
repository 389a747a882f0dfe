"""Lists the interfaces of another network namespace, named by its id as this node's
namespace knows it (IFLA_TARGET_NETNSID), with a raw RTM_GETLINK dump: the request a node
would send to administer namespaces that are not its own. Prints `names A B ...` or
`error ERRNO`."""
import socket
import struct
import sys

IFLA_IFNAME = 3
IFLA_TARGET_NETNSID = 46
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300

nsid = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
body += struct.pack("HHi", 8, IFLA_TARGET_NETNSID, nsid)
s.send(struct.pack("IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
names = []
while True:
    data = s.recv(1 << 16)
    off = 0
    while off < len(data):
        length, kind = struct.unpack_from("IH", data, off)
        if kind == NLMSG_DONE:
            # A dump that fails at its start reports the error in DONE's payload.
            err = struct.unpack_from("i", data, off + 16)[0] if length >= 20 else 0
            print(f"error {-err}" if err < 0 else "names " + " ".join(names))
            sys.exit(0)
        if kind == NLMSG_ERROR:
            print("error", -struct.unpack_from("i", data, off + 16)[0])
            sys.exit(0)
        if kind == RTM_NEWLINK:
            a = off + 32
            while a < off + length:
                alen, atype = struct.unpack_from("HH", data, a)
                if atype == IFLA_IFNAME:
                    names.append(data[a + 4:a + alen].split(b"\0")[0].decode())
                a += (alen + 3) & ~3
        off += (length + 3) & ~3
