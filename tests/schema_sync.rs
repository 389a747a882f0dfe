//! `docs/topology.schema.json` must be the schema generated from the model.
//! Regenerate it with `UPDATE_SCHEMA=1 cargo test --test schema_sync`.

use std::path::Path;

#[test]
fn schema_file_is_in_sync() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/topology.schema.json");
    let schema = topo::spec::json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &schema).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == schema,
        "{} is out of date: run `UPDATE_SCHEMA=1 cargo test --test schema_sync`",
        path.display()
    );
}
