//! The command line of `topo gen`, turned into [`crate::shapes::GenArgs`].

use clap::{Args, Subcommand};

use crate::shapes::{GenArgs, Shape};

// `topo gen SHAPE …`: print a generated topology file.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub(super) struct GenOptions {
    #[command(subcommand)]
    shape: ShapeCommand,
    /// Lab name (1 to 12 characters from a-z, 0-9 and '-'); default: the shape's name
    #[arg(long, global = true)]
    name: Option<String>,
    /// Dual stack: IPv6 addresses and routes next to the IPv4 ones
    #[arg(long, global = true)]
    ipv6: bool,
    /// Links and their /31 addresses only, no loopbacks and no routes (what the peer
    /// benchmark scripts build)
    #[arg(long, global = true)]
    bare: bool,
}

// The generated shapes.
#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum ShapeCommand {
    /// A line of nodes n0 … n(N-1), node i joined to node i+1
    Chain {
        /// Number of nodes (at least 2)
        #[arg(long)]
        nodes: u64,
    },
    /// A chain whose last node is joined to the first
    Ring {
        /// Number of nodes (at least 3)
        #[arg(long)]
        nodes: u64,
    },
    /// A hub joined to N leaves n0 … n(N-1)
    Star {
        /// Number of leaves (at least 1)
        #[arg(long)]
        nodes: u64,
    },
    /// A complete tree: every node above the last level has FANOUT children
    Tree {
        /// Levels below the root (at least 1)
        #[arg(long)]
        depth: u64,
        /// Children of every inner node (at least 1)
        #[arg(long)]
        fanout: u64,
    },
    /// A two-tier leaf-spine fabric: every leaf joined to every spine, hosts under leaves
    Clos {
        /// Number of spines (at least 1)
        #[arg(long)]
        spines: u64,
        /// Number of leaves (at least 1)
        #[arg(long)]
        leaves: u64,
        /// Hosts under every leaf
        #[arg(long, default_value_t = 1)]
        hosts_per_leaf: u64,
    },
}

impl From<ShapeCommand> for Shape {
    fn from(s: ShapeCommand) -> Self {
        match s {
            ShapeCommand::Chain { nodes } => Shape::Chain { nodes },
            ShapeCommand::Ring { nodes } => Shape::Ring { nodes },
            ShapeCommand::Star { nodes } => Shape::Star { nodes },
            ShapeCommand::Tree { depth, fanout } => Shape::Tree { depth, fanout },
            ShapeCommand::Clos {
                spines,
                leaves,
                hosts_per_leaf,
            } => Shape::Clos {
                spines,
                leaves,
                hosts_per_leaf,
            },
        }
    }
}

impl From<GenOptions> for GenArgs {
    fn from(o: GenOptions) -> Self {
        GenArgs {
            shape: o.shape.into(),
            name: o.name,
            ipv6: o.ipv6,
            bare: o.bare,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        gen: GenOptions,
    }

    fn parse(argv: &[&str]) -> GenArgs {
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.gen.into(),
            Err(e) => panic!("{argv:?} does not parse: {e}"),
        }
    }

    #[test]
    fn command_line_options_reach_the_generator() {
        let g = parse(&[
            "gen", "clos", "--spines", "2", "--leaves", "3", "--name", "bn-fab", "--ipv6",
        ]);
        let want = GenArgs {
            shape: Shape::Clos {
                spines: 2,
                leaves: 3,
                hosts_per_leaf: 1,
            },
            name: Some("bn-fab".into()),
            ipv6: true,
            bare: false,
        };
        assert_eq!(g, want);
        let g = parse(&["gen", "--bare", "tree", "--depth", "2", "--fanout", "3"]);
        assert_eq!(
            g.shape,
            Shape::Tree {
                depth: 2,
                fanout: 3
            }
        );
        assert!(g.bare && !g.ipv6 && g.name.is_none());
        let g = parse(&["gen", "ring", "--nodes", "5"]);
        assert_eq!(g.shape, Shape::Ring { nodes: 5 });
        let g = parse(&["gen", "star", "--nodes", "4"]);
        assert_eq!(g.shape, Shape::Star { nodes: 4 });
        let g = parse(&["gen", "chain", "--nodes", "3"]);
        assert_eq!(g.shape, Shape::Chain { nodes: 3 });
    }
}
