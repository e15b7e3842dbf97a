//! SVG charts: panels of horizontal bars (one value per server or kind) and panels of lines
//! (one series per server over a few categories: latency percentiles, overload steps).
//!
//! Text is written as SVG `<text>` for the viewer to render, so no font is loaded here;
//! plotters only estimates text widths for its layout.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::BoxError;

const FONT: &str = "sans-serif";
const WIDTH: u32 = 960;

/// One panel of horizontal bars.
#[derive(Debug)]
pub struct Bars {
    pub title: String,
    /// The value axis' description, e.g. "req/s".
    pub unit: String,
    pub bars: Vec<Bar>,
}

#[derive(Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Written after the value at the end of the bar, e.g. "0.85× tonic".
    pub note: Option<String>,
    pub color: RGBColor,
}

/// One panel of lines over categories.
#[derive(Debug)]
pub struct Lines {
    pub title: String,
    pub categories: Vec<String>,
    pub unit: String,
    pub log_scale: bool,
    pub series: Vec<Series>,
    /// A horizontal reference line and its label, e.g. a queue timeout.
    pub reference: Option<(f64, String)>,
    /// Where the legend goes: where the lines are not.
    pub legend: SeriesLabelPosition,
}

#[derive(Debug)]
pub struct Series {
    pub name: String,
    /// One value per category; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
    pub color: RGBColor,
}

/// A fixed colour for the servers the suite compares, so every chart agrees; others by position.
pub fn color(label: &str, index: usize) -> RGBColor {
    const OTHERS: [RGBColor; 6] = [
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    match label {
        l if l.starts_with("herald") => RGBColor(214, 39, 40),
        l if l.starts_with("tonic") => RGBColor(31, 119, 180),
        l if l.starts_with("cpp") => RGBColor(44, 160, 44),
        _ => OTHERS[index % OTHERS.len()],
    }
}

/// Writes `panels` of bars, one under the other, to `path`.
///
/// # Errors
///
/// When the SVG cannot be drawn or written.
pub fn bars(path: &Path, title: &str, panels: &[Bars]) -> Result<(), BoxError> {
    let heights: Vec<u32> = panels
        .iter()
        .map(|p| 70 + 34 * p.bars.len() as u32)
        .collect();
    let root = SVGBackend::new(path, (WIDTH, 50 + heights.iter().sum::<u32>())).into_drawing_area();
    root.fill(&WHITE)?;
    let mut area = root.titled(title, (FONT, 22))?;
    for (panel, height) in panels.iter().zip(heights) {
        let (this, rest) = area.split_vertically(height);
        bar_panel(&this, panel)?;
        area = rest;
    }
    root.present()?;
    Ok(())
}

fn bar_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Bars) -> Result<(), BoxError> {
    let n = panel.bars.len() as i32;
    let max = panel.bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let label_width = panel.bars.iter().map(|b| b.label.len()).max().unwrap_or(4) as u32 * 7 + 16;
    // Room to the right of the longest bar for its value and note.
    let x_end = if max > 0.0 { max * 1.6 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 16))
        .margin_left(10)
        .margin_right(20)
        .x_label_area_size(34)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..x_end, segments(n))?;
    let labels: Vec<&str> = panel.bars.iter().map(|b| b.label.as_str()).collect();
    // The first bar on top: bar i sits in segment n - 1 - i.
    let label_at = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(row) | SegmentValue::Exact(row) if (0..n).contains(row) => {
            labels[(n - 1 - row) as usize].to_owned()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .y_labels(panel.bars.len())
        .y_label_formatter(&label_at)
        .y_label_style((FONT, 13))
        .x_desc(panel.unit.as_str())
        .x_label_formatter(&|x| short(*x))
        .draw()?;
    let row = |i: usize| n - 1 - i as i32;
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, bar)| {
        let mut rect = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(row(i))),
                (bar.value, SegmentValue::Exact(row(i) + 1)),
            ],
            bar.color.filled(),
        );
        rect.set_margin(5, 5, 0, 0);
        rect
    }))?;
    let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    chart.draw_series(panel.bars.iter().enumerate().map(|(i, bar)| {
        let text = match &bar.note {
            Some(note) => format!("{} ({note})", number(bar.value)),
            None => number(bar.value),
        };
        EmptyElement::at((bar.value, SegmentValue::CenterOf(row(i))))
            + Text::new(text, (6, 0), style.clone())
    }))?;
    Ok(())
}

