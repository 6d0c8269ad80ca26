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

pub mod node;
pub mod topology;
pub mod workload;

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
        }
    }
}

/// Totals of one round.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RoundSample {
    /// Payload units sent in the round.
    pub payload_units: u64,
    /// Metadata units sent in the round.
    pub metadata_units: u64,
    /// Encoded bytes sent in the round.
    pub bytes: u64,
    /// Memory per node at the round's end, averaged over nodes.
    pub avg_memory_units: f64,
    /// Memory per node just after its own sync, before any answer arrives, averaged over nodes:
    /// where the paper's authors sampled (their memory timer shares the sync timer's process and
    /// period, so it fires right after each sync, while the acks are still on their way).
    pub sync_memory_units: f64,
}

/// What a run measured (totals up to convergence).
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The topology, as named on the command line.
    pub topology: String,
    /// The workload, as named on the command line.
    pub workload: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Payload units of every local update (each must reach N − 1 other nodes).
    pub updates: u64,
    /// Payload units sent.
    pub payload_units: u64,
    /// Metadata units sent.
    pub metadata_units: u64,
    /// Encoded bytes sent (wire frames).
    pub bytes: u64,
    /// CPU time spent inside the replicas.
    pub cpu: Duration,
    /// Memory per node, averaged over nodes and rounds.
    pub avg_memory_units: f64,
    /// Memory per node sampled at its syncs (before the acks), averaged over nodes and rounds.
    pub sync_memory_units: f64,
    /// Rounds until every node held the same state.
    pub rounds: u64,
    /// Whether they did within the allowed rounds.
    pub converged: bool,
    /// The lower bound: every update delivered once to every other node.
    pub lower_bound_units: u64,
    /// Groups or ops still held, summed over nodes, after the quiescent rounds.
    pub pending_after_quiescence: usize,
    /// Per-round totals.
    pub samples: Vec<RoundSample>,
}

impl SimReport {
    /// Payload plus metadata units.
    pub fn transmission(&self) -> u64 {
        self.payload_units + self.metadata_units
    }

    /// Metadata share of the transmission.
    pub fn metadata_share(&self) -> f64 {
        self.metadata_units as f64 / self.transmission().max(1) as f64
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
        self.cut.is_none()
            && !self.down.iter().any(|d| *d)
            && self.nodes.windows(2).all(|w| w[0].state() == w[1].state())
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
    let adj = cfg.topology.neighbours(n, cfg.seed);
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
    };
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
    let mut converged_at = None;
    let last_round = cfg.events + cfg.max_extra_rounds;
    let mut round = 0;
    while round < last_round + cfg.quiesce_rounds {
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
        lower_bound_units: updates * (n as u64).saturating_sub(1),
        pending_after_quiescence: sim.nodes.iter().map(SimNode::pending).sum(),
        samples,
    }
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_CLOCK: &dyn Fn() -> Duration = &|| Duration::ZERO;
    const TOPOLOGIES: [Topology; 6] = [
        Topology::Mesh,
        Topology::Tree,
        Topology::Ring,
        Topology::Line,
        Topology::Full,
        Topology::Random(3),
    ];
    const WORKLOADS: [WorkloadSpec; 4] = [
        WorkloadSpec::GSet,
        WorkloadSpec::GCounter,
        WorkloadSpec::GMap(30),
        WorkloadSpec::Retwis(1.0),
    ];

    fn small(algorithm: Algorithm, topology: Topology, seed: u64) -> SimConfig {
        SimConfig {
            nodes: 8,
            events: 12,
            seed,
            max_extra_rounds: 300,
            ..SimConfig::paper(algorithm, topology)
        }
    }

    #[test]
    fn every_algorithm_converges_on_every_topology_and_drains_its_buffers() {
        for algorithm in Algorithm::ALL {
            for topology in TOPOLOGIES {
                for workload in WORKLOADS {
                    let r = run_spec(&small(algorithm, topology, 3), workload, NO_CLOCK);
                    assert!(r.converged, "{algorithm} on {topology} with {workload}");
                    assert_eq!(
                        r.pending_after_quiescence, 0,
                        "{algorithm} on {topology} with {workload} kept buffers"
                    );
                    assert!(r.updates > 0);
                }
            }
        }
    }

    #[test]
    fn a_run_is_determined_by_its_seed() {
        let faults = Faults {
            loss: 0.2,
            dup: 0.1,
            reorder: true,
            max_delay: 2,
            partition: true,
            crashes: true,
        };
        let cfg = SimConfig {
            faults,
            ..small(Algorithm::BpRr, Topology::Mesh, 11)
        };
        let (a, b) = (
            run_spec(&cfg, WorkloadSpec::GSet, NO_CLOCK),
            run_spec(&cfg, WorkloadSpec::GSet, NO_CLOCK),
        );
        assert_eq!(
            (a.payload_units, a.metadata_units, a.bytes, a.rounds),
            (b.payload_units, b.metadata_units, b.bytes, b.rounds)
        );
        let other = run_spec(&SimConfig { seed: 12, ..cfg }, WorkloadSpec::GSet, NO_CLOCK);
        assert_ne!(
            (a.payload_units, a.bytes),
            (other.payload_units, other.bytes)
        );
    }

