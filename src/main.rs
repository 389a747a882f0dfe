//! `topo`: the front that a command line starts (see `cli::front`); `topo-core` does the rest.
fn main() {
    std::process::exit(topo::cli::front::main());
}
