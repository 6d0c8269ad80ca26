//! PNG charts of one (topology, workload) comparison: transmission per algorithm (payload and
//! metadata stacked, the lower bound marked), cumulative transmission and memory over rounds, CPU.

use plotters::prelude::*;
use plotters::style::FontStyle;
use protocol::sim::SimReport;
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
    let tag = format!("{}_{}", first.topology, first.workload).replace([':', '.'], "-");
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

/// A bar chart with one bar per label, `stack` series stacked in it, and an optional line.
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
    let top = totals.iter().copied().chain(line).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..labels.len() as f64, 0.0..top)?;
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
        .y_label_formatter(&|y| short(*y))
        .label_style((FONT, 14))
        .draw()?;
    let mut base = vec![0.0; labels.len()];
    for (k, (name, values)) in stack.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let rects: Vec<Rectangle<(f64, f64)>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let r = Rectangle::new(
                    [(i as f64 + 0.15, base[i]), (i as f64 + 0.85, base[i] + v)],
                    color.filled(),
                );
                base[i] += v;
                r
            })
            .collect();
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    if let Some(y) = line {
        chart.draw_series(DashedLineSeries::new(
            vec![(0.0, y), (labels.len() as f64, y)],
            6,
            4,
            BLACK.stroke_width(2),
        ))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// A line chart, one line per series, x = round (from 1).
fn lines(path: &Path, title: &str, series: &[(&str, Vec<f64>)]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let max_x = series
        .iter()
        .map(|(_, v)| v.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let max_y = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(1.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_label_formatter(&|y| short(*y))
        .label_style((FONT, 14))
        .draw()?;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (i as f64 + 1.0, *v)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
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
