//! Kathará labs: a directory with `lab.conf` (`device[N]=DOMAIN` wires `ethN` of the device
//! to a collision domain, `device[option]=value` sets an option), `DEVICE.startup` and
//! `shared.startup` scripts, and `DEVICE/` and `shared/` trees copied into the devices' root.
//! A collision domain with two members becomes a link, any other a bridge.

use std::path::{Path, PathBuf};

use super::{
    cpu_count, docker_memory, lab_name_from, node_name_from, target_reachable, unreachable_target,
    ImportError, Imported, Lab, LinkOut, NodeOut, Origin,
};

/// Files of a `DEVICE/` tree bound into a node, at most (a bigger tree is refused: the
/// lab would need a `rootfs`).
const MAX_FILES: usize = 1000;

/// One `device[arg]=value` line.
struct Assignment {
    line: usize,
    /// Column of the value, 1-based.
    value_col: usize,
    device: String,
    arg: String,
    value: String,
}

/// Converts the Kathará lab in `dir`. `name`: the lab's name, else the directory's.
/// `exists`: whether a path exists on the host (bind targets).
pub fn import(
    dir: &Path,
    name: Option<&str>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Imported, ImportError> {
    let conf_path = dir.join("lab.conf");
    let conf = std::fs::read_to_string(&conf_path).map_err(|e| {
        ImportError::at(&conf_path, None, format!("cannot read: {e}"))
            .hint("a Kathará lab is a directory with a lab.conf")
    })?;
    let assignments = parse_conf(&conf_path, &conf)?;
    let mut lab = Lab {
        name: lab_name(dir, name)?,
        ..Lab::default()
    };
    // Devices: those of lab.conf in order, then those with only a directory or a .startup.
    let mut devices: Vec<String> = Vec::new();
    for a in &assignments {
        if !devices.contains(&a.device) {
            devices.push(a.device.clone());
        }
    }
    let mut extra = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let device = if is_dir {
                Some(file_name.clone())
            } else {
                file_name.strip_suffix(".startup").map(str::to_string)
            };
            if let Some(d) = device {
                if d != "shared" && !d.starts_with(['_', '.']) && !devices.contains(&d) {
                    extra.push(d);
                }
            }
        }
    }
    extra.sort();
    extra.dedup();
    devices.extend(extra);

    let mut names: Vec<(String, String)> = Vec::new();
    for d in &devices {
        let n = node_name_from(d);
        if names.iter().any(|(_, o)| *o == n) {
            return Err(ImportError::at(
                &conf_path,
                None,
                format!("device {d} and another device both become '{n}' in topo"),
            ));
        }
        if n != *d {
            lab.warn(
                &conf_path,
                None,
                d,
                format!("device renamed '{n}' (topo node names are a-z, 0-9 and '-')"),
            );
        }
        names.push((d.clone(), n.clone()));
        lab.nodes.push(NodeOut::new(&n));
    }
    let node_of = |d: &str| {
        names
            .iter()
            .find(|(raw, _)| raw == d)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    };

    // Collision domains in order of first mention: members `node:ethN`.
    let mut domains: Vec<(String, Vec<String>, usize)> = Vec::new();
    for a in &assignments {
        let node = node_of(&a.device);
        let field = format!("{}[{}]", a.device, a.arg);
        let pos = Some((a.line, a.value_col));
        if let Ok(n) = a.arg.parse::<u32>() {
            let (domain, mac) = match a.value.split_once('/') {
                Some((d, m)) => (d, Some(m)),
                None => (a.value.as_str(), None),
            };
            if mac.is_some() {
                lab.warn(
                    &conf_path,
                    pos,
                    &field,
                    "MAC address not converted: topo derives MAC addresses from the names".into(),
                );
            }
            let member = format!("{node}:eth{n}");
            match domains.iter_mut().find(|(d, _, _)| d == domain) {
                Some((_, members, _)) => {
                    if members.contains(&member) {
                        return Err(ImportError::at(
                            &conf_path,
                            pos,
                            format!("{field} is wired twice"),
                        ));
                    }
                    members.push(member)
                }
                None => domains.push((domain.to_string(), vec![member], a.line)),
            }
            continue;
        }
        let Some(out) = lab.node_mut(&node) else {
            continue;
        };
        let v = a.value.as_str();
        let mut warning: Option<String> = None;
        match a.arg.as_str() {
            "image" => {
                warning = Some(format!(
                    "image '{v}' not converted: a topo node runs the host's programs (give it \
                     a `rootfs` directory with the image's files to run those)"
                ))
            }
            "mem" => match docker_memory(v) {
                Some(m) => out.memory = Some(m),
                None => warning = Some(format!("'{v}' not converted: not a size")),
            },
            "cpus" => match cpu_count(v) {
                Some(c) => out.cpu = Some(c),
                None => warning = Some(format!("'{v}' not converted: not a positive number")),
            },
            "sysctl" => match v.split_once('=') {
                Some((k, val)) if k.trim().starts_with("net.") => {
                    out.set_sysctl(k.trim(), val.trim())
                }
                _ => {
                    warning = Some(format!(
                        "'{v}' not converted: topo sets only per-namespace `net.*` sysctls, \
                         written KEY=VALUE"
                    ))
                }
            },
            "env" => match v.split_once('=') {
                Some((k, val)) => out.set_env(k.trim(), val),
                None => warning = Some(format!("'{v}' not converted: not NAME=VALUE")),
            },
            "exec" => out.commands.push((
                v.to_string(),
                Origin {
                    file: conf_path.clone(),
                    pos,
                    field: field.clone(),
                },
            )),
            "ipv6" => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => {}
                "false" | "0" | "no" => {
                    out.set_sysctl("net.ipv6.conf.all.disable_ipv6", "1");
                    out.set_sysctl("net.ipv6.conf.default.disable_ipv6", "1");
                }
                _ => warning = Some(format!("'{v}' not converted: not true or false")),
            },
            "bridged" => {
                warning = Some(
                    "not converted: topo does not NAT a node to the host's network (a `host:` \
                     link joins a node to the host)"
                        .into(),
                )
            }
            "port" => {
                warning = Some(
                    "not converted: topo does not forward host ports (use a `host:` link)".into(),
                )
            }
            "shell" | "num_terms" | "hosthome" | "privileged" | "ulimit" => {
                warning = Some(format!(
                    "not converted: topo has no '{}' option (`topo exec` opens a shell)",
                    a.arg
                ))
            }
            other => {
                warning = Some(format!("not converted: unknown option '{other}'"));
            }
        }
        if let Some(w) = warning {
            lab.warn(&conf_path, pos, &field, w);
        }
    }
    for (domain, members, line) in domains {
        if members.len() == 2 {
            lab.links.push(LinkOut {
                a: members[0].clone(),
                b: members[1].clone(),
                mtu: None,
            });
            continue;
        }
        let bridge = if crate::spec::ifname_problem("bridge", &domain).is_none() {
            domain.clone()
        } else {
            let short = format!("cd-{}", lab.bridges.len());
            lab.warn(
                &conf_path,
                Some((line, 1)),
                &domain,
                format!("collision domain named '{short}' (bridge names are 1 to 15 bytes)"),
            );
            short
        };
        lab.bridges.push((bridge, members));
    }

    // Files and startup scripts: shared ones first, as Kathará runs them.
    let shared_files = tree_binds(&mut lab, dir, "shared", exists)?;
    let shared_startup = startup(dir, "shared")?;
    for (raw, name) in &names {
        let own_files = tree_binds(&mut lab, dir, raw, exists)?;
        let own_startup = startup(dir, raw)?;
        let Some(out) = lab.node_mut(name) else {
            continue;
        };
        // A file in the device's own tree wins over the shared one at the same path.
        let mut binds: Vec<String> = own_files.clone();
        for b in &shared_files {
            let target = bind_target(b);
            if !own_files.iter().any(|o| bind_target(o) == target) {
                binds.push(b.clone());
            }
        }
        out.binds = binds;
        // lab.conf `exec` lines run first, then shared.startup, then DEVICE.startup.
        for script in [&shared_startup, &own_startup].into_iter().flatten() {
            out.commands.extend(script.iter().cloned());
        }
    }
    Ok(lab.finish())
}