    #[test]
    fn the_paper_shape_holds_on_its_setup() {
        let run = |a, t| run_spec(&SimConfig::paper(a, t), WorkloadSpec::GSet, NO_CLOCK);
        for topology in [Topology::Mesh, Topology::Tree] {
            let state = run(Algorithm::State, topology).transmission() as f64;
            let delta = run(Algorithm::Delta, topology).transmission() as f64;
            let bprr = run(Algorithm::BpRr, topology);
            assert!(
                delta / state > 0.9,
                "classic delta transmits about as much as state-based on {topology}"
            );
            assert!(
                (bprr.transmission() as f64) / state < 0.05,
                "BP+RR is far below state-based on {topology}"
            );
        }
        // On a tree, BP+RR delivers each update once per other node: the lower bound.
        let tree = run(Algorithm::BpRr, Topology::Tree);
        assert!(tree.payload_units as f64 <= 1.1 * tree.lower_bound_units as f64);
        // On the mesh, BP alone barely helps: groups come back around cycles and are re-buffered whole.
        let (bp, delta) = (
            run(Algorithm::Bp, Topology::Mesh),
            run(Algorithm::Delta, Topology::Mesh),
        );
        assert!(bp.transmission() as f64 > 0.9 * delta.transmission() as f64);
    }

    #[test]
    fn the_tree_algorithm_sends_each_update_over_a_mesh_about_once() {
        let run = |a| {
            run_spec(
                &SimConfig::paper(a, Topology::Mesh),
                WorkloadSpec::GSet,
                NO_CLOCK,
            )
        };
        let (tree, bprr) = (run(Algorithm::BpRrTree), run(Algorithm::BpRr));
        let bound = tree.lower_bound_units as f64;
        assert!(tree.converged);
        assert!(tree.payload_units as f64 <= 1.1 * bound, "{tree:?}");
        assert!(
            tree.transmission() as f64 <= 1.5 * bound,
            "beacons included"
        );
        assert!(
            bprr.payload_units as f64 > 3.0 * bound,
            "the paper's BP+RR, for contrast"
        );
        // Link failures (partition, crashes, loss) cost state transfers, never convergence.
        let faults = Faults {
            loss: 0.1,
            partition: true,
            crashes: true,
            ..Faults::default()
        };
        let cfg = SimConfig {
            faults,
            ..SimConfig::paper(Algorithm::BpRrTree, Topology::Mesh)
        };
        let r = run_spec(&cfg, WorkloadSpec::GSet, NO_CLOCK);
        assert!(r.converged && r.pending_after_quiescence == 0);
    }

    #[test]
    fn aligned_sync_timers_would_flatter_classic_delta_on_a_tree() {
        // In lockstep, a group's echo arrives after the content it repeats and is dropped as
        // redundant; with staggered ticks (real nodes) it brings something new and is re-buffered
        // whole. RR-based algorithms do not care.
        let ratio = |algorithm, timing| {
            let run = |a| {
                let cfg = SimConfig {
                    timing,
                    ..SimConfig::paper(a, Topology::Tree)
                };
                run_spec(&cfg, WorkloadSpec::GSet, NO_CLOCK).transmission() as f64
            };
            run(algorithm) / run(Algorithm::State)
        };
        assert!(ratio(Algorithm::Delta, Timing::Lockstep) < 0.7);
        assert!(ratio(Algorithm::Delta, Timing::Staggered) > 0.9);
        let (lockstep, staggered) = (
            ratio(Algorithm::BpRr, Timing::Lockstep),
            ratio(Algorithm::BpRr, Timing::Staggered),
        );
        assert!(
            (lockstep - staggered).abs() < 0.002,
            "{lockstep} vs {staggered}"
        );
    }

    /// Seeds for the large-scale fault test: `DELTANODE_SIM_SEEDS` (default 24, for CI); the
    /// documented long run sets 1000.
    fn seeds() -> u32 {
        std::env::var("DELTANODE_SIM_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(24)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn every_algorithm_converges_under_random_faults(
            seed: u64,
            a in 0usize..Algorithm::ALL.len(),
            t in 0usize..TOPOLOGIES.len(),
            w in 0usize..WORKLOADS.len(),
            nodes in 3usize..14,
            loss in 0.0f64..0.4,
            dup in 0.0f64..0.3,
            reorder: bool,
            delay in 0u64..3,
            partition: bool,
            crashes: bool,
            lockstep: bool,
        ) {
            let faults = Faults { loss, dup, reorder, max_delay: delay, partition, crashes };
            let timing = if lockstep { Timing::Lockstep } else { Timing::Staggered };
            let cfg = SimConfig { nodes, faults, timing, max_extra_rounds: 2000, ..small(Algorithm::ALL[a], TOPOLOGIES[t], seed) };
            let r = run_spec(&cfg, WORKLOADS[w], NO_CLOCK);
            prop_assert!(r.converged, "{:?} did not converge", cfg);
            prop_assert_eq!(r.pending_after_quiescence, 0, "{:?} kept buffers", cfg);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(seeds()))]
        /// Random regular topologies of up to 50 nodes with every fault at once.
        #[test]
        fn random_topologies_up_to_50_nodes_converge_under_every_fault(
            seed: u64,
            a in 0usize..Algorithm::ALL.len(),
            degree in 2usize..6,
            nodes in 6usize..=50,
            loss in 0.0f64..0.3,
            dup in 0.0f64..0.2,
            delay in 0u64..3,
            lockstep: bool,
        ) {
            let faults = Faults { loss, dup, reorder: true, max_delay: delay, partition: true, crashes: true };
            let timing = if lockstep { Timing::Lockstep } else { Timing::Staggered };
            let cfg = SimConfig {
                nodes,
                events: 10,
                faults,
                timing,
                max_extra_rounds: 3000,
                ..small(Algorithm::ALL[a], Topology::Random(degree), seed)
            };
            let r = run_spec(&cfg, WorkloadSpec::GSet, NO_CLOCK);
            prop_assert!(r.converged, "{:?} did not converge", cfg);
            prop_assert_eq!(r.pending_after_quiescence, 0, "{:?} kept buffers", cfg);
        }
    }
}
