//! System call numbers by name, from seccompiler's own table.
//!
//! That table is only reachable through seccompiler's JSON frontend, which builds all of it
//! (about 400 names, each a `String` in a `HashMap`) on every `compile_from_json`. Looked up
//! one name at a time, the default profile cost some 50 such builds in every process that
//! compiles it (`topo __spawn`, each `topo __enter`). Names are therefore resolved in one
//! batch (one compile, one single-rule filter per name) and kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use seccompiler::TargetArch;
use serde_json::{json, Map, Value};

use super::program::{ARCH, JEQ_K, LD_ABS_W, NR};

/// A name's number, `None` for a name that is no system call on the table's architecture.
type Table = HashMap<String, Option<u32>>;

/// Names looked up so far, per architecture.
static KNOWN: Mutex<Vec<(TargetArch, Table)>> = Mutex::new(Vec::new());

/// The number of each of `names` on `arch`, in order; `None` where a name is no system call
/// on `arch`.
pub(super) fn resolve(names: &[&str], arch: TargetArch) -> Vec<Option<u32>> {
    // Only lookups happen under the lock; a panic elsewhere cannot leave it half-written.
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    let i = match known.iter().position(|(a, _)| *a == arch) {
        Some(i) => i,
        None => {
            known.push((arch, HashMap::new()));
            known.len() - 1
        }
    };
    let table = &mut known[i].1;
    let mut missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !table.contains_key(*n))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        match compile_batch(&missing, arch) {
            Some(found) => table.extend(found),
            // Some name is unknown, so the batch did not compile: one name at a time (the
            // common case, a valid profile, never comes here).
            None => {
                for n in missing {
                    let one = compile_batch(&[n], arch)
                        .and_then(|mut m| m.remove(n))
                        .flatten();
                    table.insert(n.to_string(), one);
                }
            }
        }
    }
    names
        .iter()
        .map(|n| table.get(*n).copied().flatten())
        .collect()
}

/// One compile for all of `names`: a filter per name (`ld arch; jeq; ret; ld nr; jeq NR …`),
/// keyed by its position. `None` when seccompiler refuses the batch (an unknown name).
fn compile_batch(names: &[&str], arch: TargetArch) -> Option<Table> {
    let doc: Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let filter = json!({
                "match_action": "trap",
                "mismatch_action": "allow",
                "filter": [{ "syscall": name }],
            });
            (i.to_string(), filter)
        })
        .collect();
    let compiled =
        seccompiler::compile_from_json(Value::Object(doc).to_string().as_bytes(), arch).ok()?;
    let mut out = HashMap::with_capacity(names.len());
    for (key, prog) in compiled {
        let Some(name) = key.parse::<usize>().ok().and_then(|i| names.get(i)) else {
            continue;
        };
        let number = match prog.as_slice() {
            [ld_arch, _, _, ld_nr, jeq, ..]
                if ld_arch.code == LD_ABS_W
                    && ld_arch.k == ARCH
                    && ld_nr.code == LD_ABS_W
                    && ld_nr.k == NR
                    && jeq.code == JEQ_K =>
            {
                Some(jeq.k)
            }
            _ => None,
        };
        out.insert(name.to_string(), number);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_from_seccompilers_table() {
        let x86 = resolve(&["read", "mount", "no_such_call"], TargetArch::x86_64);
        assert_eq!(x86, [Some(0), Some(165), None]);
        assert_eq!(resolve(&["read"], TargetArch::aarch64), [Some(63)]);
    }

    #[test]
    fn a_batch_with_an_unknown_name_still_resolves_the_others() {
        let got = resolve(
            &["keyctl", "chown32", "setns", "keyctl", "open"],
            TargetArch::x86_64,
        );
        assert_eq!(got, [Some(250), None, Some(308), Some(250), Some(2)]);
        // aarch64 has no `open`: the same names, another table.
        let arm = resolve(&["open", "setns"], TargetArch::aarch64);
        assert_eq!(arm, [None, Some(268)]);
    }
}
