//! Routes of a node's kernel table, read over netlink and matched against a check.