fn bind_target(bind: &str) -> &str {
    let rest = bind.split_once(':').map(|(_, r)| r).unwrap_or(bind);
    rest.trim_end_matches(":ro")
}

fn lab_name(dir: &Path, given: Option<&str>) -> Result<String, ImportError> {
    if let Some(n) = given {
        return match crate::spec::lab_name_problem(n) {
            None => Ok(n.to_string()),
            Some((message, hint)) => {
                Err(ImportError::at(Path::new("--name"), None, message).hint(hint))
            }
        };
    }
    let full = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    lab_name_from(&raw).ok_or_else(|| {
        ImportError::at(dir, None, format!("no lab name can be made of '{raw}'"))
            .hint("pass `--name NAME`")
    })
}

/// The assignments of lab.conf; comments, blank lines and `LAB_*` descriptions are skipped.
fn parse_conf(path: &Path, text: &str) -> Result<Vec<Assignment>, ImportError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let col = |byte: usize| raw[..indent + byte].chars().count() + 1;
        let Some(eq) = trimmed.find('=') else {
            return Err(ImportError::at(
                path,
                Some((line, col(0))),
                format!("'{trimmed}' is not device[arg]=value"),
            )
            .hint("lab.conf lines are device[N]=DOMAIN, device[option]=value or LAB_KEY=value"));
        };
        let (key, value) = (&trimmed[..eq], &trimmed[eq + 1..]);
        if key.starts_with("LAB_") && !key.contains('[') {
            continue;
        }
        let (Some(open), true) = (key.find('['), key.ends_with(']')) else {
            return Err(ImportError::at(
                path,
                Some((line, col(0))),
                format!("'{key}' is not device[arg]"),
            )
            .hint("write device[N]=DOMAIN or device[option]=value"));
        };
        let device = &key[..open];
        let arg = &key[open + 1..key.len() - 1];
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name_ok(device) {
            return Err(ImportError::at(
                path,
                Some((line, col(0))),
                format!("invalid device name '{device}'"),
            ));
        }
        if !name_ok(arg) {
            return Err(ImportError::at(
                path,
                Some((line, col(open + 1))),
                format!("invalid argument '{arg}' of device {device}"),
            ));
        }
        let v = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| {
                v.strip_prefix(*q)
                    .and_then(|r| r.strip_suffix(*q))
                    .filter(|_| v.len() >= 2)
            })
            .unwrap_or(v);
        if arg.bytes().all(|b| b.is_ascii_digit()) {
            let domain = unquoted.split('/').next().unwrap_or("");
            if domain.is_empty() || domain.contains([' ', ',', '.']) {
                return Err(ImportError::at(
                    path,
                    Some((line, col(eq + 1))),
                    format!("invalid collision domain '{unquoted}'"),
                )
                .hint("collision domain names have no spaces, commas or dots"));
            }
        }
        out.push(Assignment {
            line,
            value_col: col(eq + 1),
            device: device.to_string(),
            arg: arg.to_string(),
            value: unquoted.to_string(),
        });
    }
    Ok(out)
}

