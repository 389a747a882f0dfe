//! A node's commands (containerlab `exec`, Kathará `.startup` lines) read for what `topo`
//! declares itself: `ip addr add ADDR/LEN dev IF`, `ifconfig IF ADDR[/LEN] [netmask MASK]
//! [up]`, `ip route add DEST|default via GW [dev IF]`, `ip route add DEST dev IF` and
//! `ip link set [dev] IF up`. A line is converted only when the result is one `topo`
//! accepts (the interface is wired, the gateway is on a subnet of the node); every other line
//! stays, in order, as an `exec:` line.

use std::net::{IpAddr, Ipv4Addr};

use ipnetwork::IpNetwork;

use super::{NodeOut, Origin, RouteOut, Warning};

/// One command, as far as it was understood.
enum Cmd {
    Addr { iface: String, addr: IpNetwork },
    Up { iface: String },
    Route(RouteOut),
    Other,
}

/// Fills `node`'s interfaces, routes and `exec` from its `commands`; `wired`: the node's
/// interfaces that links and bridges wire.
pub(crate) fn convert(node: &mut NodeOut, wired: &[String], warnings: &mut Vec<Warning>) {
    let commands = std::mem::take(&mut node.commands);
    let on_node = |iface: &str| iface == "lo" || wired.iter().any(|w| w == iface);
    // Addresses first: `topo` adds them before routes, and a route is kept only when its
    // gateway is on one of them.
    let mut parsed: Vec<(String, Origin, Cmd)> = Vec::new();
    for (line, origin) in commands {
        let cmd = parse(&line);
        let cmd = match cmd {
            Cmd::Addr { iface, addr } if on_node(&iface) => {
                let list = node.addresses_mut(&iface);
                let text = addr.to_string();
                if !list.contains(&text) {
                    list.push(text);
                }
                continue;
            }
            Cmd::Up { iface } if on_node(&iface) => continue,
            other => other,
        };
        parsed.push((line, origin, cmd));
    }
    let subnets: Vec<IpNetwork> = node
        .interfaces
        .iter()
        .flat_map(|(_, a)| a.iter())
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut raw: Vec<(String, Origin)> = Vec::new();
    for (line, origin, cmd) in parsed {
        if let Cmd::Route(r) = &cmd {
            if route_fits(r, &subnets, &on_node) && !node.routes.iter().any(|o| o.to == r.to) {
                node.routes.push(r.clone());
                continue;
            }
        }
        raw.push((line, origin));
    }
    for (line, origin) in &raw {
        if let Some(program) = host_service(line) {
            warnings.push(Warning {
                file: origin.file.clone(),
                pos: origin.pos,
                field: origin.field.clone(),
                message: format!(
                    "'{}' kept as an exec line: it starts the host's {program} in the node \
                     (topo nodes run the host's programs); a `services:` entry supervises a \
                     daemon",
                    line.trim()
                ),
            });
        }
    }
    node.exec = exec_lines(raw.into_iter().map(|(l, _)| l).collect());
}

/// The lines as `exec:` entries: one entry a line, unless a line continues on the next or
/// opens a compound command, then the whole script as one entry (run by one `/bin/sh -c`).
fn exec_lines(lines: Vec<String>) -> Vec<String> {
    let kept: Vec<String> = lines
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .filter(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .collect();
    let compound = kept.iter().any(|l| {
        let first = l.split_whitespace().next().unwrap_or("");
        l.ends_with('\\')
            || l.contains("<<")
            || l.ends_with('{')
            || l.ends_with('(')
            || matches!(
                first,
                "if" | "for" | "while" | "until" | "case" | "function" | "{" | "("
            )
    });
    if compound && kept.len() > 1 {
        vec![kept.join("\n")]
    } else {
        kept.into_iter().map(|l| l.trim().to_string()).collect()
    }
}

/// The daemon a line starts through the host's service manager, if it does.
fn host_service(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [script, action, ..]
            if script.starts_with("/etc/init.d/")
                && matches!(*action, "start" | "restart" | "reload") =>
        {
            Some(script.trim_start_matches("/etc/init.d/").to_string())
        }
        ["service", name, "start" | "restart", ..] => Some((*name).to_string()),
        ["systemctl", "start" | "restart", name, ..] => Some((*name).to_string()),
        _ => None,
    }
}

fn route_fits(r: &RouteOut, subnets: &[IpNetwork], on_node: &dyn Fn(&str) -> bool) -> bool {
    if let Some(dev) = &r.dev {
        if !on_node(dev) {
            return false;
        }
    }
    match &r.via {
        None => r.dev.is_some(),
        Some(gw) => {
            let Ok(gw) = gw.parse::<IpAddr>() else {
                return false;
            };
            if let IpAddr::V6(v6) = gw {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    return r.dev.is_some();
                }
            }
            subnets.iter().any(|n| n.contains(gw) && n.ip() != gw)
        }
    }
}

