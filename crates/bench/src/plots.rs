//! The report's plots, as SVG files next to docs/benchmarks.md.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::model::{
    BenchReport, CLUSTER_COURSE, CLUSTER_COURSE_10, CLUSTER_GENERATED, CLUSTER_MANY_USERS,
    EMBEDDED_COURSE, EMBEDDED_GENERATED, EMBEDDED_HALF_LOAD, EMBEDDED_MANY_USERS, HALF_LOAD,
    SLOW_QUOTE,
};
use crate::render::thousands;

const SIZE: (u32, u32) = (900, 480);
const FONT: &str = "sans-serif";

/// The plot files, in the order the page shows them.
pub const THROUGHPUT: &str = "throughput-over-time.svg";
pub const LATENCY: &str = "latency-percentiles.svg";
pub const INSTANCES: &str = "instances-vs-throughput.svg";
pub const RATIOS: &str = "ratios-to-ceiling.svg";
pub const DUMPLOG_MEMORY: &str = "dumplog-memory.svg";

/// Where one plot is drawn.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn err(e: impl Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// Draws one plot of the report on an SVG area.
type Plot = fn(&BenchReport, &DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>;

/// Writes every plot into `dir`; returns the files written.
pub fn write_all(report: &BenchReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let plots: [(&str, Plot); 5] = [
        (THROUGHPUT, throughput_over_time),
        (LATENCY, latency_percentiles),
        (INSTANCES, instances_vs_throughput),
        (RATIOS, ratios_to_ceiling),
        (DUMPLOG_MEMORY, dumplog_memory),
    ];
    let mut written = Vec::new();
    for (file, draw) in plots {
        let path = dir.join(file);
        {
            let root = SVGBackend::new(&path, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            draw(report, &root)?;
            root.present().map_err(err)?;
        }
        written.push(path);
    }
    Ok(written)
}

/// Says so on a plot whose run measured nothing to draw.
fn no_data(root: &Area, title: &str) -> anyhow::Result<()> {
    root.titled(title, (FONT, 22)).map_err(err)?;
    root.draw(&Text::new(
        "not measured in this run",
        (SIZE.0 as i32 / 2 - 110, SIZE.1 as i32 / 2),
        (FONT, 18),
    ))
    .map_err(err)
}

/// The legend of a chart's labelled series, at `position`.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 12))
        .draw()
        .map_err(err)
}

fn color(i: usize) -> RGBColor {
    // Distinguishable on white, in a fixed order: a plot has at most a
    // dozen series, so no two share a colour.
    const COLORS: [RGBColor; 12] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(0, 0, 128),
    ];
    COLORS[i % COLORS.len()]
}

/// The replays whose timelines and latencies are drawn.
const SHOWN: [&str; 10] = [
    EMBEDDED_GENERATED,
    EMBEDDED_COURSE,
    EMBEDDED_MANY_USERS,
    CLUSTER_GENERATED,
    CLUSTER_COURSE,
    CLUSTER_MANY_USERS,
    CLUSTER_COURSE_10,
    SLOW_QUOTE,
    HALF_LOAD,
    EMBEDDED_HALF_LOAD,
];

