//! PNG charts. Per (topology, nodes, workload): transmission per algorithm (payload and metadata
//! stacked, the lower bound marked), cumulative transmission and memory over rounds, CPU. Across
//! runs ([`draw_sweeps`]): metadata share as the node count grows, and transmission across Retwis
//! Zipf coefficients.

use plotters::prelude::*;
use plotters::style::FontStyle;
use protocol::sim::SimReport;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

const SIZE: (u32, u32) = (900, 520);
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    // The font ships inside the binary (the `dejavu` crate), so charts need no system fonts.
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws every chart for `reports` (one topology, one workload) into `dir`.
pub fn draw(dir: &Path, reports: &[SimReport]) -> anyhow::Result<()> {
    let Some(first) = reports.first() else {
        return Ok(());
    };
    register_font();
    let tag =
        format!("{}_n{}_{}", first.topology, first.nodes, first.workload).replace([':', '.'], "-");
    let title = format!(
        "{} nodes, {}, {}",
        first.nodes, first.topology, first.workload
    );
    let labels: Vec<&str> = reports.iter().map(|r| r.algorithm.name()).collect();
    bars(
        &dir.join(format!("transmission_{tag}.png")),
        &format!("Transmission (units) — {title}; dashed: lower bound"),
        &labels,
        &[
            (
                "payload",
                reports.iter().map(|r| r.payload_units as f64).collect(),
            ),
            (
                "metadata",
                reports.iter().map(|r| r.metadata_units as f64).collect(),
            ),
        ],
        Some(first.lower_bound_units as f64),
    )?;
    bars(
        &dir.join(format!("cpu_{tag}.png")),
        &format!("CPU in the replicas (ms) — {title}"),
        &labels,
        &[(
            "cpu ms",
            reports
                .iter()
                .map(|r| r.cpu.as_secs_f64() * 1000.0)
                .collect(),
        )],
        None,
    )?;
    if first.samples.is_empty() {
        return Ok(()); // from a CSV: no per-round series
    }
    let series = |f: &dyn Fn(&SimReport) -> Vec<f64>| -> Vec<(&str, Vec<f64>)> {
        reports.iter().map(|r| (r.algorithm.name(), f(r))).collect()
    };
    lines(
        &dir.join(format!("memory_{tag}.png")),
        &format!("Memory per node (units) over rounds — {title}"),
        &series(&|r| r.samples.iter().map(|s| s.avg_memory_units).collect()),
    )?;
    lines(
        &dir.join(format!("cumulative_{tag}.png")),
        &format!("Cumulative transmission (units) over rounds — {title}"),
        &series(&|r| {
            r.samples
                .iter()
                .scan(0.0, |acc, s| {
                    *acc += (s.payload_units + s.metadata_units) as f64;
                    Some(*acc)
                })
                .collect()
        }),
    )?;
    Ok(())
}

/// `converge_{tag}.png`: time from the last write to equal digests, per algorithm (real runs).
pub fn draw_convergence(dir: &Path, reports: &[SimReport], ms: &[f64]) -> anyhow::Result<()> {
    let Some(first) = reports.first() else {
        return Ok(());
    };
    register_font();
    bars(
        &dir.join(format!("converge_{}.png", tag(first))),
        &format!(
            "Time to converge after the last write (ms) — {} nodes, {}, {}",
            first.nodes, first.topology, first.workload
        ),
        &reports
            .iter()
            .map(|r| r.algorithm.name())
            .collect::<Vec<_>>(),
        &[("ms", ms.to_vec())],
        None,
    )
}

/// The file-name tag of one (topology, nodes, workload) run.
fn tag(r: &SimReport) -> String {
    format!("{}_n{}_{}", r.topology, r.nodes, r.workload).replace([':', '.'], "-")
}

/// Charts across runs: `metadata_{topology}_{workload}.png` (metadata share against the node
/// count, when several counts ran) and `retwis_{topology}_n{nodes}.png` (transmission against the
/// Zipf coefficient, log scale, when several Retwis coefficients ran).
pub fn draw_sweeps(dir: &Path, reports: &[SimReport]) -> anyhow::Result<()> {
    register_font();
    let mut groups: BTreeMap<(String, String), Vec<&SimReport>> = BTreeMap::new();
    for r in reports {
        groups
            .entry((r.topology.clone(), r.workload.clone()))
            .or_default()
            .push(r);
    }
    for ((topology, workload), runs) in &groups {
        let xs: Vec<f64> = distinct(runs.iter().map(|r| r.nodes as f64));
        if xs.len() < 2 {
            continue;
        }
        type Metric = fn(&SimReport) -> f64;
        let metrics: [(&str, &str, Metric); 2] = [
            ("metadata", "Metadata share (%)", |r| {
                100.0 * r.metadata_share()
            }),
            ("bound", "Transmission ÷ lower bound", |r| {
                (r.payload_units + r.metadata_units) as f64 / r.lower_bound_units.max(1) as f64
            }),
        ];
        for (name, what, metric) in metrics {
            sweep(
                &dir.join(format!("{name}_{topology}_{workload}.png").replace(':', "-")),
                &format!("{what} by node count — {topology}, {workload}"),
                "nodes",
                &xs,
                &by_algorithm(runs, &xs, |r| r.nodes as f64, metric),
                false,
            )?;
        }
    }
    let mut retwis: BTreeMap<(String, usize), Vec<&SimReport>> = BTreeMap::new();
    for r in reports.iter().filter(|r| r.workload.starts_with("retwis:")) {
        retwis
            .entry((r.topology.clone(), r.nodes))
            .or_default()
            .push(r);
    }
    let zipf = |r: &SimReport| -> f64 {
        r.workload
            .trim_start_matches("retwis:")
            .parse()
            .unwrap_or(0.0)
    };
    for ((topology, nodes), runs) in &retwis {
        let xs = distinct(runs.iter().map(|r| zipf(r)));
        if xs.len() < 2 {
            continue;
        }
        sweep(
            &dir.join(format!("retwis_{topology}_n{nodes}.png")),
            &format!("Retwis transmission (units, log scale) by Zipf coefficient — {nodes} nodes, {topology}"),
            "Zipf coefficient",
            &xs,
            &by_algorithm(runs, &xs, zipf, |r| r.transmission() as f64),
            true,
        )?;
    }
    Ok(())
}

