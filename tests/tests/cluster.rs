//! Real `deltanode run` processes on loopback (`--no-mdns`, `--peer`): convergence in a line and a
//! ring under concurrent writes of every type, a restart on a new port, a foreign swarm key, the
//! API's errors.

use deltanode_e2e::{
    await_convergence, metrics, sample, write_every_type, NodeProc, SseReader, TempDir,
};
use serde_json::json;
use std::time::Duration;

/// Starts `n` nodes, node i given `--peer` of each j < i that `linked(i, j)`.
fn cluster(
    dir: &TempDir,
    n: usize,
    linked: impl Fn(usize, usize) -> bool,
    extra: &[String],
) -> Vec<NodeProc> {
    let mut nodes: Vec<NodeProc> = Vec::new();
    for i in 0..n {
        let mut args = extra.to_vec();
        for (j, other) in nodes.iter().enumerate() {
            if linked(i, j) {
                args.extend(["--peer".to_string(), other.addr()]);
            }
        }
        nodes.push(NodeProc::start(&dir.join(&format!("n{i}")), &args));
    }
    nodes
}

fn concurrent_writes_converge(nodes: &[NodeProc]) {
    std::thread::scope(|s| {
        for (i, node) in nodes.iter().enumerate() {
            s.spawn(move || write_every_type(node, i));
        }
    });
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&refs, Duration::from_secs(20));
    let n = nodes.len() as i64;
    let (_, state) = nodes[0].get("/v1/state");
    let objects = &state["objects"];
    assert_eq!(
        objects["gc"]["value"],
        json!((1..=n).sum::<i64>()),
        "every increment counted once"
    );
    assert_eq!(objects["pn"]["value"], json!(7 * n));
    let every: Vec<String> = (0..nodes.len()).map(|i| format!("from-{i}")).collect();
    for key in ["gs", "tp", "aw"] {
        assert_eq!(objects[key]["value"], json!(every), "{key}");
    }
    // Writes a node saw before its own are overwritten; the concurrent ones are all kept.
    let mv = objects["mv"]["value"].as_array().unwrap();
    assert!(
        !mv.is_empty()
            && mv
                .iter()
                .all(|v| every.contains(&v.as_str().unwrap().to_string())),
        "{mv:?}"
    );
    assert_eq!(
        objects["mp"]["value"].as_object().unwrap().len(),
        nodes.len()
    );
    let notes: serde_json::Map<String, serde_json::Value> = (0..nodes.len())
        .map(|i| {
            let note = json!({"body": format!("hello {i}"), "tags": ["a", "b"]});
            (format!("n{i}"), note)
        })
        .collect();
    assert_eq!(
        objects["doc"]["value"],
        json!(notes),
        "every note, every edit"
    );
    assert!(every.contains(&objects["lw"]["value"].as_str().unwrap().to_string()));
    assert_eq!(
        objects["batch"]["value"].as_array().unwrap().len(),
        nodes.len()
    );
}

#[test]
fn four_nodes_in_a_line_converge_under_concurrent_writes_of_every_type() {
    let dir = TempDir::new("line");
    let nodes = cluster(&dir, 4, |i, j| j + 1 == i, &[]);
    concurrent_writes_converge(&nodes);
}

#[test]
fn five_nodes_in_a_ring_converge_under_concurrent_writes_of_every_type() {
    let dir = TempDir::new("ring");
    let nodes = cluster(&dir, 5, |i, j| j + 1 == i || (i == 4 && j == 0), &[]);
    concurrent_writes_converge(&nodes);
    // A later write resolves the multi-value register's conflict everywhere.
    nodes[2].op(
        "mv",
        json!({"type":"register","op":"set","value":"resolved"}),
    );
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&refs, Duration::from_secs(10));
    assert_eq!(
        nodes[4].get("/v1/objects/mv").1["value"],
        json!(["resolved"])
    );
}

#[test]
fn bp_rr_tree_converges_on_a_mesh_and_after_a_node_goes() {
    // Six nodes, each linked to i±1 and i±2: every node has four neighbours, as in the paper's mesh.
    let dir = TempDir::new("tree");
    let algorithm = ["--algorithm".to_string(), "bp-rr-tree".to_string()];
    let nodes = cluster(&dir, 6, |i, j| (i - j) <= 2 || i - j >= 4, &algorithm);
    concurrent_writes_converge(&nodes);
    // Beacons went out: the links off the tree carry those, not groups.
    let beacons: f64 = nodes
        .iter()
        .map(|n| {
            sample(
                &metrics(n),
                "deltanode_sync_messages_sent_total{kind=\"digest\"}",
            )
        })
        .sum();
    assert!(beacons > 0.0, "no beacon was sent");
    // A node goes (the root or a parent, maybe): the others re-form the tree and converge on what
    // is written after.
    let mut nodes = nodes;
    nodes.remove(0).kill();
    for (i, n) in nodes.iter().enumerate() {
        n.op("after", json!({"type":"gset","op":"add","value":i}));
    }
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&refs, Duration::from_secs(30));
    assert_eq!(
        nodes[4].get("/v1/objects/after").1["value"],
        json!([0, 1, 2, 3, 4])
    );
}

