//! `deltanode sim --preload N… --diverge D…`: catch-up runs between two replicas sharing N
//! elements and differing in D (`10`, or `1%` of N), by reconciliation and by full-state exchange,
//! side by side. Prints a table and writes `catchup.csv` into `--out`.

use crate::cli::SimArgs;
use anyhow::Context;
use protocol::sim::catch_up::{self, CatchUpReport, Side};
use std::fmt::Write as _;
use std::time::Instant;

/// The CSV's header.
pub const HEADER: &str =
    "method,shared,differ,side,bytes,messages,chain,difference_bytes,state_bytes,cpu_ms,converged,element_bytes";

/// `D` of `--diverge`: a count, or a percentage of N.
fn differ(spec: &str, shared: u64) -> anyhow::Result<u64> {
    match spec.strip_suffix('%') {
        Some(p) => {
            let p: f64 = p.parse().with_context(|| format!("--diverge {spec}"))?;
            anyhow::ensure!(
                (0.0..=100.0).contains(&p),
                "--diverge {spec}: a percentage in 0..100"
            );
            Ok((shared as f64 * p / 100.0).round() as u64)
        }
        None => spec
            .parse()
            .with_context(|| format!("--diverge {spec}: a count or a percentage")),
    }
}

/// Runs every (N, D) both ways; returns the reports.
pub fn run(args: &SimArgs) -> anyhow::Result<Vec<CatchUpReport>> {
    let side = if args.diverge_one_side {
        Side::One
    } else {
        Side::Both
    };
    let origin = Instant::now();
    let clock = move || origin.elapsed();
    let mut reports = Vec::new();
    let mut csv = format!("{HEADER}\n");
    let mut table = String::from(
        "| N | D | element bytes | reconcile bytes | state bytes | ÷ difference | state ÷ reconcile | messages | round trips | reconcile ms |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let runs = args.preload.iter().flat_map(|n| {
        args.element_bytes
            .iter()
            .flat_map(move |e| args.diverge.iter().map(move |d| (*n, *e, d)))
    });
    for (shared, element_bytes, spec) in runs {
        {
            let d = differ(spec, shared)?;
            let r = catch_up::run(true, (shared, d, side), element_bytes, &clock);
            let s = catch_up::run(false, (shared, d, side), element_bytes, &clock);
            anyhow::ensure!(
                r.converged && s.converged,
                "N={shared} D={d}: no convergence"
            );
            let _ = writeln!(
                table,
                "| {shared} | {d} | {} | {} | {} | {} | {:.0}× | {} | {} | {} |",
                if element_bytes == 0 {
                    "integer".to_string()
                } else {
                    element_bytes.to_string()
                },
                r.bytes,
                s.bytes,
                if r.difference_bytes > 8 {
                    format!("{:.2}×", r.bytes as f64 / r.difference_bytes as f64)
                } else {
                    "—".into()
                },
                s.bytes as f64 / r.bytes.max(1) as f64,
                r.messages,
                r.chain.div_ceil(2),
                r.cpu.as_millis(),
            );
            for x in [&r, &s] {
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    x.method,
                    x.shared,
                    x.differ,
                    if x.side == Side::One { "one" } else { "both" },
                    x.bytes,
                    x.messages,
                    x.chain,
                    x.difference_bytes,
                    x.state_bytes,
                    x.cpu.as_millis(),
                    x.converged,
                    x.element_bytes
                );
            }
            reports.push(r);
            reports.push(s);
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let path = args.out.join("catchup.csv");
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    println!("{table}\nwrote {}", path.display());
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverge_is_a_count_or_a_percentage() {
        assert_eq!(differ("10", 1000).unwrap(), 10);
        assert_eq!(differ("1%", 10_000).unwrap(), 100);
        assert_eq!(differ("50%", 10).unwrap(), 5);
        assert!(differ("x", 10).is_err());
        assert!(differ("150%", 10).is_err());
    }
}