/// The sorted distinct values.
fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// One series per algorithm: `y` of its run at each of `xs` (NaN where it did not run).
fn by_algorithm<'a>(
    runs: &[&'a SimReport],
    xs: &[f64],
    x: impl Fn(&SimReport) -> f64,
    y: impl Fn(&SimReport) -> f64,
) -> Vec<(&'a str, Vec<f64>)> {
    let mut names: Vec<&str> = Vec::new();
    for r in runs {
        if !names.contains(&r.algorithm.name()) {
            names.push(r.algorithm.name());
        }
    }
    names
        .into_iter()
        .map(|name| {
            let values = xs
                .iter()
                .map(|&at| {
                    runs.iter()
                        .find(|r| r.algorithm.name() == name && x(r) == at)
                        .map_or(f64::NAN, |r| y(r))
                })
                .collect();
            (name, values)
        })
        .collect()
}

/// A line per series over categorical `xs` (evenly spaced, labelled with their values); with
/// `log_y` the values are drawn as log10 and labelled back in units.
fn sweep(
    path: &Path,
    title: &str,
    x_desc: &str,
    xs: &[f64],
    series: &[(&str, Vec<f64>)],
    log_y: bool,
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let f = |v: f64| if log_y { log(v) } else { v };
    let ys = || {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite())
    };
    let max_y = ys().map(f).fold(f(1.0), f64::max) * 1.05;
    let min_y = if log_y {
        ys().map(f).fold(max_y, f64::min).floor()
    } else {
        0.0
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.3..xs.len() as f64 - 0.7, min_y..max_y)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_labels(xs.len())
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < xs.len() {
                format!("{}", xs[i as usize])
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if log_y {
                short(10f64.powf(*y))
            } else {
                short(*y)
            }
        })
        .label_style((FONT, 14))
        .draw()?;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, v)| (i as f64, f(*v)))
            .collect();
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    let corner = if log_y {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    };
    legend(&mut chart, corner)?;
    root.present()?;
    Ok(())
}

/// A bar chart with one bar per label, `stack` series stacked in it, and an optional line, on a
/// log scale (so a 100× smaller bar still reads: the paper's algorithms differ by that much).
fn bars(
    path: &Path,
    title: &str,
    labels: &[&str],
    stack: &[(&str, Vec<f64>)],
    line: Option<f64>,
) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let totals: Vec<f64> = (0..labels.len())
        .map(|i| stack.iter().map(|(_, v)| v[i]).sum())
        .collect();
    let top = log(totals.iter().copied().chain(line).fold(1.0, f64::max)) + 0.15;
    let smallest = totals
        .iter()
        .copied()
        .chain(line)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    let bottom = log(smallest).floor().min(top - 1.0).max(0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..labels.len() as f64, bottom..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < labels.len() {
                labels[i].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("log scale")
        .y_label_formatter(&|y| short(10f64.powf(*y)))
        .label_style((FONT, 14))
        .draw()?;
    let mut base = vec![0.0; labels.len()];
    for (k, (name, values)) in stack.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let rects: Vec<Rectangle<(f64, f64)>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (from, to) = (log(base[i]).max(bottom), log(base[i] + v).max(bottom));
                base[i] += v;
                Rectangle::new(
                    [(i as f64 + 0.15, from), (i as f64 + 0.85, to)],
                    color.filled(),
                )
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    if let Some(y) = line {
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, log(y)), (labels.len() as f64, log(y))],
            6,
            4,
            BLACK.stroke_width(2),
        ))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// log₁₀, with everything below 1 at 0 (the charts count units, bytes and ms).
fn log(v: f64) -> f64 {
    v.max(1.0).log10()
}

/// A line chart, one line per series, x = round (from 1), on a log scale.
fn lines(path: &Path, title: &str, series: &[(&str, Vec<f64>)]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let max_x = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let values = || series.iter().flat_map(|(_, v)| v.iter().copied());
    let top = log(values().fold(1.0, f64::max)) + 0.1;
    let smallest = values().filter(|v| *v > 0.0).fold(f64::MAX, f64::min);
    let bottom = log(smallest).floor().min(top - 1.0).max(0.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(1.0..max_x, bottom..top)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc("log scale")
        .y_label_formatter(&|y| short(10f64.powf(*y)))
        .label_style((FONT, 14))
        .draw()?;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64 + 1.0, log(*v).max(bottom))),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

/// The series legend, in the charts' one style.
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing the legend: {e}"))
}

/// 1234567 → "1.2M".
fn short(y: f64) -> String {
    match y.abs() {
        v if v >= 1e6 => format!("{:.1}M", y / 1e6),
        v if v >= 1e3 => format!("{:.0}k", y / 1e3),
        _ => format!("{y:.0}"),
    }
}
