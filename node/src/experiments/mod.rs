//! `deltanode sim`: runs every requested (topology, workload, algorithm) in the simulator, prints
//! one table per (topology, workload), and writes `results.csv` (SPEC columns), `rounds.csv` (the
//! per-round series), PNG charts (log scales) and `report.html` (the tables and charts in one
//! self-contained page) into `--out`.

mod catch_up;
mod charts;
mod report;

use crate::cli::SimArgs;
use anyhow::Context;
use protocol::sim::topology::Topology;
use protocol::sim::workload::WorkloadSpec;
use protocol::sim::{run_spec, Faults, SimConfig, SimReport};
use protocol::Algorithm;
use std::fmt::Write as _;
use std::fs;
use std::time::Instant;

/// The SPEC's `results.csv` header.
pub const RESULTS_HEADER: &str = "algorithm,topology,workload,nodes,payload_units,metadata_units,bytes,cpu_ms,avg_memory_units,rounds,converged,lower_bound_units";

/// The simulator's own columns after the SPEC's: memory sampled at each node's sync (before the
/// acks), where the paper's authors sampled it. Real-process CSVs have `time_to_converge_ms` here.
pub const SIM_EXTRA_COLUMNS: &str = "sync_memory_units,max_neighbours";

/// Runs the command.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.nodes.iter().all(|&n| n >= 2),
        "--nodes must be at least 2"
    );
    anyhow::ensure!((0.0..1.0).contains(&args.loss), "--loss must be in [0, 1)");
    anyhow::ensure!((0.0..=1.0).contains(&args.dup), "--dup must be in [0, 1]");
    anyhow::ensure!(
        (0.0..=0.5).contains(&args.churn),
        "--churn must be in [0, 0.5]"
    );
    anyhow::ensure!(
        args.churn == 0.0
            || args
                .topology
                .iter()
                .all(|t| matches!(t, Topology::Overlay(_))),
        "--churn needs --topology overlay (the membership protocol rebuilds the graph)"
    );
    if !args.diverge.is_empty() {
        return catch_up::run(args).map(|_| ());
    }
    if args.preload.iter().any(|&p| p > 0) {
        anyhow::ensure!(
            args.workload.iter().all(|w| *w == WorkloadSpec::GSet),
            "--preload works with the gset workload only"
        );
        anyhow::ensure!(
            args.algorithms
                .0
                .iter()
                .all(|a| !matches!(a, Algorithm::Scuttlebutt | Algorithm::Op)),
            "--preload works with the engine's algorithms only (not scuttlebutt or op)"
        );
    }
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let faults = Faults {
        loss: args.loss,
        dup: args.dup,
        reorder: args.reorder,
        max_delay: args.delay,
        partition: args.partition,
        crashes: args.crashes,
    };
    let origin = Instant::now();
    let clock = move || origin.elapsed();
    let mut all = Vec::new();
    let mut tables = Vec::new();
    for topology in args
        .topology
        .iter()
        .map(|&t| match (t, args.max_neighbours) {
            (Topology::Overlay(_), Some(k)) => Topology::Overlay(k),
            _ => t,
        })
    {
        for &nodes in &args.nodes {
            for (&workload, &preload) in args
                .workload
                .iter()
                .flat_map(|w| args.preload.iter().map(move |p| (w, p)))
            {
                let reports: Vec<SimReport> = args
                    .algorithms
                    .0
                    .iter()
                    .map(|&algorithm| {
                        let cfg = SimConfig {
                            nodes,
                            events: args.events,
                            seed: args.seed,
                            faults,
                            timing: args.timing,
                            preload,
                            churn: args.churn,
                            ..SimConfig::paper(algorithm, topology)
                        };
                        run_spec(&cfg, workload, &clock)
                    })
                    .collect();
                let t = table(&reports);
                print!("{t}");
                tables.push(t);
                charts::draw(&args.out, &reports).context("drawing charts")?;
                all.extend(reports);
            }
        }
    }
    charts::draw_sweeps(&args.out, &all).context("drawing charts")?;
    fs::write(args.out.join("results.csv"), results_csv(&all))?;
    fs::write(args.out.join("rounds.csv"), rounds_csv(&all))?;
    let command: Vec<String> = std::env::args().collect();
    report::write(&args.out, &command.join(" "), &tables).context("writing the report")?;
    println!("wrote {}", args.out.join("results.csv").display());
    println!("wrote {}", args.out.join("report.html").display());
    Ok(())
}

