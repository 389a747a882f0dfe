//! `topo ls`: the labs on this host.

use super::status::Table;
use super::{print_json, Output};
use crate::lab::list::{list, LabSummary};
use crate::lab::LabError;

/// `topo ls [-o text|json]`
pub(super) fn cmd_ls(output: Output) -> Result<i32, LabError> {
    let labs = list();
    match output {
        Output::Json => print_json(&labs),
        Output::Text if labs.is_empty() => errln!("topo: no labs"),
        Output::Text => out!("{}", table(&labs)),
    }
    Ok(0)
}

/// `LAB  NODES  STATE  FILE`, a row per lab; a lab partly there shows how many of its nodes
/// are (`partial 2/3`).
fn table(labs: &[LabSummary]) -> String {
    let mut t = Table::new(vec!["LAB", "NODES", "STATE", "FILE"]);
    for l in labs {
        let state = if l.state == "partial" && l.nodes > 0 {
            format!("partial {}/{}", l.running, l.nodes)
        } else {
            l.state.to_string()
        };
        t.row(vec![
            vec![l.name.clone()],
            vec![l.nodes.to_string()],
            vec![state],
            vec![l.file.clone().unwrap_or_else(|| "-".into())],
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_lab() {
        let lab = |name: &str, nodes, running, state, file: Option<&str>| LabSummary {
            name: name.into(),
            file: file.map(str::to_string),
            nodes,
            running,
            state,
        };
        let text = table(&[
            lab("lab2", 5, 5, "up", Some("/root/lab2.yaml")),
            lab("triangle", 5, 3, "partial", Some("/t/triangle.yaml")),
            lab("x", 0, 0, "partial", None),
        ]);
        assert_eq!(
            text,
            "\
LAB       NODES  STATE        FILE
lab2      5      up           /root/lab2.yaml
triangle  5      partial 3/5  /t/triangle.yaml
x         0      partial      -
"
        );
    }
}
