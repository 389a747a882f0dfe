//! A binary-search prefix for seccompiler's filters.
//!
//! seccompiler compiles a filter to one linear chain: five instructions per system call named
//! by the profile, compared one after the other. A call the profile does not name walks the
//! whole chain (about 400 instructions for the default profile) before it reaches the
//! filter's "otherwise" action. The kernel pays that on every such call, and also once per
//! system call number when the filter is installed: it runs the filter for each number to
//! build its cache of always-allowed calls, once per node.
//!
//! The prefix answers "not named by this filter" in a binary search of about 10 comparisons
//! and returns the otherwise action at once; a named call (or another architecture) jumps to
//! seccompiler's program, unchanged. The result for every call is the same as without the
//! prefix (checked by an interpreter in the tests); when the program does not have the shape
//! this relies on, it is left as it is.

use seccompiler::SeccompAction;

use super::program::{insn, Insn, ARCH, JA, JEQ_K, JGE_K, LD_ABS_W, NR, RET_K};

/// `program` with the prefix, for a filter that names the calls `named` and whose action for
/// every other call is `otherwise`; `program` itself when it does not start as seccompiler's
/// programs do (`ld arch; jeq ARCH; ret; ld nr`) or the prefix cannot be encoded.
pub(super) fn with_shortcut(
    program: Vec<Insn>,
    named: &[u32],
    otherwise: &SeccompAction,
) -> Vec<Insn> {
    let audit_arch = match program.as_slice() {
        [ld_arch, jeq_arch, _, ld_nr, ..]
            if ld_arch.code == LD_ABS_W
                && ld_arch.k == ARCH
                && jeq_arch.code == JEQ_K
                && ld_nr.code == LD_ABS_W
                && ld_nr.k == NR =>
        {
            jeq_arch.k
        }
        _ => return program,
    };
    let mut named = named.to_vec();
    named.sort_unstable();
    named.dedup();
    let ret_otherwise = insn(RET_K, 0, 0, u32::from(otherwise.clone()));
    // `ja` with k = u32::MAX marks a jump to the original program, resolved at the end.
    let to_program = insn(JA, 0, 0, u32::MAX);
    let mut prefix = vec![
        insn(LD_ABS_W, 0, 0, ARCH),
        // Another architecture: the original program decides.
        insn(JEQ_K, 1, 0, audit_arch),
        to_program,
        insn(LD_ABS_W, 0, 0, NR),
    ];
    let Some(tree) = search(&named, ret_otherwise, to_program) else {
        return program;
    };
    prefix.extend(tree);
    let len = prefix.len();
    for (pc, i) in prefix.iter_mut().enumerate() {
        if i.code == JA && i.k == u32::MAX {
            i.k = (len - pc - 1) as u32;
        }
    }
    prefix.extend(program);
    prefix
}

/// A binary search over the sorted `named` numbers (the accumulator holds the call's number):
/// a named number jumps to the original program, any other returns. `None` when a
/// conditional jump would be longer than BPF's 255.
fn search(named: &[u32], ret_otherwise: Insn, to_program: Insn) -> Option<Vec<Insn>> {
    if named.len() <= 4 {
        // jeq n, → the jump to the program at the end of this block; else next.
        let mut out = Vec::with_capacity(named.len() + 2);
        for (i, n) in named.iter().enumerate() {
            // From this jeq (index i) to the `ja` after the `ret` (index len + 1).
            let jt = u8::try_from(named.len() - i).ok()?;
            out.push(insn(JEQ_K, jt, 0, *n));
        }
        out.push(ret_otherwise);
        out.push(to_program);
        return Some(out);
    }
    let mid = named.len() / 2;
    let left = search(&named[..mid], ret_otherwise, to_program)?;
    let right = search(&named[mid..], ret_otherwise, to_program)?;
    let mut out = Vec::with_capacity(1 + left.len() + right.len());
    // A >= named[mid]: the right half, past the left one.
    out.push(insn(JGE_K, u8::try_from(left.len()).ok()?, 0, named[mid]));
    out.extend(left);
    out.extend(right);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::program::interp::run;

    fn host() -> seccompiler::TargetArch {
        super::super::host_arch().expect("supported arch")
    }

    #[test]
    fn search_jumps_to_the_program_for_named_numbers_only() {
        let program = vec![
            insn(LD_ABS_W, 0, 0, ARCH),
            insn(JEQ_K, 1, 0, 7),
            insn(RET_K, 0, 0, 0),
            insn(LD_ABS_W, 0, 0, NR),
            insn(RET_K, 0, 0, 42),
        ];
        // Too many names for 8-bit jumps: the program is left as it is.
        let many: Vec<u32> = (0..1000).collect();
        let kept = with_shortcut(program.clone(), &many, &SeccompAction::Allow);
        assert_eq!(kept.len(), program.len());
        let named: Vec<u32> = (0..150).map(|i| i * 3 + 1).collect();
        let prefix = with_shortcut(program.clone(), &named, &SeccompAction::Allow);
        assert!(prefix.len() > program.len());
        for nr in 0..1000u32 {
            let mut data = [0u32; 16];
            data[0] = nr;
            data[1] = 7;
            let want = if named.contains(&nr) {
                42
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(run(&prefix, &data), want, "nr {nr}");
            // Another architecture always reaches the program.
            data[1] = 8;
            assert_eq!(run(&prefix, &data), 0, "nr {nr}, other arch");
        }
    }

    #[test]
    fn filters_answer_every_call_as_before() {
        use super::super::{build, default_profile, oci};
        let arch = host();
        let mut profiles = vec![default_profile::profile(arch).expect("default profile")];
        // A profile with argument rules and a default action other than allow.
        let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read","write","exit_group","futex"],"action":"SCMP_ACT_ALLOW"},
            {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
            {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"}]}]}"#;
        profiles.push(oci::parse_oci_for(json, arch).expect("test profile"));
        for profile in &profiles {
            let plain = build::build_plain(profile, arch).expect("build");
            let fast = build::build(profile, arch).expect("build");
            assert_eq!(plain.programs.len(), fast.programs.len());
            // The prefix is there (the x32 guard, first on x86_64, is not seccompiler's).
            assert!(plain
                .programs
                .iter()
                .zip(&fast.programs)
                .any(|(p, f)| f.len() > p.len()));
            for (p, f) in plain.programs.iter().zip(&fast.programs) {
                for nr in 0..1100u32 {
                    for args in [[0u32; 2], [8, 0], [16, 0], [0x7e02_0000, 0]] {
                        for arch_word in [audit_arch_of(p), 0x4000_0003] {
                            let mut data = [0u32; 16];
                            data[0] = nr;
                            data[1] = arch_word;
                            data[4] = args[0];
                            data[5] = args[1];
                            assert_eq!(run(p, &data), run(f, &data), "nr {nr} args {args:?}");
                        }
                    }
                }
            }
        }
    }

    fn audit_arch_of(prog: &[Insn]) -> u32 {
        prog.iter()
            .find(|i| i.code == JEQ_K)
            .map(|i| i.k)
            .unwrap_or(0)
    }
}
