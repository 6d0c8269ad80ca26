//! `/metrics` in both exposition formats, read by the tools that consume them: the Prometheus
//! text format (the default) passes `promtool check metrics` and the Python client's text parser;
//! OpenMetrics (`Accept: application/openmetrics-text`) passes the Python client's OpenMetrics
//! parser, which is strict. Each has its own Content-Type, and every family has HELP and TYPE.

use deltanode_e2e::{accepted_by, await_convergence, NodeProc, TempDir};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

fn scrape(node: &NodeProc, accept: Option<&str>) -> (String, String) {
    let mut req = ureq::get(format!("{}/metrics", node.api));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let resp = req.call().expect("GET /metrics");
    let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
    (kind, resp.into_body().read_to_string().unwrap())
}

/// The families declared by `# TYPE` lines, and those with `# HELP`.
fn declared(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let names = |prefix: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    (names("# TYPE "), names("# HELP "))
}

const PYTHON_TEXT: &str = "import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(sys.stdin.read()))
assert len(fams) > 20, len(fams)
assert all(f.documentation for f in fams), [f.name for f in fams if not f.documentation]
";

const PYTHON_OPENMETRICS: &str = "import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(sys.stdin.read()))
assert len(fams) > 20, len(fams)
assert all(f.documentation for f in fams), [f.name for f in fams if not f.documentation]
";

#[test]
fn both_formats_pass_the_tools_that_read_them() {
    let dir = TempDir::new("metrics-formats");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    a.op("c", json!({"type": "gcounter", "op": "inc", "by": 2}));
    b.op("s", json!({"type": "set", "op": "add", "value": "x"}));
    await_convergence(&[&a, &b], Duration::from_secs(30));

    let (kind, text) = scrape(&a, None);
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "the text format has no # EOF");
    let (types, helps) = declared(&text);
    assert_eq!(types, helps, "every family has HELP and TYPE");
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        let name = sample.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains(*f)))
            .unwrap_or(name);
        assert!(types.contains(family), "sample {name} has no family");
    }
    accepted_by("promtool", &["check", "metrics"], &text, "the metrics");
    accepted_by("python3", &["-c", PYTHON_TEXT], &text, "the metrics");

    for accept in [
        "application/openmetrics-text",
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;\
         q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ] {
        let (kind, om) = scrape(&b, Some(accept));
        assert_eq!(
            kind,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(om.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        let (types, helps) = declared(&om);
        assert_eq!(types, helps);
        accepted_by("python3", &["-c", PYTHON_OPENMETRICS], &om, "the metrics");
    }
    // The same counts in both.
    let (_, text_b) = scrape(&b, Some("text/plain"));
    let (_, om_b) = scrape(&b, Some("application/openmetrics-text"));
    let line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("deltanode_updates_total{origin=\"local\"}"))
            .unwrap()
            .to_string()
    };
    assert_eq!(line(&text_b), line(&om_b));
    assert_eq!(line(&text_b), "deltanode_updates_total{origin=\"local\"} 1");
}
