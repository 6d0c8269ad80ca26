//! What a browser app on another origin needs, on real processes: CORS preflights answered for
//! the origins `--cors-origin` names (and only those), `OPTIONS` answered on every route, access
//! tokens for `EventSource` and `WebSocket`, the SSE stream's `retry:`, and `/v1/ws` carrying
//! the feed and taking writes.

use deltanode_e2e::{NodeProc, TempDir};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

const TOKEN: &str = "s3cret";
const APP: &str = "https://app.example";

fn node(dir: &TempDir, name: &str, extra: &[&str]) -> NodeProc {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    NodeProc::start_local(&dir.join(name), &extra, Some(TOKEN))
}

/// One raw request; the answer's head (status line and headers, lower-cased names) and body.
fn raw(node: &NodeProc, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(node.api.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_lowercase(), body.to_string())
}

fn request(method: &str, path: &str, headers: &[&str]) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn cors_answers_the_named_origins_and_options_answers_every_route() {
    let dir = TempDir::new("cors");
    let n = node(&dir, "n", &["--cors-origin", APP]);
    let preflight = |origin: &str| {
        raw(
            &n,
            &request(
                "OPTIONS",
                "/v1/objects/k",
                &[
                    &format!("Origin: {origin}"),
                    "Access-Control-Request-Method: POST",
                    "Access-Control-Request-Headers: authorization, content-type",
                ],
            ),
        )
        .0
    };
    // The preflight needs no token, and the allowed origin is echoed with what it may send.
    let ok = preflight(APP);
    assert!(ok.starts_with("http/1.1 200"), "{ok}");
    assert_eq!(header(&ok, "access-control-allow-origin"), Some(APP));
    let headers = header(&ok, "access-control-allow-headers").unwrap();
    assert!(headers.contains("authorization") && headers.contains("content-type"));
    assert!(header(&ok, "access-control-allow-methods")
        .unwrap()
        .contains("post"));
    // Another origin is not allowed.
    let other = preflight("https://evil.example");
    assert_eq!(
        header(&other, "access-control-allow-origin"),
        None,
        "{other}"
    );
    // A real request from the app gets the header; its token is still required.
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (head, _) = raw(
        &n,
        &request("GET", "/health", &[&format!("Origin: {APP}"), &auth]),
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(header(&head, "access-control-allow-origin"), Some(APP));
    let (head, _) = raw(
        &n,
        &request("GET", "/v1/state", &[&format!("Origin: {APP}")]),
    );
    assert!(head.starts_with("http/1.1 401"), "{head}");

    // OPTIONS, not a preflight: 204 and the route's methods, on every route, without the token.
    for (path, methods) in [
        ("/v1/objects/k", &["GET", "POST", "OPTIONS"][..]),
        ("/v1/batch", &["POST", "OPTIONS"]),
        ("/v1/events", &["GET", "OPTIONS"]),
        ("/v1/checkpoints", &["GET", "POST", "OPTIONS"]),
        ("/health", &["GET", "OPTIONS"]),
    ] {
        let (head, body) = raw(&n, &request("OPTIONS", path, &[]));
        assert!(head.starts_with("http/1.1 204"), "{path}: {head}");
        let allow = header(&head, "allow").unwrap_or("").to_uppercase();
        for m in methods {
            assert!(allow.split(',').any(|a| a.trim() == *m), "{path}: {allow}");
        }
        assert!(body.is_empty());
    }
    let (head, _) = raw(&n, &request("OPTIONS", "/no/such/route", &[]));
    assert!(head.starts_with("http/1.1 404"), "{head}");
    // A method a route does not take: 405, its methods, and a JSON error.
    let (head, body) = raw(&n, &request("DELETE", "/v1/objects/k", &[&auth]));
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(header(&head, "allow").unwrap().contains("post"), "{head}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(error["error"].as_str().unwrap().contains("not allowed"));

    // Without --cors-origin, no origin is allowed.
    let plain = node(&dir, "plain", &[]);
    let (head, _) = raw(
        &plain,
        &request(
            "OPTIONS",
            "/v1/objects/k",
            &[
                &format!("Origin: {APP}"),
                "Access-Control-Request-Method: POST",
            ],
        ),
    );
    assert_eq!(header(&head, "access-control-allow-origin"), None, "{head}");
}

fn access_token(n: &NodeProc) -> String {
    let (head, body) = raw(
        n,
        &request(
            "POST",
            "/v1/tokens",
            &[&format!("Authorization: Bearer {TOKEN}")],
        ),
    );
    assert!(head.starts_with("http/1.1 201"), "{head}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["expires_in_s"], json!(60));
    answer["access_token"].as_str().unwrap().to_string()
}

#[test]
fn access_tokens_open_the_streams_and_nothing_else() {
    let dir = TempDir::new("access-tokens");
    let n = node(&dir, "n", &[]);
    let (head, _) = raw(&n, &request("POST", "/v1/tokens", &[]));
    assert!(
        head.starts_with("http/1.1 401"),
        "a token needs the bearer token: {head}"
    );
    let t = access_token(&n);
    // The SSE stream opens with it, and starts with the reconnection delay.
    let mut s = TcpStream::connect(n.api.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /v1/events?access_token={t} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("retry:") {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.contains("text/event-stream"), "{got}");
    assert!(got.contains("retry: 1000"), "{got}");
    // It opens nothing else, and a made-up one opens nothing.
    for path in [
        format!("/v1/state?access_token={t}"),
        "/v1/events?access_token=00000000000000000000000000000000".to_string(),
    ] {
        let (head, _) = raw(&n, &request("GET", &path, &[]));
        assert!(head.starts_with("http/1.1 401"), "{path}: {head}");
    }
}

type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn open_ws(n: &NodeProc, query: &str) -> Socket {
    let url = format!("{}/v1/ws?{query}", n.api.replace("http://", "ws://"));
    let (socket, response) = tungstenite::connect(url).expect("the WebSocket opens");
    assert_eq!(response.status().as_u16(), 101);
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = socket.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    }
    socket
}

/// The next JSON message on `ws`.
fn next(ws: &mut Socket) -> Value {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(_) => panic!("closed"),
            _ => continue,
        }
    }
}

/// Messages on `ws` until one with `event` = `kind` (and `key`, if given).
fn until(ws: &mut Socket, kind: &str, key: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "no {kind} event");
        let m = next(ws);
        if m["event"] == kind && key.is_none_or(|k| m["key"] == k) {
            return m;
        }
    }
}