#[test]
fn a_restarted_node_on_a_new_port_rejoins_and_catches_up() {
    let dir = TempDir::new("restart");
    let mut nodes = cluster(&dir, 3, |i, j| j + 1 == i, &[]);
    nodes[1].op("c", json!({"type":"counter","op":"inc","by":1}));
    let refs: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&refs, Duration::from_secs(10));
    // Stop the middle node; the ends keep writing without it.
    let middle = nodes.remove(1);
    let middle_id = middle.peer_id.clone();
    middle.kill();
    nodes[0].op("c", json!({"type":"counter","op":"inc","by":10}));
    nodes[1].op("s", json!({"type":"set","op":"add","value":"while-away"}));
    // Back on a fresh port, same data dir (so the same PeerId), told where its neighbours are.
    let back = NodeProc::start(
        &dir.join("n1"),
        &[
            "--peer".into(),
            nodes[0].addr(),
            "--peer".into(),
            nodes[1].addr(),
        ],
    );
    assert_eq!(back.peer_id, middle_id);
    back.op("c", json!({"type":"counter","op":"inc","by":100}));
    let all = [&nodes[0], &back, &nodes[1]];
    await_convergence(&all, Duration::from_secs(20));
    let (_, state) = back.get("/v1/state");
    assert_eq!(state["objects"]["c"]["value"], json!(111));
    assert_eq!(state["objects"]["s"]["value"], json!(["while-away"]));
}

