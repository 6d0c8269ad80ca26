//! The deterministic network simulator: N replicas of one algorithm on a topology, driven in
//! rounds (each node makes one event, then one sync interval elapses), under seeded faults. Same
//! seed, same run, message for message.
//!
//! Within a round, [`Timing`] decides when messages arrive. Real nodes tick at their own phase of
//! the sync interval and a message crosses the wire in far less than an interval, so by default
//! (`Staggered`) nodes tick one after another in a fixed, seeded order and each node's messages,
//! with their answers, arrive before the next node ticks. `Lockstep` (every node ticks, then every
//! message arrives) is the idealised model; it flatters classic delta, whose echoes then arrive
//! after the content they repeat and are dropped as redundant.
//!
//! CPU time is the one thing measured from outside: the caller passes a clock reading function
//! (`deltanode sim` passes a monotonic clock; tests pass zero), so this crate reads no clock.

pub mod catch_up;
mod churn;
pub mod node;
mod report;
pub mod topology;
pub mod workload;

pub use report::{RoundSample, SimReport};

use crate::algorithm::Algorithm;
use crate::wire;
use crdt::{Decompose, Measure};
use node::{SimMessage, SimNode};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;
use topology::Topology;
use workload::{
    GCounterWorkload, GMapWorkload, GSetWorkload, RetwisWorkload, Workload, WorkloadSpec,
};

/// Faults injected by the simulator, all drawn from the run's seed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub dup: f64,
    /// Deliver each round's messages in random order.
    pub reorder: bool,
    /// Delay each message by 0..=this many rounds.
    pub max_delay: u64,
    /// Split the nodes in two halves for a while during the events, then heal.
    pub partition: bool,
    /// Crash a random node now and then during the events; it restarts 3 rounds later.
    pub crashes: bool,
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.loss > 0.0
            || self.dup > 0.0
            || self.reorder
            || self.max_delay > 0
            || self.partition
            || self.crashes
    }
}

/// When messages sent in a round arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timing {
    /// Nodes tick one after another in a fixed, seeded order; a node's messages and their answers
    /// arrive before the next node ticks (real nodes, whose sync timers are not aligned).
    #[default]
    Staggered,
    /// Every node ticks, then every message arrives (perfectly aligned sync timers).
    Lockstep,
}

impl std::str::FromStr for Timing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "staggered" => Ok(Timing::Staggered),
            "lockstep" => Ok(Timing::Lockstep),
            other => Err(format!("unknown timing {other:?} (staggered, lockstep)")),
        }
    }
}

/// One simulation's settings.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// The algorithm every node runs.
    pub algorithm: Algorithm,
    /// The overlay.
    pub topology: Topology,
    /// Number of nodes.
    pub nodes: usize,
    /// Events per node (one per round).
    pub events: u64,
    /// The seed of every random choice.
    pub seed: u64,
    /// Faults to inject.
    pub faults: Faults,
    /// When messages arrive within a round.
    pub timing: Timing,
    /// Rounds allowed after the last event before the run counts as not converged.
    pub max_extra_rounds: u64,
    /// Fault-free rounds run after convergence (not counted in the totals), to see buffers drain.
    pub quiesce_rounds: u64,
    /// Payload units of a state every node holds at the start (0: start from ⊥), for measuring
    /// how costs grow with the state. Only for the engine's algorithms and workloads that have one.
    pub preload: u64,
    /// With `overlay:K`: the share of nodes that leave for good halfway through the events, as
    /// many new ones joining through the membership protocol (0: none).
    pub churn: f64,
}

impl SimConfig {
    /// The paper's setup for `algorithm` on `topology`: 15 nodes, 100 events per node, no faults.
    pub fn paper(algorithm: Algorithm, topology: Topology) -> Self {
        SimConfig {
            algorithm,
            topology,
            nodes: 15,
            events: 100,
            seed: 1,
            faults: Faults::default(),
            timing: Timing::Staggered,
            max_extra_rounds: 1000,
            // Longer than `bp-rr-tree`'s grace (two beacon periods) for links that left the tree.
            quiesce_rounds: 25,
            preload: 0,
            churn: 0.0,
        }
    }
}

struct Envelope<L> {
    due: u64,
    from: u32,
    to: u32,
    msg: SimMessage<L>,
}

