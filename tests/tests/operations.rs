//! Operating a node: the Prometheus metrics, and the peers view.

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::Duration;

#[test]
fn metrics_cover_the_spec_and_count_what_happened() {
    let dir = TempDir::new("metrics");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    for i in 0..5 {
        a.op("s", json!({"type":"gset","op":"add","value":i}));
    }
    b.op("r", json!({"type":"register","op":"set","value":"b"}));
    a.op("r", json!({"type":"register","op":"set","value":"a"}));
    await_convergence(&[&a, &b], Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let text = metrics(&a);
    for name in [
        "deltanode_sync_messages_sent_total{kind=\"delta\"}",
        "deltanode_sync_messages_sent_total{kind=\"ack\"}",
        "deltanode_sync_messages_sent_total{kind=\"state\"}",
        "deltanode_sync_messages_sent_total{kind=\"digest\"}",
        "deltanode_sync_bytes_sent_total",
        "deltanode_sync_bytes_received_total",
        "deltanode_sync_payload_units_sent_total",
        "deltanode_sync_metadata_units_sent_total",
        "deltanode_delta_buffer_groups",
        "deltanode_neighbours",
        "deltanode_neighbour_down_total",
        "deltanode_objects",
        "deltanode_memory_units",
        "deltanode_conflicts",
        "deltanode_updates_total{origin=\"local\"}",
        "deltanode_updates_total{origin=\"remote\"}",
        "deltanode_replication_lag_seconds_count",
        "deltanode_decode_errors_total",
        "deltanode_full_state_sends_total",
    ] {
        sample(&text, name);
    }
    assert_eq!(
        sample(&text, "deltanode_updates_total{origin=\"local\"}"),
        6.0
    );
    assert!(sample(&text, "deltanode_updates_total{origin=\"remote\"}") >= 1.0);
    assert_eq!(sample(&text, "deltanode_neighbours"), 1.0);
    assert_eq!(sample(&text, "deltanode_objects"), 2.0);
    assert!(
        sample(&text, "deltanode_sync_payload_units_sent_total") >= 5.0,
        "a's five elements went to b"
    );
    assert!(sample(&text, "deltanode_sync_bytes_sent_total") > 0.0);
    assert_eq!(
        sample(&text, "deltanode_replication_lag_seconds_count"),
        6.0,
        "every local update was acked by b"
    );
    assert_eq!(
        sample(&text, "deltanode_delta_buffer_groups"),
        0.0,
        "everything acked, the buffer drained"
    );
    assert_eq!(sample(&text, "deltanode_decode_errors_total"), 0.0);
    assert!(text.contains(&format!(
        "deltanode_neighbour_bytes_sent_total{{peer=\"{}\"}}",
        b.peer_id
    )));
    let (_, peers) = a.get("/v1/peers");
    assert_eq!(peers[0]["peer_id"], json!(b.peer_id));
    assert_eq!(peers[0]["connected"], json!(true));
    assert_eq!(peers[0]["pending_groups"], json!(0));
    assert!(peers[0]["last_ack_unix_ms"].as_u64().unwrap() > 0);
}

#[test]
fn the_change_feed_streams_resumes_resets_and_cuts_off_slow_readers() {
    use deltanode_e2e::SseReader;
    use std::io::{Read, Write};
    let dir = TempDir::new("feed");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    let t = Duration::from_secs(10);
    let feed = SseReader::open(&a, None);
    b.op("from-b", json!({"type":"gcounter","op":"inc","by":2}));
    let remote = feed.next(t);
    assert_eq!(
        (
            remote.data["key"].clone(),
            remote.data["origin"].clone(),
            remote.data["value"].clone()
        ),
        (json!("from-b"), json!("remote"), json!(2))
    );
    a.op("from-a", json!({"type":"set","op":"add","value":"x"}));
    let local = feed.next(t);
    assert_eq!(
        (
            local.data["key"].clone(),
            local.data["type"].clone(),
            local.data["origin"].clone()
        ),
        (json!("from-a"), json!("set"), json!("local"))
    );
    assert!(local.id.parse::<u64>().unwrap() > remote.id.parse::<u64>().unwrap());
    a.op("later", json!({"type":"lww","op":"set","value":1}));
    assert_eq!(feed.next(t).data["key"], json!("later"));

    // Resuming after the first event replays the two after it, in order.
    let resumed = SseReader::open(&a, Some(&remote.id));
    assert_eq!(resumed.next(t).data["key"], json!("from-a"));
    assert_eq!(resumed.next(t).data["key"], json!("later"));
    // An id the node no longer holds gets the full state.
    let reset = SseReader::open(&a, Some("1")).next(t);
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["objects"]["from-a"]["value"], json!(["x"]));
    assert_eq!(reset.data["objects"].as_object().unwrap().len(), 3);

    // A reader that never reads: big events pile up until it is cut off with a clear event.
    let addr = a.api.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(slow, "GET /v1/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let big = "x".repeat(16 * 1024);
    for round in 0..60 {
        let ops: Vec<_> = (0..40)
            .map(
                |i| json!({"key": format!("big{round}-{i}"), "type":"lww","op":"set","value": big}),
            )
            .collect();
        let (status, _) = a.post_raw("/v1/batch", &json!({ "ops": ops }).to_string());
        assert_eq!(status, 200);
    }
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut tail = Vec::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = slow.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 4096);
        }
        if String::from_utf8_lossy(&tail).contains("event: lagged") {
            break;
        }
    }
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.contains("event: lagged") && tail.contains("cut off"),
        "no lagged event; stream ended with {:?}",
        &tail[tail.len().saturating_sub(300)..]
    );
    // The node is fine.
    assert_eq!(a.get("/health").0, 200);
}