/// Writes `panels` of lines to `path`, `columns` side by side.
///
/// # Errors
///
/// When the SVG cannot be drawn or written.
pub fn lines(path: &Path, title: &str, panels: &[Lines], columns: usize) -> Result<(), BoxError> {
    let rows = panels.len().div_ceil(columns);
    let root = SVGBackend::new(path, (WIDTH, 50 + 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let area = root.titled(title, (FONT, 22))?;
    for (panel, cell) in panels.iter().zip(area.split_evenly((rows, columns))) {
        line_panel(&cell, panel)?;
    }
    root.present()?;
    Ok(())
}

fn line_panel(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Lines) -> Result<(), BoxError> {
    let values = panel
        .series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .copied()
        .chain(panel.reference.iter().map(|(v, _)| *v))
        .filter(|v| *v > 0.0 || !panel.log_scale);
    let (lo, hi) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return Ok(()); // nothing measured
    }
    let n = panel.categories.len() as i32;
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FONT, 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60);
    let categories = &panel.categories;
    let category = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if (0..n).contains(i) => categories[*i as usize].clone(),
        _ => String::new(),
    };
    if panel.log_scale {
        let mut chart = builder.build_cartesian_2d(segments(n), log_axis(lo / 1.5, hi * 3.0))?;
        chart
            .configure_mesh()
            .x_labels(categories.len())
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&category)
            .y_desc(panel.unit.as_str())
            .y_label_formatter(&|y| short(*y))
            .draw()?;
        draw_lines(&mut chart, panel)?;
    } else {
        let mut chart = builder.build_cartesian_2d(segments(n), 0.0..(hi * 1.15).max(1e-9))?;
        chart
            .configure_mesh()
            .x_labels(categories.len())
            .light_line_style(TRANSPARENT)
            .x_label_formatter(&category)
            .y_desc(panel.unit.as_str())
            .y_label_formatter(&|y| short(*y))
            .draw()?;
        draw_lines(&mut chart, panel)?;
    }
    Ok(())
}

fn draw_lines<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<SegmentedCoord<RangedCoordi32>, Y>>,
    panel: &Lines,
) -> Result<(), BoxError>
where
    Y: Ranged<ValueType = f64>,
{
    let n = panel.categories.len() as i32;
    if let Some((value, label)) = &panel.reference {
        let gray = RGBColor(120, 120, 120);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![
                (SegmentValue::Exact(0), *value),
                (SegmentValue::Exact(n), *value),
            ],
            gray.stroke_width(1),
        )))?;
        let style = TextStyle::from((FONT, 12).into_font())
            .color(&gray)
            .pos(Pos::new(HPos::Right, VPos::Bottom));
        chart.draw_series(std::iter::once(
            EmptyElement::at((SegmentValue::Exact(n), *value))
                + Text::new(label.clone(), (-4, -2), style),
        ))?;
    }
    for series in &panel.series {
        let points: Vec<(SegmentValue<i32>, f64)> = series
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((SegmentValue::CenterOf(i as i32), (*v)?)))
            .collect();
        let color = series.color;
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(series.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
            });
        chart.draw_series(
            points
                .into_iter()
                .map(|point| Circle::new(point, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(panel.legend.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// `n` categories (n ≥ 1) as segments: plotters' integer ranges include their end.
fn segments(n: i32) -> SegmentedCoord<RangedCoordi32> {
    (0..n - 1).into_segmented()
}

/// A log axis from `lo` to `hi` labelled at 1, 2 and 5 of each decade (plotters' own choice of
/// labels leaves some ranges with one label and crowds others).
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let decades = (hi / lo).log10();
    let steps: &[f64] = if decades > 4.0 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        ticks.extend(
            steps
                .iter()
                .map(|m| decade * m)
                .filter(|t| (lo..=hi).contains(t)),
        );
        decade *= 10.0;
    }
    LogCoord::from((lo..hi).log_scale()).with_key_points(ticks)
}

/// An axis number: 1.2k, 3.4M, 0.05, 2.
fn short(x: f64) -> String {
    let a = x.abs();
    let (value, digits, suffix) = match a {
        _ if a >= 1e6 => (x / 1e6, 1, "M"),
        _ if a >= 1e4 => (x / 1e3, 0, "k"),
        _ if a >= 1e3 => (x / 1e3, 1, "k"),
        _ if a >= 10.0 => (x, 0, ""),
        _ if a >= 1.0 => (x, 1, ""),
        _ => (x, 2, ""),
    };
    let text = format!("{value:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{suffix}")
}

/// A value at the end of a bar: whole numbers with thousands separators, small ones with
/// decimals.
fn number(x: f64) -> String {
    if x >= 100.0 {
        crate::markdown::thousands(x.round() as u64)
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers_drop_trailing_zeros() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(2.0), "2");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(1000.0), "1k");
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(150_000.0), "150k");
        assert_eq!(short(2_500_000.0), "2.5M");
    }

    #[test]
    fn log_axis_labels_one_two_five() {
        let axis = log_axis(0.04, 30.0);
        let ticks = axis.key_points(plotters::coord::ranged1d::BoldPoints(100));
        assert_eq!(ticks.first(), Some(&0.05));
        assert!(ticks.contains(&0.2) && ticks.contains(&20.0));
    }
}
