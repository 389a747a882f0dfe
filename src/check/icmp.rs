//! ICMP echo from inside a node's network namespace, without a `ping` program in the node.