/// A run in progress.
struct Sim<'a, L> {
    cfg: SimConfig,
    nodes: Vec<SimNode<L>>,
    adj: Vec<Vec<u32>>,
    rng: SmallRng,
    in_flight: Vec<Envelope<L>>,
    down: Vec<bool>,
    /// Nodes on the minority side of an active partition.
    cut: Option<Vec<bool>>,
    sample: RoundSample,
    cpu_total: Duration,
    cpu: &'a dyn Fn() -> Duration,
    counting: bool,
    /// Nodes that left for good (churn): not waited for.
    gone: Vec<bool>,
    /// The most neighbours any node has had.
    max_neighbours: usize,
}

impl<L: Decompose + Measure + Serialize> Sim<'_, L> {
    /// Runs `f` on the nodes; its time counts until convergence, like the units (quiescence is free).
    fn timed<T>(&mut self, f: impl FnOnce(&mut Vec<SimNode<L>>) -> T) -> T {
        let start = (self.cpu)();
        let out = f(&mut self.nodes);
        if self.counting {
            self.cpu_total += (self.cpu)().saturating_sub(start);
        }
        out
    }

    fn severed(&self, a: u32, b: u32) -> bool {
        self.down[a as usize]
            || self.down[b as usize]
            || self
                .cut
                .as_ref()
                .is_some_and(|c| c[a as usize] != c[b as usize])
    }

    fn send(
        &mut self,
        round: u64,
        from: u32,
        sends: Vec<(u32, SimMessage<L>)>,
        queue: &mut VecDeque<Envelope<L>>,
    ) {
        for (to, msg) in sends {
            if self.counting {
                let (p, m) = msg.units();
                self.sample.payload_units += p;
                self.sample.metadata_units += m;
                self.sample.bytes += wire::encode(&msg).map_or(0, |f| f.len() as u64);
            }
            let delay = if self.cfg.faults.max_delay > 0 {
                self.rng.gen_range(0..=self.cfg.faults.max_delay)
            } else {
                0
            };
            let env = Envelope {
                due: round + delay,
                from,
                to,
                msg,
            };
            if delay == 0 {
                queue.push_back(env);
            } else {
                self.in_flight.push(env);
            }
        }
    }

    /// Delivers everything due this round, answers included.
    fn deliver(&mut self, round: u64, mut queue: VecDeque<Envelope<L>>) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|e| e.due <= round);
        self.in_flight = later;
        queue.extend(due);
        let f = self.cfg.faults;
        while !queue.is_empty() {
            let env = if f.reorder {
                let i = self.rng.gen_range(0..queue.len());
                queue.swap_remove_back(i).expect("index in range")
            } else {
                queue.pop_front().expect("not empty")
            };
            if self.severed(env.from, env.to) || self.rng.gen_bool(f.loss) {
                continue;
            }
            let copies = if self.rng.gen_bool(f.dup) { 2 } else { 1 };
            for _ in 0..copies {
                let (to, from, msg) = (env.to as usize, env.from, env.msg.clone());
                let answers = self.timed(|nodes| nodes[to].receive(from, msg));
                self.send(round, env.to, answers, &mut queue);
            }
        }
    }

    /// One sync interval: every live node ticks, and messages arrive as `cfg.timing` says.
    fn sync_round(&mut self, round: u64, phases: &[u32]) {
        let mut queue = VecDeque::new();
        let live = self.down.iter().filter(|d| !**d).count().max(1) as f64;
        for &i in phases {
            if self.down[i as usize] {
                continue;
            }
            let sends = self.timed(|nodes| nodes[i as usize].tick());
            if self.counting {
                self.sample.sync_memory_units +=
                    self.nodes[i as usize].memory_units() as f64 / live;
            }
            self.send(round, i, sends, &mut queue);
            if self.cfg.timing == Timing::Staggered {
                self.deliver(round, std::mem::take(&mut queue));
            }
        }
        self.deliver(round, queue);
    }

    fn set_links(&mut self, node: u32, up: bool) {
        for &j in &self.adj[node as usize].clone() {
            self.nodes[j as usize].neighbour(node, up);
            if up {
                self.nodes[node as usize].neighbour(j, up);
            }
        }
    }

    fn set_partition(&mut self, on: bool) {
        let n = self.cfg.nodes;
        let side: Vec<bool> = (0..n).map(|i| i < n / 2).collect();
        for a in 0..n {
            for &b in &self.adj[a] {
                if side[a] != side[b as usize] {
                    self.nodes[a].neighbour(b, !on);
                }
            }
        }
        self.cut = on.then_some(side);
    }

    fn converged(&self) -> bool {
        let staying: Vec<&SimNode<L>> = (0..self.nodes.len())
            .filter(|i| !self.gone[*i])
            .map(|i| &self.nodes[i])
            .collect();
        self.cut.is_none()
            && !(0..self.down.len()).any(|i| self.down[i] && !self.gone[i])
            && staying.windows(2).all(|w| w[0].state() == w[1].state())
    }
}

