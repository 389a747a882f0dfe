//! Services: started after `exec:`, reachable over TCP from another node, logged to the run
//! directory, ended by `down`.

use crate::common::*;

const YAML: &str = r#"name: tn-svc
nodes:
  web:
    interfaces: {eth0: {addresses: [198.51.100.80/24]}}
    exec: ["mkdir -p /tmp/www", "echo hello-from-topo > /tmp/www/index.html"]
    services:
      http: cd /tmp/www && exec python3 -m http.server 8080 --bind 198.51.100.80
  client:
    interfaces: {eth0: {addresses: [198.51.100.10/24]}}
links:
  - endpoints: [client:eth0, web:eth0]
"#;

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn service_is_reachable_over_tcp_logged_and_ended_by_down() {
    let lab = TestLab::new("tn-svc", YAML);
    lab.up();
    let to = "198.51.100.80:8080".parse().expect("addr");
    let body = eventually(10, || {
        tcp_request(&lab.ns("client"), to, b"GET /index.html HTTP/1.0\r\n\r\n")
            .ok()
            .filter(|b| !b.is_empty())
    })
    .expect("the service answers over TCP from another node");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("hello-from-topo"), "{body}");
    // The request is in the service's log in the run directory.
    let log = "/run/topo/tn-svc/logs/web.http.log";
    let logged = eventually(5, || {
        std::fs::read_to_string(log)
            .ok()
            .filter(|l| l.contains("GET /index.html"))
    });
    assert!(logged.is_some(), "service log {log} holds the request");
    let status: serde_json::Value =
        serde_json::from_slice(&topo(&["status", "--lab", "tn-svc", "-o", "json"]).stdout)
            .expect("json");
    let web = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "web")
        .expect("web")
        .clone();
    let pid = web["services"][0]["pid"].as_i64().expect("service pid");
    assert_eq!(web["services"][0]["running"], true);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        comm.contains("http.server"),
        "pid {pid} is the service: {comm}"
    );
    // A service that dies is restarted by the next up.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill service");
    let gone = eventually(5, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(Some(()), |s| s.contains(") Z").then_some(()))
    });
    assert!(gone.is_some());
    assert!(
        lab.plan().contains("+ service web/http"),
        "plan shows the restart"
    );
    lab.up();
    assert!(eventually(10, || tcp_request(
        &lab.ns("client"),
        to,
        b"GET / HTTP/1.0\r\n\r\n"
    )
    .ok()
    .filter(|b| !b.is_empty()))
    .is_some());
    let status: serde_json::Value =
        serde_json::from_slice(&topo(&["status", "--lab", "tn-svc", "-o", "json"]).stdout)
            .expect("json");
    let web = status["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == "web")
        .expect("web")
        .clone();
    let pid2 = web["services"][0]["pid"].as_i64().expect("pid");
    assert!(lab.down().status.success());
    for p in [pid, pid2] {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "service {p} survived down"
        );
    }
}

#[test]
#[cfg_attr(not(kernel_tests), ignore = "needs root")]
fn failing_exec_fails_up_with_node_command_status_and_output() {
    let yaml = "name: tn-exf\nnodes:\n  a:\n    exec: [\"echo before\", \"echo some-diagnostic >&2; exit 3\", \"echo never\"]\n";
    let lab = TestLab::new("tn-exf", yaml);
    let out = topo(&["up", path(&lab.file)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("node a: command `echo some-diagnostic >&2; exit 3` exited with status 3"),
        "{err}"
    );
    assert!(
        err.contains("some-diagnostic"),
        "the tail of the output is shown: {err}"
    );
    assert!(!err.contains("never"));
}
