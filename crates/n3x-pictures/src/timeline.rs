//! A scenario's timeline: each write as a point (time sent on x, latency on a log y),
//! failed and unacknowledged writes marked above the plot, fault windows shaded, leader
//! changes marked, the longest gap between acknowledgements annotated. And, for scenarios
//! with `profile` windows, the latency distribution per profile side by side.
//!
//! `Series` is what `report.json` carries per scenario (documented in README.md), so the
//! charts can be drawn again (`n3x lab report`) or by anyone else.

use serde::{Deserialize, Serialize};

use crate::svg::{Svg, colour, n};

/// A scenario's time series. Times are milliseconds from the scenario's start, except
/// `from_ms`/`to_ms` (the lab's clock, as in the rest of `report.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub from_ms: f64,
    pub to_ms: f64,
    pub agents: Vec<String>,
    pub writes: Vec<WritePoint>,
    pub windows: Vec<Window>,
    pub leaders: Vec<LeaderChange>,
    pub longest_gap: Option<Gap>,
    /// Acknowledged writes left out to keep the file small (evenly; failed ones are all kept).
    #[serde(default)]
    pub dropped: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WritePoint {
    /// Index into `agents`.
    pub agent: usize,
    /// When it was sent.
    pub at_ms: f64,
    /// Until it was acknowledged; `None` when it failed or its outcome is unknown.
    pub latency_ms: Option<f64>,
}

/// A stretch of the scenario: a fault (`kill`, `partition`, `quorum-loss`, `disaster`), an
/// action (`deploy`, `snapshot`, `restore`) or a phase (`profile`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub kind: String,
    pub label: String,
    pub from_ms: f64,
    pub to_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaderChange {
    pub at_ms: f64,
    /// `None`: no leader agreed on.
    pub leader: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub from_ms: f64,
    pub to_ms: f64,
}

impl Series {
    pub fn duration_ms(&self) -> f64 {
        (self.to_ms - self.from_ms).max(0.0)
    }

    /// The longest stretch of the scenario in which no write was acknowledged.
    pub fn compute_longest_gap(&self) -> Option<Gap> {
        let mut acks: Vec<f64> = self.writes.iter().filter_map(|w| Some(w.at_ms + w.latency_ms?)).collect();
        if acks.is_empty() {
            return None;
        }
        acks.sort_by(f64::total_cmp);
        let end = self.duration_ms();
        let mut best = Gap { from_ms: 0.0, to_ms: acks[0].min(end) };
        let mut prev = acks[0];
        for &t in &acks[1..] {
            if t - prev > best.to_ms - best.from_ms {
                best = Gap { from_ms: prev, to_ms: t };
            }
            prev = t;
        }
        if end - prev > best.to_ms - best.from_ms {
            best = Gap { from_ms: prev, to_ms: end };
        }
        Some(best)
    }

    /// Thins acknowledged writes evenly to at most `max` points, keeping every failed one.
    pub fn thin(&mut self, max: usize) {
        let ok = self.writes.iter().filter(|w| w.latency_ms.is_some()).count();
        if ok <= max || max == 0 {
            return;
        }
        let step = ok.div_ceil(max);
        let mut i = 0;
        let before = self.writes.len();
        self.writes.retain(|w| {
            if w.latency_ms.is_none() {
                return true;
            }
            i += 1;
            (i - 1) % step == 0
        });
        self.dropped += before - self.writes.len();
    }
}

const W: f64 = 960.0;
const H: f64 = 320.0;
const X0: f64 = 64.0;
const X1: f64 = 940.0;
const Y0: f64 = 56.0;
const Y1: f64 = 268.0;

fn window_colour(kind: &str) -> &'static str {
    match kind {
        "kill" | "quorum-loss" | "disaster" => "#D55E00",
        "partition" => "#CC79A7",
        "deploy" | "restore" => "#0072B2",
        "snapshot" => "#009E73",
        _ => "#E69F00",
    }
}

/// A nice step for `span` split in about `parts` pieces.
fn nice_step(span: f64, parts: f64) -> f64 {
    let raw = (span / parts).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag)
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 { format!("{} s", n(ms / 1000.0)) } else { format!("{} ms", n(ms)) }
}

/// The log scale of latencies: powers of ten around the data, at least 1 ms to 1 s.
fn log_range(lat: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = lat.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    let lo = if lo == f64::MAX { 1.0 } else { lo.max(0.01) };
    let hi = if hi == f64::MIN { 1000.0 } else { hi };
    (lo.log10().floor().min(0.0), hi.log10().ceil().max(3.0))
}