/// Runs `workload` under `cfg`. `cpu` reads a monotonic clock (or returns zero to skip timing).
pub fn run<W: Workload>(
    cfg: &SimConfig,
    workload: &mut W,
    name: &str,
    cpu: &dyn Fn() -> Duration,
) -> SimReport
where
    W::L: Serialize,
{
    let n = cfg.nodes;
    let (mut churn, adj) = match cfg.topology {
        Topology::Overlay(k) if cfg.churn > 0.0 => {
            let (c, adj) = churn::Churn::start(cfg, k);
            (Some(c), adj)
        }
        t => (None, t.neighbours(n, cfg.seed)),
    };
    let initial = match cfg.preload {
        0 => <W::L as crdt::Lattice>::bottom(),
        size => workload
            .preload(size)
            .expect("the caller checks that the workload has a preload"),
    };
    let nodes = (0..n)
        .map(|i| SimNode::new(cfg.algorithm, i as u32, n, &adj[i], initial.clone()))
        .collect();
    let mut sim = Sim {
        cfg: *cfg,
        nodes,
        adj,
        rng: SmallRng::seed_from_u64(cfg.seed),
        in_flight: Vec::new(),
        down: vec![false; n],
        cut: None,
        sample: RoundSample::default(),
        cpu_total: Duration::ZERO,
        cpu,
        counting: true,
        gone: vec![false; n],
        max_neighbours: 0,
    };
    sim.max_neighbours = sim.adj.iter().map(Vec::len).max().unwrap_or(0);
    for &j in churn.as_ref().map_or(&[][..], |c| c.joiners()) {
        sim.down[j as usize] = true;
    }
    let mut workload_rng = SmallRng::seed_from_u64(cfg.seed ^ 0x5eed);
    // The order in which nodes tick within a round: their phases within the sync interval.
    let mut phases: Vec<u32> = (0..n as u32).collect();
    phases.shuffle(&mut SmallRng::seed_from_u64(cfg.seed ^ 0xface));
    let f = cfg.faults;
    let (part_start, part_end) = (cfg.events / 4, cfg.events / 4 + (cfg.events / 4).max(10));
    let crash_every = (cfg.events / 5).max(1);
    let mut restarts: Vec<(u64, u32)> = Vec::new();
    let mut samples = Vec::new();
    let mut updates = 0;
    // With churn, each update and its origin: what the lower bound counts depends on whether the
    // origin stayed and whether its update got out before it left.
    let mut churned_updates: Vec<(usize, W::L)> = Vec::new();
    let mut converged_at = None;
    let last_round = cfg.events + cfg.max_extra_rounds;
    let mut round = 0;
    while round < last_round + cfg.quiesce_rounds {
        if let Some(c) = churn.as_mut() {
            c.round(round, &mut sim);
        }
        // Faults that start or end now.
        if f.partition && n >= 2 && (round == part_start || round == part_end) {
            sim.set_partition(round == part_start);
        }
        if f.crashes && round < cfg.events && round > 0 && round % crash_every == 0 {
            let victim = sim.rng.gen_range(0..n as u32);
            if !sim.down[victim as usize] {
                sim.down[victim as usize] = true;
                sim.set_links(victim, false);
                restarts.push((round + 3, victim));
            }
        }
        for (_, v) in restarts
            .iter()
            .filter(|(r, _)| *r == round)
            .copied()
            .collect::<Vec<_>>()
        {
            sim.down[v as usize] = false;
            let neighbours = sim.adj[v as usize].clone();
            sim.nodes[v as usize].crash_restart(&neighbours);
            sim.set_links(v, true);
        }
        // One event per live node, then one sync interval.
        let mut queue = VecDeque::new();
        for i in 0..n {
            if sim.down[i] {
                continue;
            }
            if round < cfg.events {
                let delta = workload.event(
                    i as u32,
                    n as u32,
                    round,
                    sim.nodes[i].state(),
                    &mut workload_rng,
                );
                updates += delta.payload_units();
                if churn.is_some() {
                    churned_updates.push((i, delta.clone()));
                }
                let sends = sim.timed(|nodes| nodes[i].update(delta));
                sim.send(round, i as u32, sends, &mut queue);
            }
        }
        sim.deliver(round, queue);
        sim.sync_round(round, &phases);
        if sim.counting {
            sim.sample.avg_memory_units = sim
                .nodes
                .iter()
                .map(|x| x.memory_units() as f64)
                .sum::<f64>()
                / n as f64;
            samples.push(std::mem::take(&mut sim.sample));
        }
        round += 1;
        if converged_at.is_none() && round >= cfg.events && sim.converged() {
            converged_at = Some(round);
            sim.counting = false;
            // Quiesce: a few fault-free rounds, for the buffers to drain.
            sim.cfg.faults = Faults::default();
            let end = round + cfg.quiesce_rounds;
            while round < end {
                sim.sync_round(round, &phases);
                round += 1;
            }
            break;
        }
        if round >= last_round {
            break;
        }
    }
    let total = |f: fn(&RoundSample) -> u64| samples.iter().map(f).sum::<u64>();
    SimReport {
        algorithm: cfg.algorithm,
        topology: cfg.topology.to_string(),
        workload: name.to_string(),
        nodes: n,
        updates,
        payload_units: total(|s| s.payload_units),
        metadata_units: total(|s| s.metadata_units),
        bytes: total(|s| s.bytes),
        cpu: sim.cpu_total,
        avg_memory_units: samples.iter().map(|s| s.avg_memory_units).sum::<f64>()
            / samples.len().max(1) as f64,
        sync_memory_units: samples.iter().map(|s| s.sync_memory_units).sum::<f64>()
            / samples.len().max(1) as f64,
        rounds: converged_at.unwrap_or(round),
        converged: converged_at.is_some(),
        lower_bound_units: match &churn {
            None => updates * (n as u64).saturating_sub(1),
            Some(c) => churn_lower_bound(&sim, n - c.leaving(), &churned_updates),
        },
        pending_after_quiescence: (0..n)
            .filter(|i| !sim.gone[*i])
            .map(|i| sim.nodes[i].pending())
            .sum(),
        max_neighbours: sim.max_neighbours,
        samples,
    }
}

