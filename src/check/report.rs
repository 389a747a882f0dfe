//! What `topo test` found: one report per step, each with the checks it ran (a node, what
//! it tried, what it expected and what it got). Written as text lines, JSON or JUnit XML.

use std::time::Duration;

use serde::Serialize;

/// A whole run of a file's tests.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub lab: String,
    pub file: String,
    pub passed: bool,
    pub seconds: f64,
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.outcome == Outcome::Fail)
            .count()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// 1-based, in file order.
    pub index: usize,
    pub name: String,
    /// The step's key: `exec`, `ping`, `link`, …
    pub kind: &'static str,
    pub outcome: Outcome,
    pub seconds: f64,
    /// How often its checks were run (more than once inside a `wait` window).
    pub attempts: u32,
    /// The checks of the last attempt of each (a check that passed is not run again).
    pub checks: Vec<CheckReport>,
    /// Why an action failed, or a check could not be run at all.
    pub error: Option<String>,
}

/// One check: a node and what it tried there.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub node: Option<String>,
    /// What was tried: `ping 10.2.0.10 (h2)`, `route 10.0.3.0/24`, `vtysh -c …`.
    pub what: String,
    pub passed: bool,
    /// What would have passed.
    pub expected: String,
    /// What was found.
    pub got: String,
    /// The command's output, when it ran one.
    pub output: Option<String>,
}

impl StepReport {
    /// The failure in a few lines: each failing check with what it expected and got.
    pub fn failure_text(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.error {
            out.push_str(e);
            out.push('\n');
        }
        for c in self.checks.iter().filter(|c| !c.passed) {
            let on = c
                .node
                .as_deref()
                .map(|n| format!("{n}: "))
                .unwrap_or_default();
            out.push_str(&format!(
                "{on}{}\n  expected: {}\n  got:      {}\n",
                c.what, c.expected, c.got
            ));
            if let Some(output) = c.output.as_deref().filter(|o| !o.trim().is_empty()) {
                out.push_str("  output:\n");
                for line in tail_lines(output, 20).lines() {
                    out.push_str(&format!("    {}\n", cut_line(line)));
                }
            }
        }
        out
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    let mut out = lines[from..].join("\n");
    if from > 0 {
        out = format!("[{from} lines before]\n{out}");
    }
    out
}

/// A line of output as a report shows it: at most 200 characters.
fn cut_line(line: &str) -> String {
    const MAX: usize = 200;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… [{} more bytes]", &line[..at], line.len() - at),
        None => line.to_string(),
    }
}

/// The step's line on a terminal: result, time, name.
pub fn step_line(s: &StepReport) -> String {
    let word = match s.outcome {
        Outcome::Pass => "ok  ",
        Outcome::Fail => "FAIL",
    };
    let tries = if s.attempts > 1 {
        format!(" ({} tries)", s.attempts)
    } else {
        String::new()
    };
    format!("{word} {:>6.2}s  {}{tries}", s.seconds, s.name)
}

/// JUnit XML: one test suite for the lab, one test case per step; a failure carries the
/// expectation as its message and the checks, with their last output, as its text.
pub fn junit(report: &Report) -> Result<String, String> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(report.lab.clone());
    suite.set_time(Duration::from_secs_f64(report.seconds));
    for s in &report.steps {
        let status = match s.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Fail => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let message = match (&s.error, s.checks.iter().find(|c| !c.passed)) {
                    (Some(e), _) => e.clone(),
                    (None, Some(c)) => format!("{}: expected {}", c.what, c.expected),
                    (None, None) => "failed".to_string(),
                };
                st.set_message(message);
                st.set_type(s.kind);
                st.set_description(s.failure_text());
                st
            }
        };
        let mut case = TestCase::new(s.name.clone(), status);
        case.set_classname(format!("{}.{}", report.lab, s.kind));
        case.set_time(Duration::from_secs_f64(s.seconds));
        suite.add_test_case(case);
    }
    let mut r = quick_junit::Report::new(format!("topo test {}", report.file));
    r.set_time(Duration::from_secs_f64(report.seconds));
    r.add_test_suite(suite);
    r.to_string().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            lab: "l".into(),
            file: "lab.yaml".into(),
            passed: false,
            seconds: 1.5,
            steps: vec![
                StepReport {
                    index: 1,
                    name: "adjacency".into(),
                    kind: "ospf",
                    outcome: Outcome::Pass,
                    seconds: 0.5,
                    attempts: 3,
                    checks: Vec::new(),
                    error: None,
                },
                StepReport {
                    index: 2,
                    name: "reach <h2>".into(),
                    kind: "ping",
                    outcome: Outcome::Fail,
                    seconds: 1.0,
                    attempts: 1,
                    checks: vec![CheckReport {
                        node: Some("h1".into()),
                        what: "ping 10.2.0.10 (h2)".into(),
                        passed: false,
                        expected: "a reply".into(),
                        got: "no reply to 1 request".into(),
                        output: None,
                    }],
                    error: None,
                },
            ],
        }
    }

    #[test]
    fn junit_has_a_case_per_step_and_the_failure_says_what_was_tried() {
        let xml = junit(&report()).unwrap_or_default();
        assert!(xml.contains(r#"tests="2""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains(r#"name="reach &lt;h2&gt;""#), "{xml}");
        assert!(
            xml.contains(r#"message="ping 10.2.0.10 (h2): expected a reply""#),
            "{xml}"
        );
        assert!(xml.contains("got:      no reply to 1 request"), "{xml}");
    }

    #[test]
    fn step_lines_show_result_time_and_tries() {
        let r = report();
        assert_eq!(step_line(&r.steps[0]), "ok     0.50s  adjacency (3 tries)");
        assert_eq!(step_line(&r.steps[1]), "FAIL   1.00s  reach <h2>");
    }

    #[test]
    fn long_lines_are_cut() {
        let long = "x".repeat(250);
        assert_eq!(
            cut_line(&long),
            format!("{}… [50 more bytes]", "x".repeat(200))
        );
        assert_eq!(cut_line("short"), "short");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail_lines("a\nb\nc", 2), "[1 lines before]\nb\nc");
        assert_eq!(tail_lines("a", 5), "a");
    }
}
