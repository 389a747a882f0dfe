//! The library API: bring a lab up from a topology file, check that two nodes reach each
//! other, and let the guard bring it down when it goes out of scope (also on failure).
//!
//! ```sh
//! cargo build && sudo target/debug/examples/lab topologies/triangle.yaml h1 10.2.0.10
//! ```
//! (Run as root. The example finds the `topo-core` program next to it, one directory up, or
//! on PATH; set TOPO_EXE to point elsewhere.)

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "topologies/triangle.yaml".into()),
    );
    let node = args.next().unwrap_or_else(|| "h1".into());
    let target = args.next().unwrap_or_else(|| "10.2.0.10".into());

    let lab = topo::Lab::load(&file)?;
    let (report, _guard) = lab.up_guarded().await?;
    println!(
        "lab {} up: {} changes in {:?}",
        lab.name(),
        report.plan.visible().count(),
        report.elapsed
    );

    let argv: Vec<String> = ["ping", "-c", "1", "-W", "2", &target]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let code = lab.exec(&node, &argv)?;
    println!(
        "{node} -> {target}: {}",
        if code == 0 {
            "reachable"
        } else {
            "unreachable"
        }
    );
    // `_guard` brings the lab down here.
    Ok(())
}