/// `deltanode charts`: the charts of a `results.csv` written by `sim` or by
/// `scripts/experiment.py` (whose extra `time_to_converge_ms` column adds a convergence chart).
/// Per-round series are not in the CSV, so the over-time charts come only from `sim` itself.
pub fn charts_from_csv(csv: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty CSV")?.split(',').collect();
    anyhow::ensure!(
        header.join(",").starts_with(RESULTS_HEADER),
        "{} does not start with the results.csv columns: {RESULTS_HEADER}",
        csv.display()
    );
    let converge_col = header.iter().position(|h| *h == "time_to_converge_ms");
    let sync_col = header.iter().position(|h| *h == "sync_memory_units");
    let mut runs: Vec<(SimReport, Option<f64>)> = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let c: Vec<&str> = line.split(',').collect();
        let parse = |i: usize| -> anyhow::Result<f64> {
            c.get(i)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("line {}: column {} is not a number", n + 2, header[i]))
        };
        anyhow::ensure!(c.len() >= 12, "line {}: too few columns", n + 2);
        let nodes = parse(3)? as usize;
        let lower_bound_units = parse(11)? as u64;
        let report = SimReport {
            algorithm: c[0].parse().map_err(|e: String| anyhow::anyhow!(e))?,
            topology: c[1].to_string(),
            workload: c[2].to_string(),
            nodes,
            updates: lower_bound_units / (nodes as u64 - 1).max(1),
            payload_units: parse(4)? as u64,
            metadata_units: parse(5)? as u64,
            bytes: parse(6)? as u64,
            cpu: std::time::Duration::from_secs_f64(parse(7)? / 1000.0),
            avg_memory_units: parse(8)?,
            sync_memory_units: sync_col.map(parse).transpose()?.unwrap_or(0.0),
            rounds: parse(9)? as u64,
            converged: c[10] == "true",
            lower_bound_units,
            pending_after_quiescence: 0,
            max_neighbours: header
                .iter()
                .position(|h| *h == "max_neighbours")
                .map(parse)
                .transpose()?
                .unwrap_or(0.0) as usize,
            samples: Vec::new(),
        };
        let converge = converge_col.map(parse).transpose()?;
        runs.push((report, converge));
    }
    fs::create_dir_all(out)?;
    let mut groups: Vec<Vec<(SimReport, Option<f64>)>> = Vec::new();
    for run in runs {
        let same = |g: &Vec<(SimReport, Option<f64>)>| {
            let r = &g[0].0;
            (&r.topology, r.nodes, &r.workload) == (&run.0.topology, run.0.nodes, &run.0.workload)
        };
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(run),
            None => groups.push(vec![run]),
        }
    }
    let mut all = Vec::new();
    for group in groups {
        let (reports, converge): (Vec<SimReport>, Vec<Option<f64>>) = group.into_iter().unzip();
        charts::draw(out, &reports)?;
        if converge.iter().all(Option::is_some) {
            let ms: Vec<f64> = converge.into_iter().flatten().collect();
            charts::draw_convergence(out, &reports, &ms)?;
        }
        all.extend(reports);
    }
    charts::draw_sweeps(out, &all)?;
    println!(
        "wrote the charts of {} into {}",
        csv.display(),
        out.display()
    );
    Ok(())
}

