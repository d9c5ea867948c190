//! Goodput over time as an SVG, written by hand: one line per stack, the offered load dashed,
//! the fault phase shaded.

use super::figures::Figures;
use super::run::ScenarioResult;
use super::script::OFFERED;
use super::stacks::Kind;
use std::fmt::Write;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 290.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// One colour per stack, in [`Kind::ALL`](super::stacks::Kind::ALL)'s order.
const COLOURS: [&str; 8] = [
    "#000000", "#e69f00", "#9467bd", "#0072b2", "#d62728", "#2ca02c", "#cc79a7", "#8c564b",
];

/// The SVG of `result`: successful requests per second (by the second they completed in), from
/// the start to the end of the load.
pub fn goodput_svg(result: &ScenarioResult) -> String {
    let scenario = &result.scenario;
    let seconds = scenario.length().as_secs_f64().ceil() as usize;
    let series: Vec<Vec<f64>> = result
        .stacks
        .iter()
        .map(|r| Figures::new(r, scenario).goodput_per_second(seconds))
        .collect();
    let peak = series
        .iter()
        .flatten()
        .copied()
        .fold(OFFERED * 1.2, f64::max);
    let y_max = (peak / 50.0).ceil() * 50.0;
    let x_max = seconds as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |s: f64| LEFT + s / x_max * plot_w;
    let y = |v: f64| TOP + plot_h - v / y_max * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        escape(scenario.title)
    );
    let (from, to) = scenario.fault_window();
    let _ = writeln!(
        svg,
        r##"<rect x="{:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="#f3d6d6"/>"##,
        x(from.as_secs_f64()),
        x(to.as_secs_f64()) - x(from.as_secs_f64())
    );
    // Axes, grid and ticks.
    let mut v = 0.0;
    while v <= y_max {
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y(v) + 4.0,
            y = y(v),
        );
        v += 50.0;
    }
    let step = if x_max > 40.0 { 10 } else { 5 };
    for s in (0..=seconds).step_by(step) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{s}</text>"#,
            x(s as f64),
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444444"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (s); shaded: the fault phase</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">successful requests / s</text>"#,
        TOP + plot_h / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{o:.1}" y2="{o:.1}" stroke="#888888" stroke-dasharray="6 4"/>"##,
        x(scenario.length().as_secs_f64()),
        o = y(OFFERED),
    );
    // One step line per stack (each second's value across its second), the scraper.toml
    // profiles dashed; the default breakerbox stack drawn last, on top.
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by_key(|&i| result.stacks[i].kind == Kind::BreakerboxDefault);
    for i in order {
        let (values, r) = (&series[i], &result.stacks[i]);
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .flat_map(|(s, &v)| {
                let s = s as f64;
                [
                    format!("{:.1},{:.1}", x(s), y(v)),
                    format!("{:.1},{:.1}", x(s + 1.0), y(v)),
                ]
            })
            .collect();
        let style = match r.kind {
            Kind::BreakerboxDefault => r#"stroke-width="2.5""#,
            Kind::Scraper(_) => r#"stroke-width="1.5" stroke-dasharray="5 3""#,
            _ => r#"stroke-width="1.5""#,
        };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-opacity="0.85" {style} points="{}"/>"#,
            points.join(" ")
        );
        let ly = TOP + 10.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 14.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" x2="{:.1}" y1="{ly}" y2="{ly}" stroke="{colour}" {style}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            escape(r.kind.name())
        );
    }
    let ly = TOP + 10.0 + result.stacks.len() as f64 * 20.0;
    let lx = LEFT + plot_w + 14.0;
    let _ = writeln!(
        svg,
        r##"<line x1="{lx}" x2="{:.1}" y1="{ly}" y2="{ly}" stroke="#888888" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}">offered load</text>"##,
        lx + 22.0,
        lx + 28.0,
        ly + 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
