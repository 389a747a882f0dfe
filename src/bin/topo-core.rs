//! `topo-core`: all of `topo`, started by the `topo` front with its command line.
fn main() {
    std::process::exit(topo::cli::main());
}