#[test]
fn a_cluster_rolled_back_from_one_node_converges_to_the_checkpoint() {
    let dir = TempDir::new("rollback");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    let c = NodeProc::start(&dir.join("c"), &["--peer".into(), b.addr()]);
    a.op("n", json!({"type":"counter","op":"inc","by":10}));
    a.op("s", json!({"type":"set","op":"add","value":"keep"}));
    b.op("l", json!({"type":"lww","op":"set","value":"old"}));
    b.op("m", json!({"type":"map","op":"put","field":"f","value":1}));
    c.op("r", json!({"type":"register","op":"set","value":"v1"}));
    c.op("g", json!({"type":"gset","op":"add","value":1}));
    await_convergence(&[&a, &b, &c], Duration::from_secs(10));
    let (status, cp) = a.post_raw("/v1/checkpoints", &json!({"label":"before"}).to_string());
    assert_eq!(status, 201, "{cp}");
    assert_eq!(
        a.post_raw("/v1/checkpoints", &json!({"label":"before"}).to_string())
            .0,
        409
    );
    // Changes everywhere after the checkpoint.
    b.op("n", json!({"type":"counter","op":"dec","by":4}));
    c.op("s", json!({"type":"set","op":"remove","value":"keep"}));
    c.op("s", json!({"type":"set","op":"add","value":"new"}));
    a.op("l", json!({"type":"lww","op":"set","value":"new"}));
    b.op("m", json!({"type":"map","op":"remove","field":"f"}));
    b.op("m", json!({"type":"map","op":"put","field":"g","value":2}));
    a.op("r", json!({"type":"register","op":"set","value":"v2"}));
    c.op("fresh", json!({"type":"set","op":"add","value":"x"}));
    c.op("g", json!({"type":"gset","op":"add","value":2}));
    await_convergence(&[&a, &b, &c], Duration::from_secs(10));
    // The grow-only set changed: a plain rollback refuses and changes nothing.
    let before = a.digest();
    let (status, refused) = a.post_raw("/v1/rollback", &json!({"label":"before"}).to_string());
    assert_eq!(
        (status, refused["irreversible"].clone()),
        (409, json!(["g"])),
        "{refused}"
    );
    assert_eq!(a.digest(), before);
    let (status, done) = a.post_raw(
        "/v1/rollback",
        &json!({"label":"before","partial":true}).to_string(),
    );
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["irreversible"], json!(["g"]));
    await_convergence(&[&a, &b, &c], Duration::from_secs(10));
    let (_, then) = a.get("/v1/checkpoints/before");
    assert_eq!(then["digest"], cp["digest"]);
    for node in [&a, &b, &c] {
        let (_, now) = node.get("/v1/state");
        for key in ["n", "s", "l", "m", "r"] {
            assert_eq!(
                now["objects"][key]["value"], then["objects"][key]["value"],
                "{key} on {}",
                node.peer_id
            );
        }
        assert_eq!(
            now["objects"]["fresh"]["value"],
            json!([]),
            "created after: back to empty"
        );
        assert_eq!(
            now["objects"]["g"]["value"],
            json!([1, 2]),
            "grow-only: left as is"
        );
    }
    // The compensating writes stick: later sync rounds do not undo them.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.get("/v1/objects/n").1["value"], json!(10));
    let (_, list) = b.get("/v1/checkpoints");
    assert_eq!(
        list,
        json!([]),
        "checkpoints are local to the node that took them"
    );
    assert_eq!(a.get("/v1/checkpoints").1[0]["label"], json!("before"));
    assert_eq!(
        a.post_raw("/v1/rollback", &json!({"label":"nope"}).to_string())
            .0,
        404
    );
}

