//! The OCI/Docker seccomp profile format (`config.json`'s `linux.seccomp`, Docker's
//! `--security-opt seccomp=FILE`), read strictly: every key is either honoured or refused with
//! an error that names it. See the parent module for what is supported and why.

use seccompiler::{SeccompAction, SeccompCmpOp, TargetArch};
use serde::Deserialize;
use serde_json::Value;

use super::build::unknown_syscalls;
use super::SeccompError;

/// A parsed profile: a default action and rules tried against each system call. When several
/// rules match one call, the strictest action wins (the kernel's precedence: kill process,
/// kill thread, trap, errno, log, allow); among errno rules, the errno value that the profile
/// uses first latest.
#[derive(Debug, Clone, PartialEq)]
pub struct OciProfile {
    pub default_action: SeccompAction,
    pub rules: Vec<Rule>,
}

/// One `syscalls` entry: its action applies to a call of any of `names` whose arguments match
/// all of `args` (an empty `args` matches every call).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub names: Vec<String>,
    pub action: SeccompAction,
    pub args: Vec<ArgCmp>,
}

/// A comparison of one 64-bit system call argument, as libseccomp does it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgCmp {
    /// The argument's position, 0 to 5.
    pub index: u8,
    /// For `MaskedEq(mask)`: `arg & mask == value`.
    pub op: SeccompCmpOp,
    pub value: u64,
}

/// `errno` values above this are not errors to userspace (the kernel caps `SECCOMP_RET_DATA`
/// for errno at `MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

/// Every `SCMP_ARCH_*` name libseccomp knows; any other name is a typo and refused.
const KNOWN_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<RawArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<RawSyscall>>,
    // Known but unsupported: accepted only when empty, so that their presence is never
    // silently ignored.
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSyscall {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// The pre-1.12 Docker form: one name per entry.
    #[serde(default)]
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<RawArg>>,
    /// Accepted and not used.
    #[serde(default, rename = "comment")]
    _comment: Option<String>,
    #[serde(default)]
    includes: Option<Value>,
    #[serde(default)]
    excludes: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// Parses an OCI/Docker seccomp profile for `arch` (system call names are checked against it).
pub(super) fn parse_oci_for(json: &str, arch: TargetArch) -> Result<OciProfile, SeccompError> {
    let raw: RawProfile = serde_json::from_str(json).map_err(SeccompError::Json)?;
    refuse_if_set("flags", raw.flags.as_ref().is_some_and(|f| !f.is_empty()))?;
    refuse_if_set(
        "listenerPath",
        raw.listener_path.as_ref().is_some_and(|p| !p.is_empty()),
    )?;
    refuse_if_set(
        "listenerMetadata",
        raw.listener_metadata
            .as_ref()
            .is_some_and(|m| !m.is_empty()),
    )?;
    check_architectures(raw.architectures.as_deref().unwrap_or_default(), arch)?;
    check_arch_map(raw.arch_map.as_deref().unwrap_or_default(), arch)?;

    let default_errno = match raw.default_errno_ret {
        Some(n) if raw.default_action != "SCMP_ACT_ERRNO" => {
            return Err(unsupported(
                "defaultErrnoRet",
                format!("{n} is only meaningful with defaultAction SCMP_ACT_ERRNO"),
            ))
        }
        n => n,
    };
    let default_action = action("defaultAction", &raw.default_action, default_errno)?;
    let rules = raw
        .syscalls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, s)| rule(&format!("syscalls[{i}]"), s, arch))
        .collect::<Result<_, _>>()?;
    Ok(OciProfile {
        default_action,
        rules,
    })
}

