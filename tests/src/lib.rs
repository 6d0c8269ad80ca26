//! Helpers for the end-to-end tests in `tests/tests/`: build the `deltanode` binary once, start real
//! `deltanode run` processes, talk to their HTTP API, and stop them when a test ends (even on panic).

#![deny(missing_docs)]

pub mod netns;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The built binary (`cargo build -p deltanode` runs once per test process; cheap when fresh), or
/// the one `DELTANODE_E2E_BIN` names (a release build, for the large runs BENCHMARKS.md shows).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("DELTANODE_E2E_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "deltanode", "--bin", "deltanode"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building deltanode failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        target.join("debug/deltanode")
    })
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new one named after `tag`.
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("deltanode-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside it.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `deltanode run` process.
pub struct NodeProc {
    child: Child,
    /// Its PeerId.
    pub peer_id: String,
    /// `http://HOST:PORT` of its API.
    pub api: String,
    /// Its listen addresses, each ending in `/p2p/ID`.
    pub listen: Vec<String>,
    token: Option<String>,
}

impl NodeProc {
    /// Starts `deltanode run ARGS…` through `prefix` (e.g. `ip netns exec ns`), waits for its ready line.
    pub fn start_with(prefix: &[&str], args: &[String], token: Option<&str>) -> NodeProc {
        NodeProc::spawn(prefix, args, token, &[])
    }

    fn spawn(
        prefix: &[&str],
        args: &[String],
        token: Option<&str>,
        env: &[(&str, &str)],
    ) -> NodeProc {
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .envs(env.iter().copied());
        if let Some(t) = token {
            cmd.env("DELTANODE_API_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("spawning deltanode");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        // Drain stderr in the background so the node never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("E2E_LOGS").is_some() {
                    eprintln!("[node] {line}");
                }
            }
        });
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the ready line");
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
        assert_eq!(ready["event"], "ready");
        NodeProc {
            child,
            peer_id: ready["peer_id"].as_str().unwrap().to_string(),
            api: format!("http://{}", ready["api"].as_str().unwrap()),
            listen: ready["listen"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
            token: token.map(String::from),
        }
    }

    /// Starts a loopback node (mDNS off, fast sync) in `data_dir` with `extra` arguments.
    pub fn start(data_dir: &Path, extra: &[String]) -> NodeProc {
        NodeProc::start_local(data_dir, extra, None)
    }

    /// [`NodeProc::start`] with environment variables `env` set for the process.
    pub fn start_env(data_dir: &Path, extra: &[String], env: &[(&str, &str)]) -> NodeProc {
        NodeProc::spawn(&[], &local_args(data_dir, extra), None, env)
    }

    /// [`NodeProc::start`], with an API token when `token` is given.
    pub fn start_local(data_dir: &Path, extra: &[String], token: Option<&str>) -> NodeProc {
        NodeProc::start_with(&[], &local_args(data_dir, extra), token)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its loopback listen address (to give others as `--peer`).
    pub fn addr(&self) -> String {
        self.listen
            .iter()
            .find(|a| a.contains("127.0.0.1"))
            .unwrap_or(&self.listen[0])
            .clone()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    /// `GET path`: (status, JSON body).
    pub fn get(&self, path: &str) -> (u16, Value) {
        let mut req = Self::agent().get(format!("{}{path}", self.api));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call().expect("GET");
        (
            resp.status().as_u16(),
            resp.body_mut().read_json().unwrap_or(Value::Null),
        )
    }

    /// `POST path` with a raw body: (status, JSON body). A server may answer a body over its limit
    /// (413) and close before reading it all, which can reset the connection while the client is
    /// still writing; such a send is retried a few times.
    pub fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        for _ in 0..4 {
            if let Some(answer) = self.try_post_raw(path, body) {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.try_post_raw(path, body).expect("POST")
    }

    fn try_post_raw(&self, path: &str, body: &str) -> Option<(u16, Value)> {
        let mut req = Self::agent()
            .post(format!("{}{path}", self.api))
            .header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.send(body).ok()?;
        Some((
            resp.status().as_u16(),
            resp.body_mut().read_json().unwrap_or(Value::Null),
        ))
    }

    /// Applies one JSON operation to `key`, asserting success.
    pub fn op(&self, key: &str, op: Value) -> Value {
        let (status, body) = self.post_raw(&format!("/v1/objects/{key}"), &op.to_string());
        assert_eq!(status, 200, "op {op} on {key}: {body}");
        body
    }

    /// The state digest (`GET /v1/state?digest=only`: no body of the whole state).
    pub fn digest(&self) -> String {
        self.get("/v1/state?digest=only").1["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Stops it with SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM and returns whether it exited cleanly.
    pub fn terminate(mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until every node reports the same digest, or panics after `timeout` showing them all.
pub fn await_convergence(nodes: &[&NodeProc], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let digests: Vec<String> = nodes.iter().map(|n| n.digest()).collect();
        if digests.windows(2).all(|w| w[0] == w[1]) {
            return digests[0].clone();
        }
        if Instant::now() >= deadline {
            // Which objects differ, and how, on each node.
            let states: Vec<Value> = nodes.iter().map(|n| n.get("/v1/state").1).collect();
            let mut differ = Vec::new();
            if let Some(keys) = states[0]["objects"].as_object() {
                for key in keys.keys() {
                    let values: Vec<&Value> = states.iter().map(|s| &s["objects"][key]).collect();
                    if values.windows(2).any(|w| w[0] != w[1]) {
                        differ.push(format!("{key}: {values:?}"));
                    }
                }
            }
            panic!(
                "no convergence within {timeout:?}: {digests:?}\n{}",
                differ.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One write of every type and operation, tagged with `who`, applied to `node`.
pub fn write_every_type(node: &NodeProc, who: usize) {
    let v = json!(format!("from-{who}"));
    node.op("gc", json!({"type":"gcounter","op":"inc","by": who + 1}));
    node.op("pn", json!({"type":"counter","op":"inc","by": 10}));
    node.op("pn", json!({"type":"counter","op":"dec","by": 3}));
    node.op("gs", json!({"type":"gset","op":"add","value": v}));
    node.op("tp", json!({"type":"twopset","op":"add","value": v}));
    node.op(
        "tp",
        json!({"type":"twopset","op":"remove","value":"never"}),
    );
    node.op("aw", json!({"type":"set","op":"add","value": v}));
    node.op("aw", json!({"type":"set","op":"add","value": "tmp"}));
    node.op("aw", json!({"type":"set","op":"remove","value": "tmp"}));
    node.op("lw", json!({"type":"lww","op":"set","value": v}));
    node.op("mv", json!({"type":"register","op":"set","value": v}));
    node.op(
        "mp",
        json!({"type":"map","op":"put","field": format!("f{who}"),"value": v}),
    );
    let note = json!([format!("n{who}")]);
    node.op(
        "doc",
        json!({"type":"doc","op":"put","path": note,"value": {"body": "hello", "tags": ["a"]}}),
    );
    node.op(
        "doc",
        json!({"type":"doc","op":"splice","path": [format!("n{who}"), "body"],"index": 5,"text": format!(" {who}")}),
    );
    node.op(
        "doc",
        json!({"type":"doc","op":"insert","path": [format!("n{who}"), "tags"],"index": 1,"values": ["b"]}),
    );
    let (status, body) = node.post_raw(
        "/v1/batch",
        &json!({"ops":[{"key":"batch","type":"gset","op":"add","value": who}]}).to_string(),
    );
    assert_eq!((status, body["applied"].clone()), (200, json!(1)));
}

/// One Server-Sent Event.
#[derive(Clone, Debug, Default)]
pub struct Sse {
    /// `event:` (empty for the default `message`).
    pub event: String,
    /// `id:`.
    pub id: String,
    /// `data:`, parsed.
    pub data: Value,
}

/// Reads a node's change feed on a background thread.
pub struct SseReader {
    rx: std::sync::mpsc::Receiver<Sse>,
}

impl SseReader {
    /// Opens `GET /v1/events` on `node`, with `Last-Event-ID` when given.
    pub fn open(node: &NodeProc, last_event_id: Option<&str>) -> SseReader {
        SseReader::open_at(node, "/v1/events", last_event_id)
    }

    /// Opens `path` (the feed, with a query) on `node`, with `Last-Event-ID` when given.
    pub fn open_at(node: &NodeProc, path: &str, last_event_id: Option<&str>) -> SseReader {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(format!("{}{path}", node.api));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        if let Some(t) = &node.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().expect("GET /v1/events");
        assert_eq!(resp.status().as_u16(), 200);
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(resp.into_body().into_reader());
        std::thread::spawn(move || {
            let mut cur = Sse::default();
            for line in reader.lines().map_while(Result::ok) {
                if line.is_empty() {
                    if cur.data != Value::Null && tx.send(std::mem::take(&mut cur)).is_err() {
                        return;
                    }
                    cur = Sse::default();
                } else if let Some(v) = line.strip_prefix("event:") {
                    cur.event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("id:") {
                    cur.id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    cur.data = serde_json::from_str(v.trim())
                        .unwrap_or(Value::String(v.trim().to_string()));
                }
            }
        });
        SseReader { rx }
    }

    /// The next event, or panics after `timeout`.
    pub fn next(&self, timeout: Duration) -> Sse {
        self.rx.recv_timeout(timeout).expect("no event in time")
    }
}

/// The value of the sample `name` (with its labels, exactly as printed) in Prometheus text.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

/// `GET /metrics`, checked to be Prometheus text.
pub fn metrics(node: &NodeProc) -> String {
    let resp = ureq::get(format!("{}/metrics", node.api)).call().unwrap();
    assert!(resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    resp.into_body().read_to_string().unwrap()
}

/// The arguments of a loopback node (mDNS off, fast sync) in `data_dir`, then `extra`.
pub fn local_args(data_dir: &Path, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
        "--no-mdns",
        "--sync-interval",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(["--data-dir".to_string(), data_dir.display().to_string()]);
    args.extend(extra.iter().cloned());
    args
}

/// Runs `program args` with `input` on stdin and panics, with its output, unless it succeeds
/// (`what` says what was refused). For the tools the tests hand a node's output to: promtool,
/// the Python parsers and validators.
pub fn accepted_by(program: &str, args: &[&str], input: &str, what: &str) {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (scripts/setup.sh --tests installs it)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} refused {what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
