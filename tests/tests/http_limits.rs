//! The API under abusive clients, on real processes: half-sent requests and idle keep-alive
//! connections are closed after the header timeout; connections and change-feed streams beyond
//! their caps get a 503; a reader that stops reading is cut off once writes stall; an oversized
//! body's 413 reaches the client; and SIGTERM stops the node within two seconds with streams open.

use deltanode_e2e::{NodeProc, TempDir};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn connect(node: &NodeProc) -> TcpStream {
    let addr = node.api.trim_start_matches("http://");
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes the connection; returns what came and how long it took.
fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let t = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "still open after 30 s"
        );
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", t.elapsed()),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// Sends one whole request and reads the head of its answer (the first chunk).
fn request(s: &mut TcpStream, path: &str) -> String {
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn node(dir: &TempDir, name: &str, flags: &[&str]) -> NodeProc {
    let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    NodeProc::start(&dir.join(name), &flags)
}

#[test]
fn half_sent_requests_and_idle_connections_are_closed_after_the_header_timeout() {
    let dir = TempDir::new("header-timeout");
    let n = node(&dir, "n", &["--api-header-timeout", "1"]);
    let mut half = connect(&n);
    half.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, took) = read_to_close(&mut half);
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    let mut idle = connect(&n);
    assert!(request(&mut idle, "/health").starts_with("HTTP/1.1 200"));
    let (_, took) = read_to_close(&mut idle);
    assert!(took < Duration::from_secs(5), "idle closed after {took:?}");
}

#[test]
fn connections_and_streams_beyond_their_caps_get_503() {
    let dir = TempDir::new("caps");
    let n = node(
        &dir,
        "n",
        &["--api-max-connections", "3", "--api-max-streams", "1"],
    );
    let mut stream = connect(&n);
    assert!(request(&mut stream, "/v1/events").starts_with("HTTP/1.1 200"));
    let mut second = connect(&n);
    let refused = request(&mut second, "/v1/events");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("change-feed streams"), "{refused}");
    let mut third = connect(&n);
    assert!(request(&mut third, "/health").starts_with("HTTP/1.1 200"));
    let mut over = connect(&n);
    let refused = request(&mut over, "/health");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too many connections"), "{refused}");
    // A slot given back is taken again.
    drop(stream);
    drop(second);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect(&n);
    assert!(request(&mut again, "/v1/events").starts_with("HTTP/1.1 200"));
}

#[test]
fn a_reader_that_stops_reading_is_cut_off() {
    let dir = TempDir::new("stalled-reader");
    let n = node(&dir, "n", &["--api-write-timeout", "1"]);
    let mut stalled = connect(&n);
    stalled
        .write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // ~12 MB of events, which the stalled reader never reads: the socket buffers fill, the
    // node's writes stall, and after a second it closes the connection.
    let value = "v".repeat(60_000);
    for i in 0..200 {
        n.op(
            &format!("k{i}"),
            json!({"type": "lww", "op": "set", "value": value}),
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let (_, took) = read_to_close(&mut stalled);
    assert!(took < Duration::from_secs(15), "still open after {took:?}");
    assert_eq!(n.get("/health").1["status"], "ok");
}

#[test]
fn an_oversized_body_gets_its_413_not_a_reset() {
    let dir = TempDir::new("oversized");
    let n = node(&dir, "n", &[]);
    let mut s = connect(&n);
    let len = 64 << 20;
    write!(
        s,
        "POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..64 {
        s.write_all(&chunk).unwrap();
    }
    let (answer, _) = read_to_close(&mut s);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
}

#[test]
fn sigterm_stops_within_a_second_with_streams_open() {
    let dir = TempDir::new("sigterm-streams");
    let n = node(&dir, "n", &[]);
    let mut streams: Vec<TcpStream> = (0..3).map(|_| connect(&n)).collect();
    for s in &mut streams {
        assert!(request(s, "/v1/events").starts_with("HTTP/1.1 200"));
    }
    let t = Instant::now();
    assert!(n.terminate(), "a clean exit");
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
}

/// SIGTERM sent the moment the ready line is read stops the node cleanly (the handler is in place
/// before the line is printed), every time.
#[test]
fn sigterm_right_after_the_ready_line_is_a_clean_stop() {
    let dir = TempDir::new("sigterm-ready");
    for i in 0..5 {
        let n = node(&dir, &format!("n{i}"), &[]);
        assert!(n.terminate(), "start {i}: not a clean exit");
    }
}
