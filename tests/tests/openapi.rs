//! The OpenAPI document at `GET /v1/openapi.json`: a valid OpenAPI 3.1 document
//! (`openapi-spec-validator`), whose paths and methods are exactly the routes the node answers —
//! each path's `OPTIONS` lists the methods the document gives it — and whose operation schema
//! describes writes the node takes.

use deltanode_e2e::{accepted_by, NodeProc, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const VALIDATE: &str = "import json, sys
from openapi_spec_validator import validate
validate(json.load(sys.stdin))
";

#[test]
fn the_document_is_valid_and_equal_to_the_routes() {
    let dir = TempDir::new("openapi");
    let n = NodeProc::start(&dir.join("n"), &[]);
    let (status, doc) = n.get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], json!("3.1.0"));

    accepted_by(
        "python3",
        &["-c", VALIDATE],
        &doc.to_string(),
        "the document (openapi-spec-validator)",
    );

    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 19, "{:?}", paths.keys());
    for (path, item) in paths {
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
            .map(|m| m.to_uppercase())
            .collect();
        let concrete = path.replace("{key}", "k").replace("{label}", "l");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let resp = agent
            .run(
                ureq::http::Request::builder()
                    .method("OPTIONS")
                    .uri(format!("{}{concrete}", n.api))
                    .body(())
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204, "OPTIONS {path}");
        let allowed: BTreeSet<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_uppercase())
            .filter(|m| m != "HEAD" && m != "OPTIONS")
            .collect();
        assert_eq!(allowed, documented, "{path}: routes and document differ");
    }

    // Every type of the operation schema, with an example op, is a write the node takes.
    let variants = doc["components"]["schemas"]["Operation"]["oneOf"]
        .as_array()
        .unwrap();
    let types: BTreeSet<&str> = variants
        .iter()
        .flat_map(|v| v["properties"]["type"]["enum"].as_array().unwrap())
        .map(|t| t.as_str().unwrap())
        .collect();
    let examples = [
        json!({"type": "gcounter", "op": "inc", "by": 2}),
        json!({"type": "counter", "op": "dec", "by": 1}),
        json!({"type": "gset", "op": "add", "value": 1}),
        json!({"type": "twopset", "op": "add", "value": 1}),
        json!({"type": "set", "op": "add", "value": 1}),
        json!({"type": "lww", "op": "set", "value": 1}),
        json!({"type": "register", "op": "set", "value": 1}),
        json!({"type": "map", "op": "put", "field": "f", "value": 1}),
        json!({"type": "doc", "op": "put", "path": ["note"], "value": {"body": "hi"}}),
    ];
    let written: BTreeSet<&str> = examples
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, written, "the schema's types");
    for (i, op) in examples.iter().enumerate() {
        let (status, body): (u16, Value) =
            n.post_raw(&format!("/v1/objects/k{i}"), &op.to_string());
        assert_eq!(status, 200, "{op}: {body}");
    }
}
