//! Objects too large to show whole: a write into one answers with its size and what changed (the
//! value only when `Prefer: return=representation` asks), the change feed does the same, and reads
//! come in pages, membership tests and single map fields — on a real node.

use deltanode_e2e::{NodeProc, SseReader, TempDir};
use serde_json::{json, Value};
use std::time::Duration;

/// The node's "small object" bound: objects up to it carry their value by default.
const SMALL: usize = 1_000;

/// `POST /v1/objects/{key}` with a `Prefer` header: (status, `Preference-Applied`, body).
fn post_preferring(node: &NodeProc, key: &str, op: Value, prefer: &str) -> (u16, String, Value) {
    let mut resp = ureq::post(format!("{}/v1/objects/{key}", node.api))
        .header("Content-Type", "application/json")
        .header("Prefer", prefer)
        .send(op.to_string())
        .expect("POST");
    let applied = resp
        .headers()
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        resp.status().as_u16(),
        applied,
        resp.body_mut().read_json().unwrap(),
    )
}

fn add(x: Value) -> Value {
    json!({"type": "set", "op": "add", "value": x})
}

#[test]
fn large_objects_answer_with_changes_and_read_in_pages() {
    let dir = TempDir::new("objects");
    let node = NodeProc::start(&dir.join("a"), &[]);
    let ops: Vec<Value> = (0..SMALL + 5)
        .map(|i| json!({"key": "big", "type": "set", "op": "add", "value": i}))
        .collect();
    let (status, body) = node.post_raw("/v1/batch", &json!({ "ops": ops }).to_string());
    assert_eq!((status, body), (200, json!({"applied": SMALL + 5})));
    let feed = SseReader::open(&node, None);
    let full_feed = SseReader::open_at(&node, "/v1/events?values=full", None);

    // Past the bound: size and change, no value; the feed event alike.
    let reply = node.op("big", add(json!("new")));
    assert_eq!(
        reply,
        json!({"key": "big", "type": "set", "size": SMALL + 6, "change": {"added": ["new"]}})
    );
    let event = feed.next(Duration::from_secs(10));
    assert_eq!(event.data["size"], json!(SMALL + 6));
    assert_eq!(event.data["change"], json!({"added": ["new"]}));
    assert!(event.data.get("value").is_none(), "{:?}", event.data);
    // A subscriber that asks for values gets the whole set with the same event.
    let event = full_feed.next(Duration::from_secs(10));
    assert_eq!(event.data["change"], json!({"added": ["new"]}));
    assert_eq!(
        event.data["value"].as_array().map(Vec::len),
        Some(SMALL + 6)
    );

    // Asked for, the value comes, and the preference is said to be applied.
    let (status, applied, body) =
        post_preferring(&node, "big", add(json!("more")), "return=representation");
    assert_eq!((status, applied.as_str()), (200, "return=representation"));
    assert_eq!(body["value"].as_array().unwrap().len(), SMALL + 7);
    // Small objects carry their value unless told not to.
    assert_eq!(node.op("small", add(json!(1)))["value"], json!([1]));
    let (_, applied, body) = post_preferring(&node, "small", add(json!(2)), "return=minimal");
    assert_eq!(applied, "return=minimal");
    assert_eq!(
        body,
        json!({"key": "small", "type": "set", "size": 2, "change": {"added": [2]}})
    );

    // Pages of 400 walk every element once, in the order of the whole value.
    let whole = node.get("/v1/objects/big").1["value"].clone();
    let mut walked = Vec::new();
    let mut path = "/v1/objects/big?limit=400".to_string();
    loop {
        let (status, page) = node.get(&path);
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["size"], json!(SMALL + 7));
        walked.extend(page["value"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => {
                path = format!("/v1/objects/big?limit=400&after={}", encode(next));
            }
            None => break,
        }
    }
    assert_eq!(Value::Array(walked), whole);
    assert_eq!(node.get("/v1/objects/big?after=%7Bbroken").0, 400);

    // Membership, and one map field.
    assert_eq!(
        node.get("/v1/objects/big?contains=17").1["contains"],
        json!(true)
    );
    assert_eq!(
        node.get("/v1/objects/big?contains=%22nope%22").1["contains"],
        json!(false)
    );
    node.op("c", json!({"type": "counter", "op": "inc", "by": 1}));
    assert_eq!(node.get("/v1/objects/c?contains=1").0, 400, "not a set");
    node.op(
        "m",
        json!({"type": "map", "op": "put", "field": "title", "value": "hi"}),
    );
    let (status, field) = node.get("/v1/objects/m?field=title");
    assert_eq!((status, field["value"].clone()), (200, json!(["hi"])));
    assert_eq!(node.get("/v1/objects/m?field=none").1["value"], json!([]));
    assert_eq!(node.get("/v1/objects/big?field=x").0, 400, "not a map");
    assert_eq!(node.get("/v1/objects/absent?limit=5").0, 404);
}

/// Percent-encodes a cursor for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