/// One table: a row per algorithm, ratios against state-based (when it ran) and the lower bound.
pub fn table(reports: &[SimReport]) -> String {
    let Some(first) = reports.first() else {
        return String::new();
    };
    let state = reports.iter().find(|r| r.algorithm == Algorithm::State);
    let mut s = String::new();
    // With churn, an update whose origin left before it got out is not counted, so the bound can
    // differ between algorithms.
    let bound = if reports
        .iter()
        .all(|r| r.lower_bound_units == first.lower_bound_units)
    {
        format!("{} units", first.lower_bound_units)
    } else {
        let each: Vec<String> = reports
            .iter()
            .map(|r| format!("{} {}", r.algorithm.name(), r.lower_bound_units))
            .collect();
        format!(
            "{} units (updates lost with their origin not counted)",
            each.join(", ")
        )
    };
    let _ = writeln!(
        s,
        "\n{} nodes, {} topology, {} workload; lower bound {bound}",
        first.nodes, first.topology, first.workload
    );
    let _ = writeln!(
        s,
        "{:<12} {:>12} {:>8} {:>9} {:>8} {:>12} {:>9} {:>11} {:>7} {:>9}",
        "algorithm",
        "units",
        "÷ state",
        "metadata",
        "÷ bound",
        "bytes",
        "cpu ms",
        "memory",
        "rounds",
        "converged"
    );
    for r in reports {
        let vs_state = state.map_or("-".to_string(), |st| {
            format!("{:.3}", ratio(r.transmission(), st.transmission()))
        });
        let _ = writeln!(
            s,
            "{:<12} {:>12} {:>8} {:>8.1}% {:>8.2} {:>12} {:>9.1} {:>11.0} {:>7} {:>9}",
            r.algorithm.name(),
            r.transmission(),
            vs_state,
            100.0 * r.metadata_share(),
            ratio(r.payload_units, r.lower_bound_units),
            r.bytes,
            r.cpu.as_secs_f64() * 1000.0,
            r.avg_memory_units,
            r.rounds,
            r.converged,
        );
    }
    s
}

fn ratio(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

/// `results.csv`: the SPEC columns, then [`SIM_EXTRA_COLUMNS`].
pub fn results_csv(reports: &[SimReport]) -> String {
    let mut s = format!("{RESULTS_HEADER},{SIM_EXTRA_COLUMNS}\n");
    for r in reports {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.3},{:.1},{},{},{},{:.1},{}",
            r.algorithm.name(),
            r.topology,
            r.workload,
            r.nodes,
            r.payload_units,
            r.metadata_units,
            r.bytes,
            r.cpu.as_secs_f64() * 1000.0,
            r.avg_memory_units,
            r.rounds,
            r.converged,
            r.lower_bound_units,
            r.sync_memory_units,
            r.max_neighbours
        );
    }
    s
}