fn rule(key: &str, raw: RawSyscall, arch: TargetArch) -> Result<Rule, SeccompError> {
    // `includes`/`excludes` make a rule depend on capabilities, kernel version or arch; an
    // empty object (as Docker writes it) conditions nothing.
    let conditional = |v: &Option<Value>| match v {
        None | Some(Value::Null) => false,
        Some(Value::Object(m)) => !m.is_empty(),
        Some(_) => true,
    };
    refuse_if_set(&format!("{key}.includes"), conditional(&raw.includes))?;
    refuse_if_set(&format!("{key}.excludes"), conditional(&raw.excludes))?;

    let mut names = raw.names.unwrap_or_default();
    names.extend(raw.name);
    if names.is_empty() {
        return Err(unsupported(
            &format!("{key}.names"),
            "no system call named".into(),
        ));
    }
    if let Some(bad) = unknown_syscalls(names.iter().map(String::as_str), arch).first() {
        return Err(SeccompError::UnknownSyscall {
            key: format!("{key}.names"),
            name: bad.clone(),
            arch: format!("{arch:?}"),
        });
    }
    if raw.errno_ret.is_some() && raw.action != "SCMP_ACT_ERRNO" {
        return Err(unsupported(
            &format!("{key}.errnoRet"),
            "is only meaningful with action SCMP_ACT_ERRNO".into(),
        ));
    }
    let action = action(&format!("{key}.action"), &raw.action, raw.errno_ret)?;
    let args = raw
        .args
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(j, a)| arg(&format!("{key}.args[{j}]"), a))
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        names,
        action,
        args,
    })
}

/// Maps an `SCMP_ACT_*` name the way libseccomp defines it (`SCMP_ACT_KILL` is
/// `SCMP_ACT_KILL_THREAD`); `errno` defaults to EPERM as in runc.
fn action(key: &str, name: &str, errno: Option<u32>) -> Result<SeccompAction, SeccompError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => {
            let n = errno.unwrap_or(libc::EPERM as u32);
            if n > MAX_ERRNO {
                return Err(unsupported(key, format!("errno {n} is above {MAX_ERRNO}")));
            }
            SeccompAction::Errno(n)
        }
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => {
            return Err(unsupported(
                key,
                "SCMP_ACT_TRACE is not supported: node processes have no seccomp tracer".into(),
            ))
        }
        "SCMP_ACT_NOTIFY" => {
            return Err(unsupported(
                key,
                "SCMP_ACT_NOTIFY is not supported: topo runs no seccomp agent".into(),
            ))
        }
        other => return Err(unsupported(key, format!("unknown action '{other}'"))),
    })
}

fn arg(key: &str, raw: RawArg) -> Result<ArgCmp, SeccompError> {
    let index = u8::try_from(raw.index)
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| {
            unsupported(
                &format!("{key}.index"),
                format!("{} is not an argument position (0 to 5)", raw.index),
            )
        })?;
    let (op, value) = match raw.op.as_str() {
        // libseccomp: (arg & value) == valueTwo
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(raw.value), raw.value_two),
        other => {
            if raw.value_two != 0 {
                return Err(unsupported(
                    &format!("{key}.valueTwo"),
                    "is only used by SCMP_CMP_MASKED_EQ".into(),
                ));
            }
            let op = match other {
                "SCMP_CMP_EQ" => SeccompCmpOp::Eq,
                "SCMP_CMP_NE" => SeccompCmpOp::Ne,
                "SCMP_CMP_LT" => SeccompCmpOp::Lt,
                "SCMP_CMP_LE" => SeccompCmpOp::Le,
                "SCMP_CMP_GT" => SeccompCmpOp::Gt,
                "SCMP_CMP_GE" => SeccompCmpOp::Ge,
                _ => {
                    return Err(unsupported(
                        &format!("{key}.op"),
                        format!("unknown comparison '{other}'"),
                    ))
                }
            };
            (op, raw.value)
        }
    };
    Ok(ArgCmp { index, op, value })
}

