//! Packet capture on the interfaces of a lab's nodes, written as pcapng.
