//! `deltanode ctl` against a real node: every command's human and JSON output, its errors (one
//! line and a hint, whatever RUST_BACKTRACE says), and global options before or after the command.

use deltanode_e2e::{NodeProc, TempDir};
use std::time::Duration;

#[test]
fn ctl_drives_a_node_with_human_and_json_output() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("ctl");
    let node = NodeProc::start(&dir.join("n"), &[]);
    let api = node.api.trim_start_matches("http://").to_string();
    let ctl = |args: &[&str]| {
        let out = Command::new(deltanode_e2e::binary())
            .arg("ctl")
            .arg("--api")
            .arg(&api)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut watch = Command::new(deltanode_e2e::binary())
        .args(["ctl", "--api", &api, "--json", "watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ctl(&["inc", "hits", "5"]).1, "hits (counter): 5");
    assert_eq!(ctl(&["inc", "hits", "-2"]).1, "hits (counter): 3");
    assert_eq!(ctl(&["add", "tags", "red"]).1, r#"tags (set): ["red"]"#);
    assert_eq!(
        ctl(&["add", "tags", "{\"n\":1}"]).1,
        r#"tags (set): ["red",{"n":1}]"#
    );
    assert_eq!(
        ctl(&["remove", "tags", "red"]).1,
        r#"tags (set): [{"n":1}]"#
    );
    assert_eq!(
        ctl(&["put", "notes", "title", "hello"]).1,
        r#"notes (map): {"title":["hello"]}"#
    );
    assert_eq!(
        ctl(&["op", "reg", r#"{"type":"register","op":"set","value":7}"#]).1,
        "reg (register): [7]"
    );
    assert_eq!(ctl(&["get", "hits"]).1, "hits (counter): 3");
    let (ok, state, _) = ctl(&["--json", "state"]);
    assert!(ok);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["objects"].as_object().unwrap().len(), 4);
    assert!(ctl(&["state"])
        .1
        .starts_with(&format!("digest {}", state["digest"].as_str().unwrap())));
    assert!(ctl(&["health"]).1.starts_with("ok peer "));
    assert_eq!(ctl(&["peers"]).1, "no peers");
    assert_eq!(ctl(&["sync"]).1, "sync started");
    assert!(ctl(&["checkpoint", "cp1"])
        .1
        .starts_with("checkpoint cp1 digest "));
    assert!(ctl(&["checkpoints"]).1.starts_with("cp1 at "));
    let (ok, _, err) = ctl(&["checkpoint", "cp1"]);
    assert!(!ok && err.contains("409"), "{err}");
    let (ok, _, err) = ctl(&["add", "hits", "x"]);
    assert!(
        !ok && err.contains("409") && err.contains("holds a counter"),
        "{err}"
    );
    let (ok, _, err) = ctl(&["get", "absent"]);
    assert!(!ok && err.contains("404"), "{err}");
    assert_eq!(ctl(&["conflicts"]).1, "no conflicts");
    // Global options after the command; a plain error is one line and a hint, backtrace or not.
    let out = Command::new(deltanode_e2e::binary())
        .args(["ctl", "health", "--api", "127.0.0.1:1"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.starts_with("error: cannot reach the node at http://127.0.0.1:1"),
        "{err}"
    );
    assert!(err.lines().count() <= 2 && err.contains("hint: "), "{err}");
    // `wait` gives up after its timeout on a port nobody listens on, and answers at once when
    // the node is up.
    let t = std::time::Instant::now();
    let out = Command::new(deltanode_e2e::binary())
        .args(["ctl", "--api", "127.0.0.1:1", "wait", "--timeout", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "gave up early"
    );
    let (ok, out, _) = ctl(&["wait"]);
    assert!(ok && out.starts_with("ok peer "), "{out}");
    let out = Command::new(deltanode_e2e::binary())
        .args(["ctl", "health", "--token", ""])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("the token is empty"));
    // watch printed the six changes, one JSON line each.
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let keys: Vec<&str> = lines.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["hits", "hits", "tags", "tags", "tags", "notes", "reg"]
    );
}