/// The lines of `DIR/NAME.startup`, each with where it is; `None` without the file.
fn startup(dir: &Path, name: &str) -> Result<Option<Vec<(String, Origin)>>, ImportError> {
    let path = dir.join(format!("{name}.startup"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImportError::at(&path, None, format!("cannot read: {e}"))),
    };
    let field = format!("{name}.startup");
    Ok(Some(
        text.lines()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.to_string(),
                    Origin {
                        file: path.clone(),
                        pos: Some((i + 1, 1)),
                        field: field.clone(),
                    },
                )
            })
            .collect(),
    ))
}

/// `DIR/NAME/**` as read-only binds of each file to its path in the node.
fn tree_binds(
    lab: &mut Lab,
    dir: &Path,
    name: &str,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<String>, ImportError> {
    let root = dir.join(name);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d)
            .map_err(|e| ImportError::at(&d, None, format!("cannot read: {e}")))?;
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                files.push(p);
            } else {
                lab.warn(
                    &p,
                    None,
                    &format!("{name}/"),
                    "not converted: only regular files are bound into a node".into(),
                );
            }
            if files.len() > MAX_FILES {
                return Err(ImportError::at(
                    &root,
                    None,
                    format!("more than {MAX_FILES} files to copy into the node"),
                )
                .hint("give the node a `rootfs` instead"));
            }
        }
    }
    files.sort();
    let mut binds = Vec::new();
    for f in files {
        let Ok(rel) = f.strip_prefix(&root) else {
            continue;
        };
        let rel = rel.to_string_lossy();
        let target = format!("/{rel}");
        let field = format!("{name}/{rel}");
        if target.contains(':') {
            lab.warn(
                &f,
                None,
                &field,
                "not converted: a bind path cannot contain ':'".into(),
            );
        } else if !target_reachable(&target, exists) {
            lab.warn(
                &f,
                None,
                &field,
                format!("not converted: {}", unreachable_target(&target)),
            );
        } else {
            binds.push(format!("./{name}/{rel}:{target}:ro"));
        }
    }
    Ok(binds)
}
