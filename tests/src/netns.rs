//! Network namespaces on a bridge, for the tests that run mDNS (its multicast must stay on
//! interfaces a test creates and removes). Needs root and iproute2.

use crate::{NodeProc, TempDir};
use std::process::Command;

/// Whether the namespace tests are to be skipped (`DELTANODE_SKIP_NETNS` set), said on stderr.
pub fn skipped() -> bool {
    let skip = std::env::var_os("DELTANODE_SKIP_NETNS").is_some();
    if skip {
        eprintln!("skipped: DELTANODE_SKIP_NETNS is set");
    }
    skip
}

/// Runs `ip ARGS…`, asserting it succeeds.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (install iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespaces and the bridge, removed on drop, even when the test panics.
pub struct Lan {
    /// Names its interfaces and namespaces (short: interface names have 15 bytes).
    pub tag: String,
    /// The third byte of its addresses, 10.213.SUBNET.0/24.
    pub subnet: u32,
    nodes: usize,
    /// The neighbour-table limits found, to put back (when they were raised).
    neigh_limits: Option<Vec<(String, String)>>,
}

impl Lan {
    /// Namespace `i`'s name.
    pub fn ns(&self, i: usize) -> String {
        format!("dn{}n{i}", self.tag)
    }
    /// The bridge's name.
    pub fn bridge(&self) -> String {
        format!("dn{}br", self.tag)
    }
    /// Namespace `i`'s address.
    pub fn addr(&self, i: usize) -> String {
        format!("10.213.{}.{}", self.subnet, 10 + i)
    }

    /// Namespace `i`'s interface (inside the namespace).
    pub fn interface(&self, i: usize) -> String {
        format!("dn{}c{i}", self.tag)
    }

    /// `nodes` namespaces on a new bridge; `name` (a letter or two) tells tests of one process
    /// apart.
    pub fn create(name: &str, nodes: usize) -> Lan {
        let pid = std::process::id();
        let lan = Lan {
            tag: format!("{name}{}", pid % 10_000),
            subnet: (pid + name.bytes().map(u32::from).sum::<u32>()) % 250 + 1,
            nodes,
            neigh_limits: raise_neighbour_limits(nodes),
        };
        let br = lan.bridge();
        ip(&["link", "add", &br, "type", "bridge"]);
        // Flood multicast to every port: no IGMP querier runs on this private bridge.
        ip(&["link", "set", &br, "type", "bridge", "mcast_snooping", "0"]);
        ip(&[
            "addr",
            "add",
            &format!("10.213.{}.1/24", lan.subnet),
            "dev",
            &br,
        ]);
        ip(&["link", "set", &br, "up"]);
        for i in 0..lan.nodes {
            let (ns, host, inner) = (lan.ns(i), format!("dn{}h{i}", lan.tag), lan.interface(i));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner]);
            ip(&["link", "set", &inner, "netns", &ns]);
            ip(&["link", "set", &host, "master", &br]);
            ip(&["link", "set", &host, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lan.addr(i)),
                "dev",
                &inner,
            ]);
            ip(&["-n", &ns, "link", "set", &inner, "up"]);
        }
        lan
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 0..self.nodes {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(i)])
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge()])
            .output();
        for (key, value) in self.neigh_limits.take().unwrap_or_default() {
            let _ = std::fs::write(key, value);
        }
    }
}

/// The kernel's ARP table is one for every namespace, bounded by `gc_thresh3` (1,024 by
/// default): n nodes that each resolve the n − 1 others need n² entries, and past the bound new
/// ones are refused ("neighbor table overflow") and TCP into the namespaces stalls. Raises the
/// bounds for n nodes; returns the old values.
fn raise_neighbour_limits(nodes: usize) -> Option<Vec<(String, String)>> {
    let need = 2 * nodes * nodes + 256;
    let keys = ["gc_thresh1", "gc_thresh2", "gc_thresh3"]
        .map(|k| format!("/proc/sys/net/ipv4/neigh/default/{k}"));
    let old: Vec<(String, String)> = keys
        .iter()
        .filter_map(|k| {
            Some((
                k.clone(),
                std::fs::read_to_string(k).ok()?.trim().to_string(),
            ))
        })
        .collect();
    let current: usize = old.last()?.1.parse().ok()?;
    if current >= need {
        return None;
    }
    for (k, factor) in keys.iter().zip([4, 2, 1]) {
        let _ = std::fs::write(k, (need / factor).to_string());
    }
    Some(old)
}

impl Lan {
    /// Starts a node in namespace `i`: data in `dir`/n`i`, listening on every interface, its API
    /// on the namespace's address (so it wants `token`, and `--insecure-http`), with `extra`
    /// arguments.
    pub fn start_node(&self, i: usize, dir: &TempDir, extra: &[String], token: &str) -> NodeProc {
        let mut args: Vec<String> = [
            "--data-dir",
            &dir.join(&format!("n{i}")).display().to_string(),
            "--listen",
            "/ip4/0.0.0.0/tcp/0",
            "--api",
            &format!("{}:7700", self.addr(i)),
            // Plain HTTP inside the test's own namespaces (a non-loopback API wants TLS else).
            "--insecure-http",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend_from_slice(extra);
        NodeProc::start_with(&["ip", "netns", "exec", &self.ns(i)], &args, Some(token))
    }
}