/// `architectures` lists the machines a profile is meant for. Names of other machines are
/// ignored (they do not change the filter built here); an unknown name is refused as a typo,
/// and a list that leaves out this machine is refused rather than applied where it was not
/// meant to be.
fn check_architectures(list: &[String], arch: TargetArch) -> Result<(), SeccompError> {
    if let Some(bad) = list.iter().find(|a| !KNOWN_ARCHES.contains(&a.as_str())) {
        return Err(unsupported(
            "architectures",
            format!("unknown architecture '{bad}'"),
        ));
    }
    let native = native_arch_name(arch);
    if !list.is_empty() && !list.iter().any(|a| a == native) {
        return Err(unsupported(
            "architectures",
            format!("does not list this machine's architecture {native}"),
        ));
    }
    Ok(())
}

/// `archMap` is Docker's table from a native architecture to the compatibility ABIs that share
/// its rules. topo builds filters for the native ABI only (see the module doc), so only an
/// entry for this machine with its own sub-architectures is accepted.
fn check_arch_map(map: &[RawArchMap], arch: TargetArch) -> Result<(), SeccompError> {
    let native = native_arch_name(arch);
    for (i, entry) in map.iter().enumerate() {
        if entry.architecture != native {
            return Err(unsupported(
                &format!("archMap[{i}].architecture"),
                format!(
                    "'{}' is not this machine's architecture {native}; topo builds filters for \
                     {native} only",
                    entry.architecture
                ),
            ));
        }
        let subs = entry.sub_architectures.as_deref().unwrap_or_default();
        if let Some(bad) = subs
            .iter()
            .find(|s| !native_subarches(arch).contains(&s.as_str()))
        {
            return Err(unsupported(
                &format!("archMap[{i}].subArchitectures"),
                format!("'{bad}' is not a compatibility ABI of {native}"),
            ));
        }
    }
    Ok(())
}

fn native_arch_name(arch: TargetArch) -> &'static str {
    match arch {
        TargetArch::x86_64 => "SCMP_ARCH_X86_64",
        TargetArch::aarch64 => "SCMP_ARCH_AARCH64",
        TargetArch::riscv64 => "SCMP_ARCH_RISCV64",
    }
}