fn throughput_over_time(report: &BenchReport, root: &Area) -> anyhow::Result<()> {
    let title = "Replay throughput over time (commands completed per second)";
    let runs: Vec<_> = SHOWN
        .iter()
        .filter_map(|n| report.replay(n))
        .filter(|r| !r.report.timeline.is_empty())
        .collect();
    if runs.is_empty() {
        return no_data(root, title);
    }
    let points: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| r.report.throughput_points()).collect();
    let x_max = runs
        .iter()
        .map(|r| (r.report.timeline.len() as u64 * r.report.timeline_step_s.max(1)) as f64)
        .fold(1.0, f64::max);
    let y_max = points
        .iter()
        .flatten()
        .map(|&(_, rate)| rate)
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the replay started")
        .y_desc("commands/s")
        .y_label_formatter(&|v| thousands(*v))
        .draw()
        .map_err(err)?;
    for (i, (run, points)) in runs.iter().zip(points).enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(err)?
            .label(run.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn latency_percentiles(report: &BenchReport, root: &Area) -> anyhow::Result<()> {
    let title = "Latency percentiles (ms, log scale)";
    let mut series: Vec<(String, [f64; 4], bool)> = SHOWN
        .iter()
        .filter_map(|n| report.replay(n))
        .map(|r| {
            let l = r.report.latency_ms;
            (r.name.clone(), [l.p50, l.p90, l.p99, l.max], false)
        })
        .collect();
    for w in report.cached_reads.iter().chain(&report.ceiling) {
        let l = w.latency_ms;
        series.push((
            format!("{} (wrk, {} conn.)", w.name, w.connections),
            [l.p50, l.p90, l.p99, l.max],
            true,
        ));
    }
    if series.is_empty() {
        return no_data(root, title);
    }
    let values = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().copied())
        .filter(|v| *v > 0.0);
    let lo = values.clone().fold(f64::INFINITY, f64::min).max(0.001) / 1.5;
    let hi = values.fold(0.0, f64::max).max(lo * 10.0) * 1.5;
    let labels = ["p50", "p90", "p99", "max"];
    // The x axis runs past "max" to leave the legend a place of its own, to
    // the right of the data.
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.2f64..5.2f64, (lo..hi).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(12)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.05 && (0.0..4.0).contains(&i) {
                labels[i as usize].to_owned()
            } else {
                String::new()
            }
        })
        .disable_x_mesh()
        .y_desc("ms")
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                thousands(*v)
            } else {
                format!("{v:.2}")
            }
        })
        .draw()
        .map_err(err)?;
    for (i, (name, v, wrk)) in series.iter().enumerate() {
        let c = color(i);
        // Replays drawn bold, wrk's HTTP runs thin.
        let width = if *wrk { 1 } else { 3 };
        let points: Vec<(f64, f64)> = v
            .iter()
            .enumerate()
            .filter(|(_, y)| **y > 0.0)
            .map(|(x, y)| (x as f64, *y))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(width)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width))
            });
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn instances_vs_throughput(report: &BenchReport, root: &Area) -> anyhow::Result<()> {
    let title = "Cluster replay throughput by number of instances";
    let points: Vec<(u32, f64)> = report
        .scaling()
        .into_iter()
        .map(|(n, r)| (n, r.report.throughput_per_s))
        .collect();
    if points.is_empty() {
        return no_data(root, title);
    }
    let y_max = points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.5f64..3.5f64, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(3)
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .x_desc("instances behind HAProxy (one PostgreSQL, one Redis)")
        .y_desc("commands/s")
        .y_label_formatter(&|v| thousands(*v))
        .draw()
        .map_err(err)?;
    let c = color(0);
    chart
        .draw_series(points.iter().map(|&(n, v)| {
            let x = f64::from(n);
            Rectangle::new([(x - 0.3, 0.0), (x + 0.3, v)], c.mix(0.8).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(points.iter().map(|&(n, v)| {
            Text::new(
                format!("{}/s", thousands(v)),
                (f64::from(n) - 0.12, v + y_max * 0.03),
                (FONT, 16),
            )
        }))
        .map_err(err)?;
    Ok(())
}

fn ratios_to_ceiling(report: &BenchReport, root: &Area) -> anyhow::Result<()> {
    let title = "Throughput as a share of the hello-world ceiling of the same run";
    let bars: Vec<(String, f64)> = report
        .figures
        .iter()
        // Commands and requests only: DUMPLOG's log rows per second are
        // in the page's table, but would dwarf everything on this scale.
        .filter(|f| {
            (f.unit == "commands/s" || f.unit == "requests/s") && !f.id.starts_with("ceiling.")
        })
        .filter_map(|f| {
            f.ratio.map(|r| {
                (
                    format!("{} / {}", f.label, f.ceiling.as_deref().unwrap_or("-")),
                    r,
                )
            })
        })
        .collect();
    if bars.is_empty() {
        return no_data(root, title);
    }
    let x_max = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.15;
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(0f64..x_max, 0f64..n)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("figure / ceiling: commands or requests per second over /healthz's requests per second (1 = the ceiling)")
        .draw()
        .map_err(err)?;
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = n - i as f64 - 1.0;
        let c = color(i);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.15), (*ratio, y + 0.85)],
                c.mix(0.6).filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{label}: {ratio:.3}"),
                (x_max * 0.01, y + 0.62),
                (FONT, 12),
            )))
            .map_err(err)?;
    }
    // The line a figure would reach at the ceiling itself.
    chart
        .draw_series(LineSeries::new(
            vec![(1.0, 0.0), (1.0, n)],
            BLACK.stroke_width(1),
        ))
        .map_err(err)?;
    Ok(())
}

fn dumplog_memory(report: &BenchReport, root: &Area) -> anyhow::Result<()> {
    let title = "Server memory (RSS, MB) while it streams DUMPLOG";
    let runs: Vec<_> = report
        .dumplogs
        .iter()
        .filter(|d| !d.samples.is_empty())
        .collect();
    if runs.is_empty() {
        return no_data(root, title);
    }
    let x_max = runs
        .iter()
        .flat_map(|d| d.samples.iter().map(|s| s.0))
        .fold(0.1, f64::max);
    let y_max = runs
        .iter()
        .flat_map(|d| d.samples.iter().map(|s| s.1).chain([d.rss_peak_mb]))
        .fold(1.0, f64::max)
        * 1.25;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the request")
        .y_desc("MB resident")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (i, d) in runs.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(d.samples.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(format!(
                "{} ({} rows, {:.0} MB of XML)",
                d.name,
                thousands(d.rows as f64),
                d.bytes as f64 / 1e6
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}
