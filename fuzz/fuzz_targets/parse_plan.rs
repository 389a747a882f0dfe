//! Hostile input through the pure core: any bytes are parsed and validated; a file that is
//! accepted is compiled (whole, and each host's share of a lab that spans hosts) and planned
//! from nothing and against its own result (which must be empty). Nothing may panic,
//! whatever the input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(t) = topo::spec::parse_str(text, Path::new("/nonexistent/fuzz.yaml")) else { return };
    let shares = std::iter::once(None).chain(t.hosts.keys().map(|h| Some(h.as_str())));
    for host in shares {
        let desired = topo::plan::compile(&t, host);
        let _ = topo::plan::diff(&t, &desired, &topo::plan::Observed::default());
        let after = topo::plan::simulate(&t, &desired);
        let plan = topo::plan::diff(&t, &desired, &after);
        assert!(plan.actions.is_empty(), "a finished lab plans changes:\n{plan}");
    }
});
