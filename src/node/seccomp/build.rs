//! From a profile to BPF programs. A seccomp filter built by seccompiler has one action for
//! the calls it matches and one for the rest, so a profile with several actions becomes a stack
//! of filters; the kernel runs them all and keeps the strictest result:
//!
//! - one filter per action other than allow, in the order the profile first uses it: its
//!   rules → that action, anything else → allow;
//! - when the default action is not allow, a last filter: every rule of the profile → allow,
//!   anything else → the default action.
//!
//! A call that matches a rule gets that rule's action from its filter and allow from all
//! others; a call that matches none gets the default action from the last filter only.
//!
//! seccompiler's name → number table is only reachable through its JSON frontend, so the
//! filters are handed to it as JSON.

use std::collections::BTreeMap;

use seccompiler::{SeccompAction, SeccompCmpOp, TargetArch};
use serde_json::{json, Map, Value};

use super::oci::{ArgCmp, OciProfile};
use super::{Filter, SeccompError};

/// The rules of one filter: per system call name, `None` when every call matches, else the
/// alternative argument conditions (each a conjunction).
type RuleSet<'a> = BTreeMap<&'a str, Option<Vec<&'a [ArgCmp]>>>;

/// Builds the filter stack of `profile` for `arch`. Every name must exist on `arch`. Each
/// program gets a binary-search prefix for the calls its filter does not name (see
/// [`shortcut`](super::shortcut)).
pub(super) fn build(profile: &OciProfile, arch: TargetArch) -> Result<Filter, SeccompError> {
    build_with(profile, arch, true)
}

/// As [`build`], without the prefixes: what the prefixes must not change.
#[cfg(test)]
pub(super) fn build_plain(profile: &OciProfile, arch: TargetArch) -> Result<Filter, SeccompError> {
    build_with(profile, arch, false)
}

fn build_with(
    profile: &OciProfile,
    arch: TargetArch,
    shortcut: bool,
) -> Result<Filter, SeccompError> {
    let mut groups: Vec<(&SeccompAction, RuleSet)> = Vec::new();
    let mut all = RuleSet::new();
    for rule in &profile.rules {
        let i = match groups.iter().position(|(a, _)| *a == &rule.action) {
            Some(i) => i,
            None => {
                groups.push((&rule.action, RuleSet::new()));
                groups.len() - 1
            }
        };
        for name in &rule.names {
            add(&mut groups[i].1, name, &rule.args);
            add(&mut all, name, &rule.args);
        }
    }

    // Each filter with the names it matches and its action for every other call.
    let mut shapes: Vec<(Vec<&str>, SeccompAction)> = Vec::new();
    let mut filters: Vec<Value> = Vec::new();
    for (action, rules) in groups
        .iter()
        .filter(|(action, _)| **action != SeccompAction::Allow)
    {
        filters.push(filter_json(action, &SeccompAction::Allow, rules));
        shapes.push((rules.keys().copied().collect(), SeccompAction::Allow));
    }
    if profile.default_action != SeccompAction::Allow {
        filters.push(filter_json(
            &SeccompAction::Allow,
            &profile.default_action,
            &all,
        ));
        shapes.push((
            all.keys().copied().collect(),
            profile.default_action.clone(),
        ));
    }

    let mut programs = Vec::with_capacity(filters.len() + 1);
    if arch == TargetArch::x86_64 {
        programs.push(x32_guard());
    }
    // Keys are the filters' positions, so that the stack keeps the order chosen above.
    let doc: Map<String, Value> = filters
        .into_iter()
        .enumerate()
        .map(|(i, f)| (i.to_string(), f))
        .collect();
    let compiled = seccompiler::compile_from_json(Value::Object(doc).to_string().as_bytes(), arch)
        .map_err(SeccompError::Build)?;
    let mut ordered: Vec<(usize, seccompiler::BpfProgram)> = compiled
        .into_iter()
        .filter_map(|(key, prog)| Some((key.parse().ok()?, prog)))
        .collect();
    ordered.sort_by_key(|(i, _)| *i);
    for (i, prog) in ordered {
        let program: Vec<libc::sock_filter> = prog.iter().map(to_libc).collect();
        let named: Option<Vec<u32>> = match shapes.get(i) {
            Some((names, _)) if shortcut => {
                super::numbers::resolve(names, arch).into_iter().collect()
            }
            _ => None,
        };
        programs.push(match (named, shapes.get(i)) {
            (Some(named), Some((_, otherwise))) => {
                super::shortcut::with_shortcut(program, &named, otherwise)
            }
            _ => program,
        });
    }
    Ok(Filter { programs })
}

/// Adds one rule for `name` to `set`; a rule without conditions matches every call and so
/// absorbs all conditional rules for that name (seccompiler would instead keep only the
/// conditional ones).
fn add<'a>(set: &mut RuleSet<'a>, name: &'a str, args: &'a [ArgCmp]) {
    let entry = set.entry(name).or_insert_with(|| Some(Vec::new()));
    match entry {
        None => {}
        Some(_) if args.is_empty() => *entry = None,
        Some(alternatives) => alternatives.push(args),
    }
}

/// The names among `names` that are no system call on `arch`.
pub(super) fn unknown_syscalls<'a>(
    names: impl Iterator<Item = &'a str>,
    arch: TargetArch,
) -> Vec<String> {
    let names: Vec<&str> = names.collect();
    names
        .iter()
        .zip(super::numbers::resolve(&names, arch))
        .filter(|(_, number)| number.is_none())
        .map(|(n, _)| n.to_string())
        .collect()
}