/// The lower bound of a run with churn: every update must reach each node there at the end (the
/// joiners included) but its origin — all of them if its origin left, and none if its origin
/// left before it got out (no protocol can deliver it then).
fn churn_lower_bound<L: Decompose + Measure + Serialize>(
    sim: &Sim<'_, L>,
    at_end: usize,
    updates: &[(usize, L)],
) -> u64 {
    let Some(last) = (0..sim.nodes.len()).find(|&i| !sim.gone[i] && !sim.down[i]) else {
        return 0;
    };
    let end = sim.nodes[last].state();
    updates
        .iter()
        .map(|(origin, delta)| {
            let reach = if !sim.gone[*origin] {
                at_end.saturating_sub(1)
            } else if delta.leq(end) {
                at_end
            } else {
                0
            };
            delta.payload_units() * reach as u64
        })
        .sum()
}

/// Runs the named workload.
pub fn run_spec(cfg: &SimConfig, spec: WorkloadSpec, cpu: &dyn Fn() -> Duration) -> SimReport {
    let name = match cfg.preload {
        0 => spec.to_string(),
        size => format!("{spec}+{size}"),
    };
    match spec {
        WorkloadSpec::GSet => run(cfg, &mut GSetWorkload::default(), &name, cpu),
        WorkloadSpec::GCounter => run(cfg, &mut GCounterWorkload, &name, cpu),
        WorkloadSpec::GMap(percent) => run(
            cfg,
            &mut GMapWorkload {
                percent,
                keys: 1000,
            },
            &name,
            cpu,
        ),
        WorkloadSpec::Retwis(z) => run(cfg, &mut RetwisWorkload::new(z), &name, cpu),
    }
}

#[cfg(test)]
mod tests;