#[test]
fn concurrent_writes_show_as_a_counted_conflict_until_a_later_write() {
    let dir = TempDir::new("conflict");
    // Two nodes that do not know each other yet write the same register and map field.
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &[]);
    a.op("r", json!({"type":"register","op":"set","value":"from-a"}));
    b.op("r", json!({"type":"register","op":"set","value":"from-b"}));
    a.op("m", json!({"type":"map","op":"put","field":"f","value":1}));
    b.op("m", json!({"type":"map","op":"put","field":"f","value":2}));
    // Now b restarts knowing a (its state is on disk) and they sync.
    b.kill();
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    await_convergence(&[&a, &b], Duration::from_secs(10));
    assert_eq!(
        a.get("/v1/objects/r").1["value"],
        json!(["from-a", "from-b"])
    );
    assert_eq!(a.get("/v1/objects/m").1["value"], json!({"f": [1, 2]}));
    assert_eq!(sample(&metrics(&a), "deltanode_conflicts"), 2.0);
    b.op(
        "r",
        json!({"type":"register","op":"set","value":"resolved"}),
    );
    await_convergence(&[&a, &b], Duration::from_secs(10));
    assert_eq!(a.get("/v1/objects/r").1["value"], json!(["resolved"]));
    assert_eq!(
        sample(&metrics(&a), "deltanode_conflicts"),
        1.0,
        "the map field is still in conflict"
    );
}

#[test]
fn with_an_api_token_every_request_needs_it() {
    let dir = TempDir::new("token");
    let node = NodeProc::start_local(&dir.join("n"), &[], Some("s3cret"));
    assert_eq!(node.get("/health").0, 200, "with the token");
    for (method, path) in [
        ("GET", "/health"),
        ("GET", "/v1/state"),
        ("GET", "/metrics"),
        ("POST", "/v1/objects/k"),
        ("GET", "/v1/events"),
    ] {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let url = format!("{}{path}", node.api);
        let mut resp = if method == "GET" {
            agent.get(&url).call()
        } else {
            agent.post(&url).send(r#"{"type":"gcounter","op":"inc"}"#)
        }
        .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
        let body: serde_json::Value = resp.body_mut().read_json().unwrap();
        assert!(body["error"].is_string());
        let wrong = agent
            .get(&format!("{}/health", node.api))
            .header("Authorization", "Bearer nope")
            .call()
            .unwrap();
        assert_eq!(wrong.status().as_u16(), 401);
    }
    assert_eq!(
        node.get("/v1/objects/k").0,
        404,
        "the refused write changed nothing"
    );
}

#[test]
fn json_logs_have_a_line_per_neighbour_up_and_down() {
    use std::process::{Command, Stdio};
    let dir = TempDir::new("logs");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = Command::new(deltanode_e2e::binary())
        .args([
            "run",
            "--no-mdns",
            "--api",
            "127.0.0.1:0",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--sync-interval",
            "100",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(dir.join("b"))
        .args(["--peer", &a.addr()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let a_id = a.peer_id.clone();
    a.kill();
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &b.id().to_string()])
        .status();
    let out = b.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    for expected in [
        "ready",
        "neighbour up",
        "neighbour down",
        "SIGTERM: shutting down",
        "node stopped",
    ] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} in {messages:?}"
        );
    }
    let up = lines
        .iter()
        .find(|l| l["fields"]["message"] == "neighbour up")
        .unwrap();
    assert_eq!(up["fields"]["peer"], json!(a_id));
}

#[test]
fn the_grafana_dashboard_only_uses_metrics_the_node_exports() {
    let dir = TempDir::new("grafana");
    let node = NodeProc::start(&dir.join("n"), &[]);
    let text = metrics(&node);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana/deltanode.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("deltanode_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                used.push(name);
            }
        }
    }
    assert!(
        used.len() >= 15,
        "the dashboard queries the node's metrics: {used:?}"
    );
    for name in used {
        // A counter family is named after its samples (`x_total`) in the text format; a
        // histogram's buckets are `x_bucket`.
        let family = name.strip_suffix("_bucket").unwrap_or(&name);
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "the dashboard queries {name}, which the node does not export"
        );
    }
}

#[test]
fn the_change_feed_resumes_across_a_restart() {
    // Ids come from the durable log, which the node replays into the feed when it starts: a
    // reader resuming after a restart gets what it missed, not a reset.
    use deltanode_e2e::SseReader;
    let dir = TempDir::new("feed-restart");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let t = Duration::from_secs(10);
    let feed = SseReader::open(&a, None);
    a.op("first", json!({"type":"set","op":"add","value":1}));
    let seen = feed.next(t);
    a.op("missed", json!({"type":"counter","op":"inc","by":3}));
    a.op("missed-too", json!({"type":"lww","op":"set","value":"v"}));
    drop(feed);
    assert!(a.terminate());
    let a = NodeProc::start(&dir.join("a"), &[]);
    let resumed = SseReader::open(&a, Some(&seen.id));
    let (one, two) = (resumed.next(t), resumed.next(t));
    assert_eq!(one.event, "", "a change, not a reset: {:?}", one.data);
    assert_eq!(
        (one.data["key"].clone(), one.data["value"].clone()),
        (json!("missed"), json!(3))
    );
    assert_eq!(two.data["key"], json!("missed-too"));
    assert!(one.id.parse::<u64>().unwrap() > seen.id.parse::<u64>().unwrap());
    // New events go on above the replayed ones.
    a.op("after", json!({"type":"set","op":"add","value":2}));
    let three = resumed.next(t);
    assert_eq!(three.data["key"], json!("after"));
    assert!(three.id.parse::<u64>().unwrap() > two.id.parse::<u64>().unwrap());
}