/// `rounds.csv`: the per-round series behind the charts.
fn rounds_csv(reports: &[SimReport]) -> String {
    let mut s = String::from(
        "algorithm,topology,workload,round,payload_units,metadata_units,bytes,avg_memory_units\n",
    );
    for r in reports {
        for (i, x) in r.samples.iter().enumerate() {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{:.1}",
                r.algorithm.name(),
                r.topology,
                r.workload,
                i + 1,
                x.payload_units,
                x.metadata_units,
                x.bytes,
                x.avg_memory_units
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{AlgorithmList, SimArgs};
    use protocol::sim::topology::Topology;
    use protocol::sim::workload::WorkloadSpec;

    /// State-based and BP+RR on a 6-node tree, gset, 5 events, no faults, writing into `out`.
    fn small_run(out: &std::path::Path) -> SimArgs {
        SimArgs {
            topology: vec![Topology::Tree],
            nodes: vec![6],
            workload: vec![WorkloadSpec::GSet],
            algorithms: AlgorithmList(vec![Algorithm::State, Algorithm::BpRr]),
            events: 5,
            seed: 1,
            loss: 0.0,
            dup: 0.0,
            reorder: false,
            delay: 0,
            partition: false,
            crashes: false,
            timing: protocol::sim::Timing::Staggered,
            preload: vec![0],
            diverge: vec![],
            diverge_one_side: false,
            element_bytes: vec![0],
            max_neighbours: None,
            churn: 0.0,
            out: out.to_path_buf(),
        }
    }

    #[test]
    fn an_overlay_run_keeps_every_view_within_its_bound_and_says_so() {
        let out =
            std::env::temp_dir().join(format!("deltanode-overlay-test-{}", std::process::id()));
        let args = SimArgs {
            topology: vec![Topology::Overlay(8)],
            max_neighbours: Some(3),
            nodes: vec![40, 60],
            ..small_run(&out)
        };
        run(&args).unwrap();
        let csv = fs::read_to_string(out.join("results.csv")).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "max_neighbours").unwrap();
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 4);
        for r in &rows {
            assert_eq!(r[1], "overlay:3", "--max-neighbours rebinds the overlay");
            assert_eq!(r[10], "true", "converged");
            let k: usize = r[col].parse().unwrap();
            assert!((1..=3).contains(&k), "{k} neighbours");
        }
        assert!(out.join("bound_overlay-3_gset.png").exists());
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn preload_runs_each_size_and_only_for_sets() {
        let out =
            std::env::temp_dir().join(format!("deltanode-preload-test-{}", std::process::id()));
        let mut args = SimArgs {
            topology: vec![Topology::Mesh],
            events: 3,
            preload: vec![100, 1000],
            ..small_run(&out)
        };
        run(&args).unwrap();
        let csv = fs::read_to_string(out.join("results.csv")).unwrap();
        let rows: Vec<Vec<&str>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        let units = |alg: &str, workload: &str| -> u64 {
            let r = rows
                .iter()
                .find(|r| r[0] == alg && r[2] == workload)
                .unwrap();
            r[4].parse::<u64>().unwrap() + r[5].parse::<u64>().unwrap()
        };
        // State-based ships the preloaded state; BP+RR only the events: the same at both sizes.
        assert!(units("state", "gset+1000") > 5 * units("state", "gset+100"));
        assert_eq!(units("bp-rr", "gset+1000"), units("bp-rr", "gset+100"));
        args.workload = vec![WorkloadSpec::GCounter];
        assert!(run(&args).is_err(), "gcounter has no preload");
        fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn writes_the_spec_columns_a_row_per_run_and_the_charts() {
        let out = std::env::temp_dir().join(format!("deltanode-sim-test-{}", std::process::id()));
        let args = SimArgs {
            workload: vec![WorkloadSpec::GSet, WorkloadSpec::GMap(10)],
            ..small_run(&out)
        };
        run(&args).unwrap();
        let csv = fs::read_to_string(out.join("results.csv")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], format!("{RESULTS_HEADER},{SIM_EXTRA_COLUMNS}"));
        assert_eq!(lines.len(), 1 + 4);
        for row in &lines[1..] {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells.len(), 14, "{row}");
            assert_eq!(cells[13], "3", "a binary tree's most neighbours: {row}");
            let (end, sync): (f64, f64) = (cells[8].parse().unwrap(), cells[12].parse().unwrap());
            assert!(sync > 0.0 && end > 0.0, "both memory samples taken: {row}");
            assert_eq!(cells[10], "true", "{row} did not converge");
            if cells[2] == "gset" {
                assert_eq!(
                    cells[11], "150",
                    "lower bound = 6 nodes × 5 updates × 5 other nodes: {row}"
                );
            }
        }
        for chart in [
            "transmission_tree_n6_gset.png",
            "memory_tree_n6_gmap-10.png",
            "cumulative_tree_n6_gset.png",
            "cpu_tree_n6_gset.png",
        ] {
            let png = fs::read(out.join(chart)).unwrap();
            assert_eq!(&png[..4], b"\x89PNG", "{chart}");
        }
        // One self-contained page: both summary tables, and every chart embedded.
        let html = fs::read_to_string(out.join("report.html")).unwrap();
        assert!(html.contains("6 nodes, tree topology, gset workload"));
        assert!(html.contains("6 nodes, tree topology, gmap:10 workload"));
        let charts = fs::read_dir(&out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "png")
            })
            .count();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), charts);
        assert_eq!(
            html.matches("src=\"").count(),
            charts,
            "nothing from outside the page"
        );
        fs::remove_dir_all(out).unwrap();
    }
}