fn y_axis(s: &mut Svg, lo: f64, hi: f64) -> impl Fn(f64) -> f64 + use<> {
    let y = move |v: f64| Y1 - (v.max(0.01).log10() - lo) / (hi - lo) * (Y1 - Y0);
    let mut e = lo;
    while e <= hi {
        let v = 10f64.powf(e);
        let yy = y(v);
        s.line(X0, yy, X1, yy, r##"stroke="#e4e4e4""##);
        s.text(X0 - 6.0, yy + 4.0, 10.0, r##"text-anchor="end" fill="#555""##, &ms_label(v));
        e += 1.0;
    }
    s.text(
        14.0,
        (Y0 + Y1) / 2.0,
        11.0,
        &format!(r##"fill="#333" transform="rotate(-90 14 {})" text-anchor="middle""##, n((Y0 + Y1) / 2.0)),
        "write latency (log)",
    );
    y
}

/// The timeline of one scenario; `why_empty` is said when there is nothing to plot.
pub fn timeline(name: &str, s: &Series, why_empty: &str) -> String {
    let mut svg = Svg::new(W, H, &format!("{name}: writes over time"));
    svg.rect(0.0, 0.0, W, H, r##"fill="#ffffff""##);
    let dur = s.duration_ms().max(1.0);
    let x = |t: f64| X0 + (t.clamp(0.0, dur) / dur) * (X1 - X0);
    let (lo, hi) = log_range(s.writes.iter().filter_map(|w| w.latency_ms));
    let y = y_axis(&mut svg, lo, hi);
    // Time axis.
    let step = nice_step(dur, 10.0);
    let mut t = 0.0;
    while t <= dur + 1e-6 {
        svg.line(x(t), Y1, x(t), Y1 + 4.0, r##"stroke="#555""##);
        svg.text(x(t), Y1 + 16.0, 10.0, r##"text-anchor="middle" fill="#555""##, &ms_label(t));
        t += step;
    }
    svg.text(
        (X0 + X1) / 2.0,
        Y1 + 34.0,
        11.0,
        r##"text-anchor="middle" fill="#333""##,
        "time since the scenario started",
    );
    svg.line(X0, Y1, X1, Y1, r##"stroke="#555""##);
    svg.line(X0, Y0, X0, Y1, r##"stroke="#555""##);
    // Windows, shaded, labelled at the top.
    svg.open("g", r#"class="windows""#);
    for (i, w) in s.windows.iter().enumerate() {
        let c = window_colour(&w.kind);
        svg.rect(x(w.from_ms), Y0, x(w.to_ms) - x(w.from_ms), Y1 - Y0, &format!(r#"fill="{c}" fill-opacity="0.13""#));
        svg.text(x(w.from_ms) + 3.0, Y0 + 12.0 + (i % 3) as f64 * 12.0, 10.0, &format!(r#"fill="{c}""#), &w.label);
    }
    svg.close("g");
    if s.writes.is_empty() {
        svg.text(
            (X0 + X1) / 2.0,
            (Y0 + Y1) / 2.0,
            14.0,
            r##"text-anchor="middle" fill="#555""##,
            &format!("no writes to plot: {why_empty}"),
        );
    }
    // Writes.
    svg.open("g", r#"class="writes""#);
    for w in &s.writes {
        match w.latency_ms {
            Some(l) => svg.circle(x(w.at_ms), y(l), 1.8, &format!(r#"fill="{}""#, colour(w.agent))),
            None => {
                let (cx, cy) = (x(w.at_ms), Y0 - 10.0);
                svg.raw(&format!(
                    r##"<path d="M{} {}L{} {}M{} {}L{} {}" stroke="#D55E00" stroke-width="1.5"/>"##,
                    n(cx - 3.0),
                    n(cy - 3.0),
                    n(cx + 3.0),
                    n(cy + 3.0),
                    n(cx - 3.0),
                    n(cy + 3.0),
                    n(cx + 3.0),
                    n(cy - 3.0)
                ));
            }
        }
    }
    svg.close("g");
    // Leader changes.
    svg.open("g", r#"class="leaders""#);
    for (i, l) in s.leaders.iter().enumerate() {
        let lx = x(l.at_ms);
        svg.line(lx, Y0, lx, Y1, r##"stroke="#333" stroke-dasharray="4 3""##);
        let label = match &l.leader {
            Some(h) => format!("leader {h}"),
            None => "no leader".into(),
        };
        svg.text(lx + 3.0, Y1 - 6.0 - (i % 3) as f64 * 12.0, 10.0, r##"fill="#333""##, &label);
    }
    svg.close("g");
    // The longest gap.
    if let Some(g) = s.longest_gap {
        // Below the window labels (three rows of 12 px from the top).
        let gy = Y0 + 60.0;
        svg.line(x(g.from_ms), gy, x(g.to_ms), gy, r##"stroke="#111" stroke-width="2""##);
        svg.line(x(g.from_ms), gy - 5.0, x(g.from_ms), gy + 5.0, r##"stroke="#111" stroke-width="2""##);
        svg.line(x(g.to_ms), gy - 5.0, x(g.to_ms), gy + 5.0, r##"stroke="#111" stroke-width="2""##);
        let mid = (x(g.from_ms) + x(g.to_ms)) / 2.0;
        svg.text(
            mid.clamp(X0 + 70.0, X1 - 70.0),
            gy - 7.0,
            11.0,
            r##"text-anchor="middle" font-weight="bold" fill="#111""##,
            &format!("longest gap {} ms", n(g.to_ms - g.from_ms)),
        );
    }
    // Legend.
    let mut lx = X0;
    for (i, a) in s.agents.iter().enumerate() {
        svg.circle(lx + 4.0, 20.0, 4.0, &format!(r#"fill="{}""#, colour(i)));
        svg.text(lx + 12.0, 24.0, 11.0, r##"fill="#222""##, a);
        lx += 20.0 + a.len() as f64 * 7.0;
        if lx > X1 - 200.0 {
            break;
        }
    }
    svg.raw(&format!(
        r##"<path d="M{} 17L{} 23M{} 23L{} 17" stroke="#D55E00" stroke-width="1.5"/>"##,
        n(lx + 1.0),
        n(lx + 7.0),
        n(lx + 1.0),
        n(lx + 7.0)
    ));
    svg.text(lx + 12.0, 24.0, 11.0, r##"fill="#222""##, "failed or unacknowledged");
    if s.dropped > 0 {
        svg.text(
            X1,
            24.0,
            10.0,
            r##"text-anchor="end" fill="#777""##,
            &format!("{} acknowledged writes thinned out", s.dropped),
        );
    }
    svg.finish()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latency distributions of the `profile` windows, side by side: a box from p25 to p75,
/// whiskers to p5 and p95, the median marked, and the share acknowledged below.
pub fn distributions(s: &Series) -> Option<String> {
    let profiles: Vec<&Window> = s.windows.iter().filter(|w| w.kind == "profile").collect();
    if profiles.is_empty() {
        return None;
    }
    let per: Vec<(String, Vec<f64>, usize)> = profiles
        .iter()
        .map(|w| {
            let inside: Vec<&WritePoint> =
                s.writes.iter().filter(|p| p.at_ms >= w.from_ms && p.at_ms < w.to_ms).collect();
            let mut lat: Vec<f64> = inside.iter().filter_map(|p| p.latency_ms).collect();
            lat.sort_by(f64::total_cmp);
            (w.label.clone(), lat, inside.len())
        })
        .collect();
    let mut svg = Svg::new(W, H, "write latency per profile");
    svg.rect(0.0, 0.0, W, H, r##"fill="#ffffff""##);
    svg.text(
        X0,
        24.0,
        12.0,
        r##"font-weight="bold" fill="#222""##,
        "write latency per profile (box p25-p75, whiskers p5-p95, line p50)",
    );
    let (lo, hi) = log_range(per.iter().flat_map(|(_, l, _)| l.iter().copied()));
    let y = y_axis(&mut svg, lo, hi);
    let slot = (X1 - X0) / per.len() as f64;
    for (i, (label, lat, total)) in per.iter().enumerate() {
        let cx = X0 + slot * (i as f64 + 0.5);
        let c = colour(i);
        svg.open("g", &format!(r#"class="profile" data-profile="{}""#, crate::svg::esc(label)));
        if lat.is_empty() {
            svg.text(cx, (Y0 + Y1) / 2.0, 11.0, r##"text-anchor="middle" fill="#555""##, "no acknowledged writes");
        } else {
            let (p5, p25, p50, p75, p95) = (
                percentile(lat, 0.05),
                percentile(lat, 0.25),
                percentile(lat, 0.5),
                percentile(lat, 0.75),
                percentile(lat, 0.95),
            );
            let bw = (slot * 0.35).min(70.0);
            svg.line(cx, y(p5), cx, y(p95), &format!(r#"stroke="{c}" stroke-width="1.5""#));
            svg.rect(
                cx - bw / 2.0,
                y(p75),
                bw,
                y(p25) - y(p75),
                &format!(r#"fill="{c}" fill-opacity="0.3" stroke="{c}""#),
            );
            svg.line(cx - bw / 2.0, y(p50), cx + bw / 2.0, y(p50), &format!(r#"stroke="{c}" stroke-width="3""#));
            svg.text(cx + bw / 2.0 + 4.0, y(p50) + 4.0, 10.0, r##"fill="#222""##, &format!("p50 {} ms", n(p50)));
        }
        let ok = if *total == 0 { 0.0 } else { lat.len() as f64 * 100.0 / *total as f64 };
        svg.text(cx, Y1 + 16.0, 11.0, r##"text-anchor="middle" fill="#222""##, label);
        svg.text(
            cx,
            Y1 + 30.0,
            10.0,
            r##"text-anchor="middle" fill="#555""##,
            &format!("{} of {total} acknowledged ({}%)", lat.len(), n(ok)),
        );
        svg.close("g");
    }
    svg.line(X0, Y1, X1, Y1, r##"stroke="#555""##);
    Some(svg.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svg::outline;

    fn series() -> Series {
        let mut writes = Vec::new();
        for i in 0..40 {
            let t = i as f64 * 100.0;
            let failed = (1500.0..2500.0).contains(&t);
            writes.push(WritePoint { agent: i % 2, at_ms: t, latency_ms: (!failed).then_some(3.0 + (i % 5) as f64) });
        }
        let mut s = Series {
            from_ms: 10_000.0,
            to_ms: 14_000.0,
            agents: vec!["jetson-1".into(), "jetson-2".into()],
            writes,
            windows: vec![Window {
                kind: "kill".into(),
                label: "n100-1 killed".into(),
                from_ms: 1500.0,
                to_ms: 2500.0,
            }],
            leaders: vec![LeaderChange { at_ms: 2300.0, leader: Some("n100-2".into()) }],
            longest_gap: None,
            dropped: 0,
        };
        s.longest_gap = s.compute_longest_gap();
        s
    }

    #[test]
    fn the_longest_gap_runs_between_acknowledgements() {
        let s = series();
        let g = s.longest_gap.unwrap_or(Gap { from_ms: 0.0, to_ms: 0.0 });
        // The last ack before the kill: sent 1400 + 3 + (14 % 5) = 1407; the first after: 2500 + 3.
        assert_eq!((g.from_ms, g.to_ms), (1407.0, 2503.0));
        assert_eq!(Series::default().compute_longest_gap(), None);
    }

    #[test]
    fn a_timeline_has_its_points_windows_leaders_and_gap() {
        let svg = timeline("server-loss", &series(), "");
        let o = outline(&svg);
        assert_eq!(o.iter().filter(|e| *e == "circle").count(), 30 + 2, "30 acked writes and 2 legend dots");
        assert_eq!(o.iter().filter(|e| *e == "path").count(), 10 + 1, "10 failed writes and the legend's cross");
        for label in [
            "text: n100-1 killed",
            "text: leader n100-2",
            "text: longest gap 1096 ms",
            "text: jetson-1",
            "text: failed or unacknowledged",
        ] {
            assert!(o.iter().any(|e| e == label), "{label} in {o:?}");
        }
        insta::assert_snapshot!(o.join("\n"));
    }

    #[test]
    fn an_empty_timeline_says_why() {
        let svg = timeline(
            "formation",
            &Series { to_ms: 10.0, ..Default::default() },
            "the scenario failed before the agents wrote",
        );
        assert!(
            outline(&svg).iter().any(|e| e == "text: no writes to plot: the scenario failed before the agents wrote")
        );
    }

    #[test]
    fn thinning_keeps_every_failed_write() {
        let mut s = series();
        s.thin(10);
        assert_eq!(s.writes.iter().filter(|w| w.latency_ms.is_none()).count(), 10);
        assert!(s.writes.iter().filter(|w| w.latency_ms.is_some()).count() <= 10);
        assert_eq!(s.dropped, 40 - s.writes.len());
    }

    #[test]
    fn profiles_get_one_box_each() {
        let mut s = series();
        s.windows = vec![
            Window { kind: "profile".into(), label: "default".into(), from_ms: 0.0, to_ms: 2000.0 },
            Window { kind: "profile".into(), label: "lossy".into(), from_ms: 2000.0, to_ms: 4000.0 },
        ];
        let svg = distributions(&s).unwrap_or_default();
        let o = outline(&svg);
        assert_eq!(o.iter().filter(|e| e.starts_with("text: p50")).count(), 2);
        assert!(o.iter().any(|e| e == "text: 15 of 20 acknowledged (75%)"), "{o:?}");
        assert!(distributions(&Series::default()).is_none());
    }
}