#[test]
fn a_node_with_another_swarm_key_never_receives_anything() {
    let dir = TempDir::new("psk");
    let key = |name: &str, byte: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", byte.repeat(32)),
        )
        .unwrap();
        vec!["--swarm-key".to_string(), p.display().to_string()]
    };
    let (k1, k2) = (key("k1", "a1"), key("k2", "b2"));
    let a = NodeProc::start(&dir.join("a"), &k1);
    let b = NodeProc::start(
        &dir.join("b"),
        &[k1.clone(), vec!["--peer".into(), a.addr()]].concat(),
    );
    let outsider = NodeProc::start(
        &dir.join("c"),
        &[
            k2,
            vec!["--peer".into(), a.addr(), "--peer".into(), b.addr()],
        ]
        .concat(),
    );
    a.op("secret", json!({"type":"gset","op":"add","value":"x"}));
    await_convergence(&[&a, &b], Duration::from_secs(10));
    // Give the outsider several redial attempts and sync rounds.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(outsider.get("/v1/state").1["objects"], json!({}));
    assert_eq!(outsider.get("/health").1["neighbours"], json!(0));
    assert_eq!(
        a.get("/health").1["neighbours"],
        json!(1),
        "only b is a's neighbour"
    );
    // The outsider dials a and b; each failed handshake is counted by the side that saw it fail.
    let refused = |n: &NodeProc| {
        let text = metrics(n);
        let name = r#"deltanode_rejected_connections_total{reason="handshake"}"#;
        if text.contains(name) {
            sample(&text, name)
        } else {
            0.0
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while refused(&a) + refused(&b) < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the outsider's failed handshakes are counted"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_api_answers_bad_input_with_json_errors_and_changes_nothing() {
    let dir = TempDir::new("api");
    let node = NodeProc::start(&dir.join("n"), &[]);
    node.op("k", json!({"type":"gcounter","op":"inc"}));
    // Counters one step from the top: u64::MAX − 1 increments, and u64::MAX − 1 decrements.
    node.op(
        "big",
        json!({"type":"gcounter","op":"inc","by": u64::MAX - 1}),
    );
    node.op("pn", json!({"type":"counter","op":"dec","by": i64::MAX}));
    node.op("pn", json!({"type":"counter","op":"dec","by": i64::MAX}));
    let before = node.digest();
    for (path, body, status) in [
        // Past the top: refused whole, nothing changed (they once saturated and answered 200).
        (
            "/v1/objects/big",
            r#"{"type":"gcounter","op":"inc","by":2}"#,
            422,
        ),
        (
            "/v1/objects/pn",
            r#"{"type":"counter","op":"dec","by":2}"#,
            422,
        ),
        (
            "/v1/batch",
            r#"{"ops":[{"key":"big","type":"gcounter","op":"inc","by":1},{"key":"big","type":"gcounter","op":"inc","by":1}]}"#,
            422,
        ),
        ("/v1/objects/k", "{not json", 400),
        ("/v1/objects/k", r#"{"type":"gcounter","op":"dec"}"#, 400),
        (
            "/v1/objects/k",
            r#"{"type":"set","op":"add","value":1}"#,
            409,
        ),
        ("/v1/objects/k", r#"{"type":"teapot","op":"brew"}"#, 400),
        (
            "/v1/batch",
            r#"{"ops":[{"key":"a","type":"gset","op":"add","value":1},{"key":"k","type":"lww","op":"set","value":2}]}"#,
            409,
        ),
        ("/v1/batch", r#"{"ops":"nope"}"#, 400),
    ] {
        let (got, body_json) = node.post_raw(path, body);
        assert_eq!(got, status, "{path} {body}: {body_json}");
        assert!(body_json["error"].is_string(), "{path} {body}: {body_json}");
    }
    // A body over the 1 MiB limit is refused with the same JSON shape.
    let huge = json!({"type":"gset","op":"add","value":"x".repeat(2 << 20)}).to_string();
    let (status, body_json) = node.post_raw("/v1/objects/k2", &huge);
    assert_eq!(status, 413);
    assert!(
        body_json["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("length limit"),
        "{body_json}"
    );
    assert_eq!(node.digest(), before, "refused writes changed nothing");
    assert_eq!(node.get("/v1/objects/big").1["value"], json!(u64::MAX - 1));
    assert_eq!(
        node.get("/v1/objects/pn").1["value"],
        json!(-(i128::from(u64::MAX) - 1) as f64)
    );
    assert_eq!(node.get("/v1/objects/absent").0, 404);
    assert_eq!(node.get("/no/such/route").0, 404);
    assert_eq!(node.post_raw("/v1/sync", "").0, 202);
    let text = metrics(&node);
    for (status, count) in [(400, 4.0), (409, 2.0), (422, 3.0), (404, 2.0)] {
        let name = format!(r#"deltanode_api_errors_total{{status="{status}"}}"#);
        assert_eq!(sample(&text, &name), count, "{name}");
    }
    // The node can close the connection before the client has read the 413 (it stops reading the
    // oversized body), and `post_raw` then retries: every attempt is refused and counted, up to its
    // five attempts.
    let refused = sample(&text, r#"deltanode_api_errors_total{status="413"}"#);
    assert!(
        (1.0..=5.0).contains(&refused),
        "413 counted {refused} times"
    );
    let (status, health) = node.get("/health");
    assert_eq!(
        (status, health["status"].clone(), health["objects"].clone()),
        (200, json!("ok"), json!(3))
    );
    assert!(node.terminate(), "SIGTERM shuts the node down cleanly");
}

#[test]
fn deltanode_id_prints_the_peer_id_the_node_runs_with() {
    let dir = TempDir::new("id");
    let out = std::process::Command::new(deltanode_e2e::binary())
        .args(["id", "--data-dir"])
        .arg(dir.join("n"))
        .output()
        .unwrap();
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let node = NodeProc::start(&dir.join("n"), &[]);
    assert_eq!(node.peer_id, id);
}

#[test]
fn a_static_peer_that_comes_back_on_its_port_is_redialled() {
    let dir = TempDir::new("redial");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let port = a.addr().split('/').nth(4).unwrap().to_string();
    let b = NodeProc::start(&dir.join("b"), &["--peer".into(), a.addr()]);
    await_convergence(&[&a, &b], Duration::from_secs(10));
    a.kill();
    b.op("while-down", json!({"type":"gset","op":"add","value":1}));
    // a returns on the same port but knows no peer: only b's redial can bring them together.
    let a = NodeProc::start(
        &dir.join("a"),
        &["--listen".into(), format!("/ip4/127.0.0.1/tcp/{port}")],
    );
    await_convergence(&[&a, &b], Duration::from_secs(20));
    assert_eq!(a.get("/v1/objects/while-down").1["value"], json!([1]));
}

#[test]
fn with_neighbour_only_the_listed_peers_are_neighbours() {
    let dir = TempDir::new("neighbour");
    let a = NodeProc::start(&dir.join("a"), &[]);
    let b = NodeProc::start(&dir.join("b"), &[]);
    // c dials both but accepts only a.
    let c = NodeProc::start(
        &dir.join("c"),
        &[
            "--neighbour".into(),
            a.peer_id.clone(),
            "--peer".into(),
            a.addr(),
            "--peer".into(),
            b.addr(),
        ],
    );
    b.op("only-b", json!({"type":"gset","op":"add","value":"b"}));
    a.op("shared", json!({"type":"gset","op":"add","value":"a"}));
    await_convergence(&[&a, &c], Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(c.get("/health").1["neighbours"], json!(1));
    assert_eq!(
        b.get("/health").1["neighbours"],
        json!(0),
        "c disconnected b on sight"
    );
    assert_eq!(
        c.get("/v1/objects/only-b").0,
        404,
        "nothing flows from a peer that is not a neighbour"
    );
    let refused = sample(
        &metrics(&c),
        r#"deltanode_rejected_connections_total{reason="not_neighbour"}"#,
    );
    assert!(refused >= 1.0, "b's connections are counted as refused");
}

/// Two nodes edit one note of a document at once — its body text and its tags — while apart
/// from each other's latest state: both edits survive everywhere. Subtrees read by path; edits
/// whose path does not fit are refused with 422 and change nothing.
#[test]
fn two_nodes_editing_one_document_at_once_converge() {
    let dir = TempDir::new("doc");
    let nodes = cluster(&dir, 2, |_, _| true, &[]);
    let (a, b) = (&nodes[0], &nodes[1]);
    let note = json!({"title": "Plan", "body": "hello world", "tags": ["x"]});
    a.op(
        "notes",
        json!({"type":"doc","op":"put","path":["n1"],"value": note}),
    );
    await_convergence(&[a, b], Duration::from_secs(10));
    let splice = |node: &NodeProc, index: usize, delete: usize, text: &str| {
        node.op(
            "notes",
            json!({"type":"doc","op":"splice","path":["n1","body"],"index":index,"delete":delete,"text":text}),
        )
    };
    // Both at once, each typing a few characters at its own place.
    std::thread::scope(|s| {
        s.spawn(|| {
            splice(a, 0, 1, "H");
            splice(a, 5, 0, ",");
        });
        s.spawn(|| {
            splice(b, 11, 0, "!");
            b.op(
                "notes",
                json!({"type":"doc","op":"insert","path":["n1","tags"],"index":1,"values":["y"]}),
            );
        });
    });
    await_convergence(&[a, b], Duration::from_secs(10));
    for node in [a, b] {
        let (status, body) = node.get("/v1/objects/notes?path=%5B%22n1%22%2C%22body%22%5D");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["value"], json!("Hello, world!"));
        assert_eq!(body["path"], json!(["n1", "body"]));
    }
    let (_, whole) = b.get("/v1/objects/notes");
    assert_eq!(
        whole["value"],
        json!({"n1": {"title": "Plan", "body": "Hello, world!", "tags": ["x", "y"]}})
    );
    let digest = a.digest();
    for bad in [
        json!({"type":"doc","op":"splice","path":["n1","tags"],"index":0,"text":"z"}),
        json!({"type":"doc","op":"put","path":["nope","x"],"value":1}),
        json!({"type":"doc","op":"delete","path":["n1","tags",9]}),
    ] {
        let (status, body) = a.post_raw("/v1/objects/notes", &bad.to_string());
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains("path"), "{body}");
    }
    let (status, body) = a.post_raw(
        "/v1/objects/notes",
        &json!({"type":"doc","op":"splice","path":"n1"}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = a.get("/v1/objects/notes?path=%5B%22n2%22%5D");
    assert_eq!(status, 404);
    let (status, _) = a.get("/v1/objects/notes?path=nope");
    assert_eq!(status, 400);
    assert_eq!(a.digest(), digest, "refused edits change nothing");
    // The feed carries what an edit did, as splices: on the writer's node and on the other.
    let feed = SseReader::open(b, None);
    splice(a, 5, 1, ";");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // The next event of the notes on b's feed: from a, with its change.
    let next_change = || loop {
        let event = feed.next(deadline.saturating_duration_since(std::time::Instant::now()));
        if event.data["key"] == json!("notes") {
            assert_eq!(event.data["origin"], json!("remote"));
            return event.data;
        }
    };
    let event = next_change();
    assert_eq!(
        event["change"],
        json!({"edits": [{"path": ["n1", "body"], "index": 5, "delete": 1, "text": ";"}]})
    );
    assert_eq!(event["value"]["n1"]["body"], json!("Hello; world!"));
    // A field deleted on one node is named on the other's feed.
    a.op(
        "notes",
        json!({"type":"doc","op":"delete","path":["n1","title"]}),
    );
    let event = next_change();
    assert_eq!(
        event["change"],
        json!({"edits": [{"path": ["n1", "title"], "removed": true}]})
    );
    assert_eq!(event["value"]["n1"].get("title"), None);
}