/// A filter in seccompiler's JSON format.
fn filter_json(on_match: &SeccompAction, otherwise: &SeccompAction, rules: &RuleSet) -> Value {
    let mut list = Vec::new();
    for (name, alternatives) in rules {
        match alternatives {
            None => list.push(json!({ "syscall": name })),
            Some(alts) => list.extend(alts.iter().map(|conds| {
                json!({ "syscall": name, "args": conds.iter().map(cond_json).collect::<Vec<_>>() })
            })),
        }
    }
    json!({
        "match_action": action_json(on_match),
        "mismatch_action": action_json(otherwise),
        "filter": list,
    })
}

fn action_json(action: &SeccompAction) -> Value {
    match action {
        SeccompAction::Allow => json!("allow"),
        SeccompAction::Errno(n) => json!({ "errno": n }),
        SeccompAction::KillThread => json!("kill_thread"),
        SeccompAction::KillProcess => json!("kill_process"),
        SeccompAction::Log => json!("log"),
        SeccompAction::Trace(n) => json!({ "trace": n }),
        SeccompAction::Trap => json!("trap"),
    }
}

/// Arguments compare as 64-bit values, as libseccomp does.
fn cond_json(c: &ArgCmp) -> Value {
    let op = match &c.op {
        SeccompCmpOp::Eq => json!("eq"),
        SeccompCmpOp::Ne => json!("ne"),
        SeccompCmpOp::Lt => json!("lt"),
        SeccompCmpOp::Le => json!("le"),
        SeccompCmpOp::Gt => json!("gt"),
        SeccompCmpOp::Ge => json!("ge"),
        SeccompCmpOp::MaskedEq(mask) => json!({ "masked_eq": mask }),
    };
    json!({ "index": c.index, "type": "qword", "op": op, "val": c.value })
}

/// The x32 ABI (x86_64 system calls with bit 30 set in the number) reaches the same kernel
/// code under other numbers; the filters above only name x86_64 numbers, so without this an
/// x32 `keyctl` would pass a deny list. x32 calls get ENOSYS, as if the ABI were compiled out.
/// (i386 calls are stopped by seccompiler's architecture check, which kills the process.)
fn x32_guard() -> Vec<libc::sock_filter> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // A = seccomp_data.nr
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: super::program::X32_SYSCALL_BIT,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

fn to_libc(f: &seccompiler::sock_filter) -> libc::sock_filter {
    libc::sock_filter {
        code: f.code,
        jt: f.jt,
        jf: f.jf,
        k: f.k,
    }
}

#[cfg(test)]
mod tests {
    use super::super::oci::Rule;
    use super::*;

    fn rule(names: &[&str], action: SeccompAction, args: Vec<ArgCmp>) -> Rule {
        Rule {
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            args,
        }
    }

    fn eq(index: u8, value: u64) -> ArgCmp {
        ArgCmp {
            index,
            op: SeccompCmpOp::Eq,
            value,
        }
    }

    #[test]
    fn unconditional_rule_absorbs_conditional_ones() {
        let conds = [eq(0, 1)];
        let mut set = RuleSet::new();
        add(&mut set, "dup", &conds);
        add(&mut set, "dup", &[]);
        add(&mut set, "dup", &conds);
        add(&mut set, "getcwd", &conds);
        assert_eq!(set["dup"], None);
        assert_eq!(set["getcwd"], Some(vec![&conds[..]]));
    }

    #[test]
    fn one_filter_per_deny_action_and_one_for_the_default() {
        let profile = OciProfile {
            default_action: SeccompAction::Errno(1),
            rules: vec![
                rule(&["read", "write"], SeccompAction::Allow, vec![]),
                rule(&["getcwd"], SeccompAction::Errno(95), vec![]),
                rule(&["dup"], SeccompAction::Allow, vec![eq(0, 3)]),
                rule(&["keyctl"], SeccompAction::KillProcess, vec![]),
                rule(&["uname"], SeccompAction::Errno(95), vec![]),
            ],
        };
        let filter = build(&profile, TargetArch::x86_64).unwrap();
        // x32 guard, errno 95, kill, default
        assert_eq!(filter.programs.len(), 4);
        let allow_all = OciProfile {
            default_action: SeccompAction::Allow,
            rules: vec![rule(&["read"], SeccompAction::Allow, vec![])],
        };
        assert_eq!(
            build(&allow_all, TargetArch::x86_64)
                .unwrap()
                .programs
                .len(),
            1
        );
        assert_eq!(
            build(&allow_all, TargetArch::aarch64)
                .unwrap()
                .programs
                .len(),
            0
        );
    }

    #[test]
    fn unknown_syscalls_are_named() {
        let names = ["read", "chown32", "getcwd", "keyctrl"];
        assert_eq!(
            unknown_syscalls(names.into_iter(), TargetArch::x86_64),
            ["chown32", "keyctrl"]
        );
        assert!(unknown_syscalls(["open"].into_iter(), TargetArch::x86_64).is_empty());
        assert_eq!(
            unknown_syscalls(["open"].into_iter(), TargetArch::aarch64),
            ["open"]
        );
    }
}
