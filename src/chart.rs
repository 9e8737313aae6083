//! The comparison as a picture: `target/compare/chart.svg`.
//!
//! Three panels: requests/s and p99 latency against the number of waiting
//! clients (the sweep, log scales, so 10 and 5,000 clients both show), and
//! jobs/s on CPU work per set-up. A crossover is easier to see than to read
//! out of sixteen table rows.
//!
//! The `latency` scenario gets a picture of its own,
//! `target/compare/latency.svg`: p99 (solid) and p50 (thin) against the
//! offered rate, one panel for waiting work and one for CPU work, where
//! each model's hockey stick turns up at its capacity.

use std::io;
use std::path::PathBuf;

use plotters::prelude::*;

use crate::latency::Work;

/// One set-up's sweep.
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

/// One run of the sweep.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub clients: f64,
    pub requests_per_sec: f64,
    pub p99_ms: Option<f64>,
}

pub struct ChartData {
    pub sweep: Vec<Series>,
    /// (set-up, jobs/s) on CPU work.
    pub cpu: Vec<(String, f64)>,
    pub latency: Vec<LatencySeries>,
}

/// One set-up's latency at each offered rate.
pub struct LatencySeries {
    pub work: Work,
    pub name: String,
    pub points: Vec<LatencyPoint>,
}

#[derive(Debug, Clone, Copy)]
pub struct LatencyPoint {
    pub offered: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Where the chart goes: `target/compare/` beside the running binary
/// (`target/release/...`), or under `./target` if that cannot be found.
fn chart_path(name: &str) -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("compare").join(name)
}

/// Draws the chart and returns its path.
pub fn write(data: &ChartData) -> io::Result<PathBuf> {
    let path = chart_path("chart.svg");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    draw(&path, data).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(path)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(path: &PathBuf, data: &ChartData) -> DrawResult {
    let root = SVGBackend::new(path, (1500, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 3));
    let max_clients = data
        .sweep
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.clients))
        .fold(10.0, f64::max);
    sweep_panel(&panels[0], data, max_clients, "req/s, DB {i} 10", |p| {
        Some(p.requests_per_sec.max(1.0))
    })?;
    sweep_panel(&panels[1], data, max_clients, "p99 ms, DB {i} 10", |p| {
        p.p99_ms.map(|ms| ms.max(0.01))
    })?;
    cpu_panel(&panels[2], &data.cpu)?;
    root.present()?;
    Ok(())
}

type Panel<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type LogLog<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<LogCoord<f64>, LogCoord<f64>>>;

/// The series' names in a box at the upper left.
fn legend<'a, 'b: 'a>(chart: &mut LogLog<'a, 'b>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// A chart with log scales on both axes and its mesh drawn: x over `x`,
/// y spanning `values` (and 1) with room above and below.
fn log_log<'a, 'b>(
    area: &'a Panel<'b>,
    title: &str,
    x: (f64, f64),
    values: &[f64],
    x_desc: &str,
) -> Result<LogLog<'a, 'b>, Box<dyn std::error::Error>> {
    let low = values.iter().copied().fold(f64::MAX, f64::min).min(1.0);
    let high = values.iter().copied().fold(1.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x.0..x.1).log_scale(), (low * 0.5..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| match *y {
            y if y >= 10.0 => format!("{y:.0}"),
            y => format!("{y:.1}"),
        })
        .draw()?;
    Ok(chart)
}

fn sweep_panel(
    area: &Panel,
    data: &ChartData,
    max_clients: f64,
    title: &str,
    value: fn(&Point) -> Option<f64>,
) -> DrawResult {
    let values: Vec<f64> = data
        .sweep
        .iter()
        .flat_map(|s| s.points.iter().filter_map(value))
        .collect();
    let mut chart = log_log(area, title, (5.0, max_clients * 1.5), &values, "clients")?;
    for (series, color) in data.sweep.iter().zip(COLORS.iter().cycle()) {
        let points: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.clients, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(series.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    legend(&mut chart)
}

fn cpu_panel(area: &Panel, cpu: &[(String, f64)]) -> DrawResult {
    let high = cpu.iter().map(|c| c.1).fold(1.0, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(area)
        .caption("jobs/s, IMAGE blur 512 (cpu)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(20)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..cpu.len().max(1) as f64, 0.0..high)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (index, ((label, jobs), color)) in cpu.iter().zip(COLORS.iter().cycle()).enumerate() {
        let x = index as f64;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x + 0.15, 0.0), (x + 0.85, *jobs)],
            color.filled(),
        )))?;
        // The set-up's name runs up the bar from its foot (rotated text
        // grows upwards from its anchor), so long names fit.
        let style = ("sans-serif", 13)
            .into_font()
            .transform(FontTransform::Rotate270)
            .color(&BLACK);
        chart.draw_series(std::iter::once(Text::new(
            format!("{label}: {jobs:.0}"),
            (x + 0.42, high * 0.03),
            style,
        )))?;
    }
    Ok(())
}

/// Draws the latency chart, if the run had a latency scenario, and returns
/// its path.
pub fn write_latency(data: &ChartData) -> io::Result<Option<PathBuf>> {
    if data.latency.is_empty() {
        return Ok(None);
    }
    let path = chart_path("latency.svg");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    draw_latency(&path, data).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Some(path))
}

fn draw_latency(path: &PathBuf, data: &ChartData) -> DrawResult {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    let titles = [
        (
            Work::Waiting,
            "DB {i} 10: p99 ms (thick), p50 (thin), by offered req/s",
        ),
        (
            Work::Cpu,
            "IMAGE blur 512: p99 ms (thick), p50 (thin), by offered req/s",
        ),
    ];
    for (panel, (work, title)) in panels.iter().zip(titles) {
        let series: Vec<&LatencySeries> = data.latency.iter().filter(|s| s.work == work).collect();
        latency_panel(panel, &series, title)?;
    }
    root.present()?;
    Ok(())
}

fn latency_panel(area: &Panel, series: &[&LatencySeries], title: &str) -> DrawResult {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (min_x, max_x) = points().fold((f64::MAX, 1.0f64), |(lo, hi), p| {
        (lo.min(p.offered), hi.max(p.offered))
    });
    let values: Vec<f64> = points()
        .flat_map(|p| [p.p50_ms, p.p99_ms])
        .flatten()
        .map(|ms| ms.max(0.01))
        .collect();
    let x = (min_x.min(max_x) * 0.7, max_x * 1.4);
    let mut chart = log_log(area, title, x, &values, "offered req/s")?;
    for (series, color) in series.iter().zip(COLORS.iter().cycle()) {
        let line = |pick: fn(&LatencyPoint) -> Option<f64>| -> Vec<(f64, f64)> {
            series
                .points
                .iter()
                .filter_map(|p| pick(p).map(|ms| (p.offered, ms.max(0.01))))
                .collect()
        };
        let p99 = line(|p| p.p99_ms);
        chart
            .draw_series(LineSeries::new(p99.clone(), color.stroke_width(2)))?
            .label(format!("{} p99", series.name))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(p99.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        chart.draw_series(LineSeries::new(line(|p| p.p50_ms), color.stroke_width(1)))?;
    }
    legend(&mut chart)
}