fn send(ws: &mut Socket, msg: Value) {
    ws.send(Message::Text(msg.to_string().into())).unwrap();
}

#[test]
fn the_websocket_carries_the_feed_and_takes_writes() {
    let dir = TempDir::new("ws");
    let a = node(&dir, "a", &[]);
    let b = NodeProc::start_local(
        &dir.join("b"),
        &["--peer".to_string(), a.addr()],
        Some(TOKEN),
    );
    let (head, _) = raw(
        &a,
        &request(
            "GET",
            "/v1/ws",
            &[
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            ],
        ),
    );
    assert!(
        head.starts_with("http/1.1 401"),
        "no token, no socket: {head}"
    );
    let mut ws = open_ws(&a, &format!("access_token={}", access_token(&a)));

    // A write, answered in order with the status and body POST /v1/objects would give.
    send(
        &mut ws,
        json!({"id": 7, "key": "visits", "type": "counter", "op": "inc", "by": 5}),
    );
    let reply = until(&mut ws, "reply", None);
    assert_eq!(
        (reply["id"].clone(), reply["status"].clone()),
        (json!(7), json!(200))
    );
    assert_eq!(reply["body"]["value"], json!(5));
    // Its change comes over the feed, local.
    let change = until(&mut ws, "change", Some("visits"));
    assert_eq!(
        (change["origin"].clone(), change["value"].clone()),
        (json!("local"), json!(5))
    );
    let first_id = change["id"].as_u64().unwrap();

    // A batch; bad input gets the HTTP statuses, and changes nothing.
    send(
        &mut ws,
        json!({"id": "b", "ops": [{"key": "tags", "type": "set", "op": "add", "value": "x"}]}),
    );
    let reply = until(&mut ws, "reply", None);
    assert_eq!(
        (reply["status"].clone(), reply["body"]["applied"].clone()),
        (json!(200), json!(1))
    );
    ws.send(Message::Text("{not json".into())).unwrap();
    assert_eq!(until(&mut ws, "reply", None)["status"], json!(400));
    send(
        &mut ws,
        json!({"id": 9, "key": "visits", "type": "set", "op": "add", "value": 1}),
    );
    let reply = until(&mut ws, "reply", None);
    assert_eq!(
        (reply["id"].clone(), reply["status"].clone()),
        (json!(9), json!(409))
    );
    assert!(reply["body"]["error"].is_string());

    // A write on the other node arrives as a remote change.
    b.op(
        "from-b",
        json!({"type": "gset", "op": "add", "value": "hello"}),
    );
    let remote = until(&mut ws, "change", Some("from-b"));
    assert_eq!(remote["origin"], json!("remote"));

    // A second socket resuming after the first change gets what followed, in order.
    let mut again = open_ws(
        &a,
        &format!("access_token={}&last_event_id={first_id}", access_token(&a)),
    );
    let resumed = until(&mut again, "change", Some("tags"));
    assert!(resumed["id"].as_u64().unwrap() > first_id);
    until(&mut again, "change", Some("from-b"));

    // SIGTERM closes the sockets and stops the node at once.
    let t = Instant::now();
    assert!(a.terminate(), "a clean exit with sockets open");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    let closed = (0..100).any(|_| matches!(ws.read(), Ok(Message::Close(_)) | Err(_)));
    assert!(closed, "the socket was closed");
}