fn native_subarches(arch: TargetArch) -> &'static [&'static str] {
    match arch {
        TargetArch::x86_64 => &["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        TargetArch::aarch64 => &["SCMP_ARCH_ARM"],
        TargetArch::riscv64 => &[],
    }
}

fn refuse_if_set(key: &str, set: bool) -> Result<(), SeccompError> {
    if set {
        Err(unsupported(key, "is not supported by topo".into()))
    } else {
        Ok(())
    }
}

fn unsupported(key: &str, reason: String) -> SeccompError {
    SeccompError::Unsupported {
        key: key.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<OciProfile, SeccompError> {
        parse_oci_for(json, TargetArch::x86_64)
    }

    /// The message of a refused profile, which must name `key`.
    fn refused(json: &str, key: &str) -> String {
        let msg = match parse(json) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains(key), "'{msg}' does not name '{key}'");
        msg
    }

    const GOOD: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
        "flags": [],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [],
             "comment": "", "includes": {}, "excludes": {}},
            {"name": "getcwd", "action": "SCMP_ACT_ERRNO", "errnoRet": 95, "args": null},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
            {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["acct"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["syslog"], "action": "SCMP_ACT_TRAP"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG",
             "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_NE"},
                      {"index": 2, "value": 2, "op": "SCMP_CMP_LT"},
                      {"index": 3, "value": 3, "op": "SCMP_CMP_LE"},
                      {"index": 4, "value": 4, "op": "SCMP_CMP_GT"},
                      {"index": 5, "value": 18446744073709551615, "op": "SCMP_CMP_GE"}]}
        ]
    }"#;

    #[test]
    fn good_profile_maps_actions_and_comparisons() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.default_action, SeccompAction::Errno(38));
        let actions: Vec<_> = p.rules.iter().map(|r| r.action.clone()).collect();
        assert_eq!(
            actions,
            [
                SeccompAction::Allow,
                SeccompAction::Errno(95),
                SeccompAction::Allow,
                SeccompAction::Allow,
                SeccompAction::Errno(libc::EPERM as u32),
                SeccompAction::KillThread,
                SeccompAction::KillProcess,
                SeccompAction::KillThread,
                SeccompAction::Trap,
                SeccompAction::Log,
            ]
        );
        assert_eq!(p.rules[0].names, ["read", "write"]);
        assert_eq!(p.rules[1].names, ["getcwd"]);
        assert!(p.rules[1].args.is_empty());
        let cmp = |index, op, value| ArgCmp { index, op, value };
        assert_eq!(p.rules[2].args, [cmp(0, SeccompCmpOp::Eq, 8)]);
        assert_eq!(
            p.rules[3].args,
            [cmp(0, SeccompCmpOp::MaskedEq(2114060288), 0)]
        );
        assert_eq!(
            p.rules[9].args,
            [
                cmp(1, SeccompCmpOp::Ne, 1),
                cmp(2, SeccompCmpOp::Lt, 2),
                cmp(3, SeccompCmpOp::Le, 3),
                cmp(4, SeccompCmpOp::Gt, 4),
                cmp(5, SeccompCmpOp::Ge, u64::MAX),
            ]
        );
    }

    #[test]
    fn minimal_profile_needs_only_default_action() {
        let p = parse(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#).unwrap();
        assert_eq!(p.default_action, SeccompAction::Allow);
        assert!(p.rules.is_empty());
    }

    #[test]
    fn masked_eq_compares_with_value_two() {
        let p = parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 255, "valueTwo": 17, "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.rules[0].args,
            [ArgCmp {
                index: 0,
                op: SeccompCmpOp::MaskedEq(255),
                value: 17
            }]
        );
    }

    #[test]
    fn unsupported_top_level_keys_are_refused_by_name() {
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#,
            "flags",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}"#,
            "listenerPath",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}"#,
            "listenerMetadata",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#,
            "defaultErrnoRet",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "seccomp": 1}"#,
            "seccomp",
        );
        refused(r#"{"syscalls": []}"#, "defaultAction");
    }

    #[test]
    fn foreign_architectures_are_refused_by_name() {
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_46"]}"#,
            "architectures",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AARCH64"]}"#,
            "architectures",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_AARCH64",
                             "subArchitectures": ["SCMP_ARCH_ARM"]}]}"#,
            "archMap[0].architecture",
        );
        refused(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                             "subArchitectures": ["SCMP_ARCH_ARM"]}]}"#,
            "archMap[0].subArchitectures",
        );
    }

    #[test]
    fn unsupported_rule_constructs_are_refused_by_name() {
        let with = |entry: &str| {
            format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ALLOW"}}, {entry}]}}"#
            )
        };
        let cases = [
            (
                r#"{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}"#,
                "syscalls[1].includes",
            ),
            (
                r#"{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}}"#,
                "syscalls[1].excludes",
            ),
            (
                r#"{"names": ["chown32"], "action": "SCMP_ACT_ALLOW"}"#,
                "chown32",
            ),
            (
                r#"{"names": ["keyctrl"], "action": "SCMP_ACT_ERRNO"}"#,
                "syscalls[1].names",
            ),
            (
                r#"{"names": [], "action": "SCMP_ACT_ERRNO"}"#,
                "syscalls[1].names",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_TRACE"}"#,
                "syscalls[1].action",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}"#,
                "SCMP_ACT_NOTIFY",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_DENY"}"#,
                "SCMP_ACT_DENY",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}"#,
                "syscalls[1].errnoRet",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}"#,
                "syscalls[1].action",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}"#,
                "syscalls[1].args[0].index",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_IN"}]}"#,
                "syscalls[1].args[0].op",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "valueTwo": 1, "op": "SCMP_CMP_EQ"}]}"#,
                "syscalls[1].args[0].valueTwo",
            ),
            (
                r#"{"names": ["read"], "action": "SCMP_ACT_ALLOW", "minKernel": "5.0"}"#,
                "minKernel",
            ),
        ];
        for (entry, key) in cases {
            refused(&with(entry), key);
        }
    }
}
