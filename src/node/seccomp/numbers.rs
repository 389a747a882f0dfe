//! System call numbers by name: those the default profile names from libc's constants for the
//! architecture `topo` is built for, any other from seccompiler's own table.
//!
//! That table is only reachable through seccompiler's JSON frontend, which builds all of it
//! (about 400 names, each a `String` in a `HashMap`) on every `compile_from_json`. Names a
//! profile file uses are therefore resolved in one batch (one compile, one single-rule filter
//! per name) and kept for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use seccompiler::TargetArch;
use serde_json::{json, Map, Value};

use super::program::{ARCH, JEQ_K, LD_ABS_W, NR};

/// A name's number, `None` for a name that is no system call on the table's architecture.
type Table = HashMap<String, Option<u32>>;

/// Names looked up so far, per architecture.
static KNOWN: Mutex<Vec<(TargetArch, Table)>> = Mutex::new(Vec::new());

/// `(SYS_name, number)` from libc's constants.
macro_rules! numbered {
    ($($sys:ident)*) => { &[$((stringify!($sys), libc::$sys)),*] };
}

/// The numbers of every call the default profile names, on the architecture `topo` is built
/// for, from libc's constants: the default profile then needs no seccompiler compile at all,
/// which would otherwise be much of the work of every `topo exec`. A test checks each against
/// seccompiler's table.
#[cfg(target_arch = "x86_64")]
const BUILT_IN: Option<(TargetArch, &[(&str, libc::c_long)])> = Some((
    TargetArch::x86_64,
    numbered!(
        SYS_keyctl SYS_add_key SYS_request_key SYS_kexec_load SYS_kexec_file_load
        SYS_init_module SYS_finit_module SYS_delete_module SYS_reboot SYS_swapon SYS_swapoff
        SYS_acct SYS_quotactl SYS_quotactl_fd SYS_syslog SYS_vhangup SYS_lookup_dcookie
        SYS_nfsservctl SYS__sysctl SYS_uselib SYS_clock_settime SYS_clock_adjtime
        SYS_settimeofday SYS_adjtimex SYS_sethostname SYS_setdomainname SYS_open_by_handle_at
        SYS_name_to_handle_at SYS_mount SYS_umount2 SYS_pivot_root SYS_move_mount SYS_open_tree
        SYS_fsopen SYS_fsconfig SYS_fsmount SYS_fspick SYS_mount_setattr SYS_setns SYS_bpf
        SYS_perf_event_open SYS_userfaultfd SYS_io_uring_setup SYS_io_uring_enter
        SYS_io_uring_register SYS_iopl SYS_ioperm SYS_kcmp SYS_process_vm_readv
        SYS_process_vm_writev SYS_clone SYS_unshare SYS_personality SYS_ioctl SYS_clone3
    ),
));
#[cfg(not(target_arch = "x86_64"))]
const BUILT_IN: Option<(TargetArch, &[(&str, libc::c_long)])> = None;

/// `name`'s number from [`BUILT_IN`], when `arch` is its architecture and it has the name.
fn built_in(name: &str, arch: TargetArch) -> Option<u32> {
    let (built_for, table) = BUILT_IN?;
    if built_for != arch {
        return None;
    }
    table
        .iter()
        .find(|(sys, _)| sys.strip_prefix("SYS_") == Some(name))
        .and_then(|(_, nr)| u32::try_from(*nr).ok())
}

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
    for n in names {
        if !table.contains_key(*n) {
            if let Some(nr) = built_in(n, arch) {
                table.insert(n.to_string(), Some(nr));
            }
        }
    }
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
    fn built_in_numbers_agree_with_seccompilers_table() {
        let Some((arch, table)) = BUILT_IN else {
            return;
        };
        let names: Vec<&str> = table
            .iter()
            .map(|(sys, _)| sys.strip_prefix("SYS_").unwrap_or(sys))
            .collect();
        let Some(seccompiler) = compile_batch(&names, arch) else {
            panic!("seccompiler refused a built-in name: {names:?}");
        };
        for (name, (_, nr)) in names.iter().zip(table) {
            let expected = seccompiler.get(*name).copied().flatten();
            assert_eq!(expected.map(i64::from), Some(*nr), "{name}");
            assert_eq!(built_in(name, arch), expected, "{name}");
        }
        // Every name the default profile looks up is built in.
        let specials = ["clone", "unshare", "personality", "ioctl", "clone3"];
        for name in super::super::default_profile::DENIED
            .iter()
            .chain(&specials)
        {
            assert!(built_in(name, arch).is_some(), "{name} is not built in");
        }
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