/// Whether a line is a plain command: no quoting, expansion, redirection or sequencing.
fn plain(line: &str) -> bool {
    !line.contains(|c: char| "'\"`$;&|<>()\\*?#".contains(c))
}

fn parse(line: &str) -> Cmd {
    let line = line.trim();
    if !plain(line) {
        return Cmd::Other;
    }
    let w: Vec<&str> = line.split_whitespace().collect();
    let Some((&first, rest)) = w.split_first() else {
        return Cmd::Other;
    };
    match first {
        "ip" | "/sbin/ip" | "/usr/sbin/ip" | "/bin/ip" => parse_ip(rest),
        "ifconfig" | "/sbin/ifconfig" => parse_ifconfig(rest),
        _ => Cmd::Other,
    }
}

fn parse_ip(args: &[&str]) -> Cmd {
    let mut args = args;
    let mut family: Option<u8> = None;
    while let Some((&opt, rest)) = args.split_first() {
        match opt {
            "-4" => family = Some(4),
            "-6" => family = Some(6),
            _ => break,
        }
        args = rest;
    }
    let Some((&object, rest)) = args.split_first() else {
        return Cmd::Other;
    };
    let Some((&verb, rest)) = rest.split_first() else {
        return Cmd::Other;
    };
    let is = |word: &str, full: &str, min: usize| word.len() >= min && full.starts_with(word);
    if is(object, "address", 1) && (verb == "add" || verb == "a") {
        // `ADDR/LEN dev IF` in either order, nothing else.
        let (addr, iface) = match rest {
            [a, "dev", i] | ["dev", i, a] => (*a, *i),
            _ => return Cmd::Other,
        };
        return match addr.parse::<IpNetwork>() {
            Ok(n) if addr.contains('/') && family_ok(family, n.ip()) => Cmd::Addr {
                iface: iface.to_string(),
                addr: n,
            },
            _ => Cmd::Other,
        };
    }
    if is(object, "link", 1) && verb == "set" {
        return match rest {
            ["dev", i, "up"] | [i, "up"] => Cmd::Up {
                iface: (*i).to_string(),
            },
            _ => Cmd::Other,
        };
    }
    if is(object, "route", 1) && (verb == "add" || verb == "a") {
        let Some((&dest, mut opts)) = rest.split_first() else {
            return Cmd::Other;
        };
        let mut via = None;
        let mut dev = None;
        while let Some((&key, tail)) = opts.split_first() {
            let Some((&value, tail)) = tail.split_first() else {
                return Cmd::Other;
            };
            match key {
                "via" if via.is_none() => via = Some(value),
                "dev" if dev.is_none() => dev = Some(value),
                _ => return Cmd::Other,
            }
            opts = tail;
        }
        let to = match dest {
            "default" => match (family, via.map(str::parse::<IpAddr>)) {
                (Some(6), _) | (_, Some(Ok(IpAddr::V6(_)))) => "::/0".to_string(),
                _ => "default".to_string(),
            },
            d => match d.parse::<IpNetwork>() {
                Ok(n) if d.contains('/') && n.network() == n.ip() && family_ok(family, n.ip()) => {
                    n.to_string()
                }
                _ => return Cmd::Other,
            },
        };
        if let Some(v) = via {
            match v.parse::<IpAddr>() {
                Ok(ip) if family_ok(family, ip) => {}
                _ => return Cmd::Other,
            }
        }
        return Cmd::Route(RouteOut {
            to,
            via: via.map(str::to_string),
            dev: dev.map(str::to_string),
        });
    }
    Cmd::Other
}

fn family_ok(family: Option<u8>, ip: IpAddr) -> bool {
    match family {
        Some(4) => ip.is_ipv4(),
        Some(6) => ip.is_ipv6(),
        _ => true,
    }
}

