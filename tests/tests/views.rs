//! Bounded partial views on real processes (`--max-neighbours`): seven nodes that all know one hub
//! through `--peer` — a star, where every node would otherwise take every peer it meets — hold at
//! most two neighbours each, stay connected through the membership protocol and converge, their
//! data over a spanning tree of the views (`bp-rr-tree`); with the hub killed, the others still
//! sync.

use deltanode_e2e::{await_convergence, metrics, sample, NodeProc, TempDir};
use serde_json::json;
use std::time::{Duration, Instant};

const K: u64 = 2;

fn neighbours(n: &NodeProc) -> u64 {
    n.get("/health").1["neighbours"].as_u64().unwrap()
}

#[test]
fn max_neighbours_bounds_every_view_and_the_cluster_still_converges() {
    let dir = TempDir::new("views");
    let args = |extra: &[String]| -> Vec<String> {
        // Data over a spanning tree of the active views; the hub's death takes a link of it.
        let mut a: Vec<String> = [
            "--max-neighbours",
            &K.to_string(),
            "--algorithm",
            "bp-rr-tree",
        ]
        .map(String::from)
        .to_vec();
        a.extend_from_slice(extra);
        a
    };
    let hub = NodeProc::start(&dir.join("hub"), &args(&[]));
    let mut nodes: Vec<NodeProc> = (1..7)
        .map(|i| {
            let peer = ["--peer".to_string(), hub.addr()];
            NodeProc::start(&dir.join(&format!("n{i}")), &args(&peer))
        })
        .collect();
    // Views fill and settle: everyone linked, nobody over the bound, watched for a while.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counts: Vec<u64> = std::iter::once(&hub)
            .chain(&nodes)
            .map(neighbours)
            .collect();
        assert!(
            counts.iter().all(|c| *c <= K),
            "a view over {K}: {counts:?}"
        );
        if counts.iter().all(|c| *c >= 1) && Instant::now() + Duration::from_secs(25) > deadline {
            break;
        }
        assert!(Instant::now() < deadline, "views never filled: {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    nodes[0].op("k", json!({"type": "set", "op": "add", "value": "first"}));
    nodes[5].op("k", json!({"type": "set", "op": "add", "value": "last"}));
    let all: Vec<&NodeProc> = std::iter::once(&hub).chain(&nodes).collect();
    await_convergence(&all, Duration::from_secs(60));
    for n in &all {
        assert!(neighbours(n) <= K);
    }
    // The hub goes: the others repair their views from their candidates and still sync.
    hub.kill();
    nodes[2].op(
        "k",
        json!({"type": "set", "op": "add", "value": "after the hub"}),
    );
    let rest: Vec<&NodeProc> = nodes.iter().collect();
    await_convergence(&rest, Duration::from_secs(60));
    assert_eq!(
        nodes[4].get("/v1/objects/k").1["value"],
        json!(["after the hub", "first", "last"])
    );
    for n in nodes.drain(..) {
        assert!(neighbours(&n) <= K);
    }
}

/// Without `--max-neighbours`, a node holds at most 8 neighbours: ten nodes that all know one hub
/// through `--peer` still converge with no view above 8; a cluster of four, where fewer are known,
/// links every pair; and `--max-neighbours 0` lifts the bound (the hub of nine holds nine).
#[test]
fn by_default_views_hold_eight_and_small_clusters_link_every_pair() {
    let dir = TempDir::new("views-default");
    let star = |name: &str, spokes: usize, extra: &[&str]| -> Vec<NodeProc> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let hub = NodeProc::start(&dir.join(&format!("{name}-hub")), &extra);
        let mut all = vec![];
        for i in 0..spokes {
            let mut a = extra.clone();
            a.extend(["--peer".to_string(), hub.addr()]);
            all.push(NodeProc::start(&dir.join(&format!("{name}-{i}")), &a));
        }
        all.insert(0, hub);
        all
    };
    let until = |nodes: &[NodeProc], what: &str, ok: &dyn Fn(&[u64]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let counts: Vec<u64> = nodes.iter().map(neighbours).collect();
            assert!(counts.iter().all(|c| *c <= 9), "{what}: {counts:?}");
            if ok(&counts) {
                return counts;
            }
            assert!(Instant::now() < deadline, "{what}: {counts:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let big = star("big", 9, &[]);
    big[3].op("k", json!({"type": "gset", "op": "add", "value": "x"}));
    await_convergence(&big.iter().collect::<Vec<_>>(), Duration::from_secs(60));
    let counts = until(&big, "views of ten", &|c| c.iter().all(|n| *n >= 1));
    assert!(counts.iter().all(|c| *c <= 8), "a view over 8: {counts:?}");
    // Well-behaved peers break no bound of the protocol.
    let text = metrics(&big[0]);
    for kind in ["repeated_join", "overlong_walk", "oversized_sample"] {
        let name = format!("deltanode_membership_bad_input_total{{kind=\"{kind}\"}}");
        assert_eq!(sample(&text, &name), 0.0, "{name}");
    }
    drop(big);
    let small = star("small", 3, &[]);
    until(&small, "four nodes link every pair", &|c| {
        c.iter().all(|n| *n == 3)
    });
    drop(small);
    let unbounded = star("unbounded", 9, &["--max-neighbours", "0"]);
    until(&unbounded, "the unbounded hub takes all nine", &|c| {
        c[0] == 9
    });
}

/// With `DELTANODE_VIEWS_TRACE=FILE`, a run's neighbour counts over time: a thread asks every
/// node's `/health` four times a second and writes `t_s,what,min,mean,max,nodes` rows (`what` is
/// `sample`, or an event: `write`, `converged`, `kill`), which `scripts/views_chart.py` draws.
struct Trace {
    rows: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Trace {
    fn start(apis: Vec<String>, token: &str, started: Instant) -> Trace {
        use std::sync::atomic::Ordering;
        let rows = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, s, auth) = (rows.clone(), stop.clone(), format!("Bearer {token}"));
        let thread = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_millis(500)))
                .build()
                .into();
            while !s.load(Ordering::Relaxed) {
                let counts: Vec<u64> = apis
                    .iter()
                    .filter_map(|a| {
                        let mut resp = agent
                            .get(format!("{a}/health"))
                            .header("authorization", &auth)
                            .call()
                            .ok()?;
                        let v: serde_json::Value = resp.body_mut().read_json().ok()?;
                        v["neighbours"].as_u64()
                    })
                    .collect();
                if let (Some(min), Some(max)) = (counts.iter().min(), counts.iter().max()) {
                    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
                    let t = started.elapsed().as_secs_f64();
                    let row = format!("{t:.2},sample,{min},{mean:.2},{max},{}", counts.len());
                    r.lock().unwrap().push(row);
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        Trace {
            rows,
            stop,
            started,
            thread: Some(thread),
        }
    }

    fn event(&self, what: &str) {
        let t = self.started.elapsed().as_secs_f64();
        self.rows.lock().unwrap().push(format!("{t:.2},{what},,,,"));
    }

    fn write(mut self, path: &str) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let mut rows = self.rows.lock().unwrap().clone();
        rows.sort_by(|a, b| {
            let t = |r: &String| r.split(',').next().unwrap().parse::<f64>().unwrap();
            t(a).total_cmp(&t(b))
        });
        let text = format!("t_s,what,min,mean,max,nodes\n{}\n", rows.join("\n"));
        std::fs::write(path, text).unwrap();
    }
}

/// Twelve nodes in network namespaces on one bridge, finding each other by mDNS alone — where
/// each would take the eleven others as neighbours — hold at most three neighbours, converge
/// with `bp-rr-tree` (`DELTANODE_VIEWS_ALGORITHM` for another algorithm), and converge again
/// after a sixth of them are killed. `DELTANODE_VIEWS_NODES` and
/// `DELTANODE_VIEWS_K` change the size (BENCHMARKS.md runs 60 nodes with K = 8), and
/// `DELTANODE_VIEWS_TRACE` records the neighbour counts over time ([`Trace`]). Needs root
/// (`DELTANODE_SKIP_NETNS=1` skips).
#[test]
fn on_a_lan_with_mdns_views_stay_bounded_and_survive_kills() {
    use deltanode_e2e::netns::{self, Lan};
    if netns::skipped() {
        return;
    }
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let n = env("DELTANODE_VIEWS_NODES", 12);
    let k = env("DELTANODE_VIEWS_K", 3) as u64;
    let started = Instant::now();
    deltanode_e2e::binary();
    let lan = Lan::create("vw", n);
    let dir = TempDir::new("views-lan");
    // Data over a spanning tree of the active views (`DELTANODE_VIEWS_ALGORITHM` for another).
    let algorithm =
        std::env::var("DELTANODE_VIEWS_ALGORITHM").unwrap_or_else(|_| "bp-rr-tree".to_string());
    let bound = [
        "--max-neighbours".to_string(),
        k.to_string(),
        "--algorithm".to_string(),
        algorithm.clone(),
    ];
    let mut nodes: Vec<Option<NodeProc>> = (0..n)
        .map(|i| Some(lan.start_node(i, &dir, &bound, "views-token")))
        .collect();
    let trace = std::env::var("DELTANODE_VIEWS_TRACE").ok().map(|path| {
        let apis = nodes.iter().flatten().map(|n| n.api.clone()).collect();
        (Trace::start(apis, "views-token", started), path)
    });
    let event = |what: &str| {
        if let Some((t, _)) = &trace {
            t.event(what);
        }
    };
    let live = |nodes: &[Option<NodeProc>]| -> Vec<u64> {
        nodes.iter().flatten().map(neighbours).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(40 + n as u64);
    loop {
        let counts = live(&nodes);
        assert!(
            counts.iter().all(|c| *c <= k),
            "a view over {k}: {counts:?}"
        );
        if counts.iter().all(|c| *c >= 2) {
            break;
        }
        assert!(Instant::now() < deadline, "views never filled: {counts:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
    nodes[0]
        .as_ref()
        .unwrap()
        .op("k", json!({"type": "gset", "op": "add", "value": 0}));
    nodes[n - 1]
        .as_ref()
        .unwrap()
        .op("k", json!({"type": "gset", "op": "add", "value": 1}));
    event("write");
    let all: Vec<&NodeProc> = nodes.iter().flatten().collect();
    let t = Instant::now();
    await_convergence(&all, Duration::from_secs(60));
    let first = t.elapsed();
    event("converged");
    // A sixth killed, spread over the ids (never node 2, which writes next).
    let kills: Vec<usize> = (0..n / 6)
        .map(|j| 1 + 3 * j)
        .filter(|i| *i != 2 && *i < n)
        .collect();
    for &i in &kills {
        nodes[i].take().unwrap().kill();
    }
    event("kill");
    nodes[2]
        .as_ref()
        .unwrap()
        .op("k", json!({"type": "gset", "op": "add", "value": 2}));
    let rest: Vec<&NodeProc> = nodes.iter().flatten().collect();
    let t = Instant::now();
    await_convergence(&rest, Duration::from_secs(60));
    let second = t.elapsed();
    event("converged");
    if let Some((t, path)) = trace {
        // A few more seconds of the views settling after the kills.
        std::thread::sleep(Duration::from_secs(5));
        t.write(&path);
    }
    assert_eq!(rest[0].get("/v1/objects/k").1["value"], json!([0, 1, 2]));
    let counts = live(&nodes);
    assert!(
        counts.iter().all(|c| *c <= k),
        "a view over {k}: {counts:?}"
    );
    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    eprintln!(
        "views: {n} nodes, K = {k}, {algorithm}: converged in {first:.1?}; {} killed, converged \
         again in {second:.1?}; neighbours now max {} mean {mean:.1}; {:.0?} in all",
        kills.len(),
        counts.iter().max().unwrap(),
        started.elapsed()
    );
}