/// `ifconfig IF up`, `ifconfig IF ADDR/LEN [up]`, `ifconfig IF ADDR netmask MASK [up]`.
fn parse_ifconfig(args: &[&str]) -> Cmd {
    let args: Vec<&str> = match args.last() {
        Some(&"up") => args[..args.len() - 1].to_vec(),
        _ => args.to_vec(),
    };
    match args.as_slice() {
        [iface] => Cmd::Up {
            iface: (*iface).to_string(),
        },
        [iface, addr] if addr.contains('/') => match addr.parse::<IpNetwork>() {
            Ok(n) => Cmd::Addr {
                iface: (*iface).to_string(),
                addr: n,
            },
            Err(_) => Cmd::Other,
        },
        [iface, addr, "netmask", mask] => {
            let (Ok(ip), Ok(mask)) = (addr.parse::<Ipv4Addr>(), mask.parse::<Ipv4Addr>()) else {
                return Cmd::Other;
            };
            match ipnetwork::ipv4_mask_to_prefix(mask)
                .ok()
                .and_then(|p| ipnetwork::Ipv4Network::new(ip, p).ok())
            {
                Some(n) => Cmd::Addr {
                    iface: (*iface).to_string(),
                    addr: IpNetwork::V4(n),
                },
                None => Cmd::Other,
            }
        }
        _ => Cmd::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn origin() -> Origin {
        Origin {
            file: PathBuf::from("x"),
            pos: Some((1, 1)),
            field: "exec".to_string(),
        }
    }

    fn run(lines: &[&str], wired: &[&str]) -> (NodeOut, Vec<Warning>) {
        let mut node = NodeOut::new("a");
        node.commands = lines.iter().map(|l| (l.to_string(), origin())).collect();
        let wired: Vec<String> = wired.iter().map(|s| s.to_string()).collect();
        let mut warnings = Vec::new();
        convert(&mut node, &wired, &mut warnings);
        (node, warnings)
    }

    #[test]
    fn simple_forms_become_addresses_and_routes() {
        let (n, w) = run(
            &[
                "ip link set eth1 up",
                "ip addr add 192.168.11.2/24 dev eth1",
                "ip -6 address add dev eth1 2001:db8:1::2/64",
                "ifconfig eth2 10.0.0.1 netmask 255.255.255.252 up",
                "ifconfig lo 10.255.0.1/32",
                "ip route add 192.168.0.0/16 via 192.168.11.1 dev eth1",
                "ip route add default via 10.0.0.2",
                "ip -6 route add default via 2001:db8:1::1",
                "ip route add 203.0.113.0/24 dev eth2",
            ],
            &["eth1", "eth2"],
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            n.interfaces,
            vec![
                (
                    "eth1".to_string(),
                    vec![
                        "192.168.11.2/24".to_string(),
                        "2001:db8:1::2/64".to_string()
                    ]
                ),
                ("eth2".to_string(), vec!["10.0.0.1/30".to_string()]),
                ("lo".to_string(), vec!["10.255.0.1/32".to_string()]),
            ]
        );
        let to: Vec<&str> = n.routes.iter().map(|r| r.to.as_str()).collect();
        assert_eq!(to, ["192.168.0.0/16", "default", "::/0", "203.0.113.0/24"]);
        assert_eq!(n.routes[0].dev.as_deref(), Some("eth1"));
        assert!(n.exec.is_empty(), "{:?}", n.exec);
    }

    #[test]
    fn what_topo_would_refuse_stays_an_exec_line() {
        let (n, _) = run(
            &[
                "ip addr add 10.0.0.1/24 dev eth9", // not wired
                "ip addr add 10.0.1.1/24 dev eth1",
                "ip route add 10.9.0.0/16 via 10.7.0.1", // gateway off every subnet
                "ip route add 10.9.0.1/16 via 10.0.1.2", // host bits
                "ip route add 10.8.0.0/16 via 10.0.1.2 metric 5",
                "ip addr add 10.0.2.1/24 dev eth1 label x",
                "echo $HOSTNAME > /tmp/x",
                "# a comment",
                "",
            ],
            &["eth1"],
        );
        assert_eq!(n.interfaces.len(), 1);
        assert!(n.routes.is_empty());
        assert_eq!(
            n.exec,
            [
                "ip addr add 10.0.0.1/24 dev eth9",
                "ip route add 10.9.0.0/16 via 10.7.0.1",
                "ip route add 10.9.0.1/16 via 10.0.1.2",
                "ip route add 10.8.0.0/16 via 10.0.1.2 metric 5",
                "ip addr add 10.0.2.1/24 dev eth1 label x",
                "echo $HOSTNAME > /tmp/x",
            ]
        );
    }

    #[test]
    fn a_compound_script_stays_one_exec_entry() {
        let (n, _) = run(&["for i in 1 2; do", "  echo $i", "done", "echo end"], &[]);
        assert_eq!(n.exec, ["for i in 1 2; do\n  echo $i\ndone\necho end"]);
    }

    #[test]
    fn starting_a_host_daemon_is_warned() {
        let (n, w) = run(&["/etc/init.d/frr start", "systemctl start nginx"], &[]);
        assert_eq!(n.exec.len(), 2);
        assert_eq!(w.len(), 2);
        assert!(w[0].message.contains("host's frr"), "{w:?}");
        assert!(w[1].message.contains("host's nginx"), "{w:?}");
    }
}
