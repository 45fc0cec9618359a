//! A few helpers for writing SVG by hand: escaping, numbers, and a palette that stays
//! apart in colour-blind vision (the Okabe-Ito colours).

use std::fmt::Write as _;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A colour for the n-th series.
pub fn colour(n: usize) -> &'static str {
    const P: [&str; 8] = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
    P[n % P.len()]
}

/// A number for an attribute: at most one decimal.
pub fn n(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r.fract() == 0.0 { format!("{}", r as i64) } else { format!("{r:.1}") }
}

/// An SVG document being written.
pub struct Svg {
    pub out: String,
}

impl Svg {
    pub fn new(width: f64, height: f64, title: &str) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Verdana, sans-serif" role="img"><title>{t}</title>"#,
            w = n(width),
            h = n(height),
            t = esc(title)
        );
        Svg { out }
    }

    pub fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    pub fn text(&mut self, x: f64, y: f64, size: f64, attrs: &str, text: &str) {
        let _ =
            write!(self.out, r#"<text x="{}" y="{}" font-size="{}" {attrs}>{}</text>"#, n(x), n(y), n(size), esc(text));
    }

    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, attrs: &str) {
        let _ = write!(self.out, r#"<line x1="{}" y1="{}" x2="{}" y2="{}" {attrs}/>"#, n(x1), n(y1), n(x2), n(y2));
    }

    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, attrs: &str) {
        let _ = write!(
            self.out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" {attrs}/>"#,
            n(x),
            n(y),
            n(w.max(0.0)),
            n(h.max(0.0))
        );
    }

    pub fn circle(&mut self, x: f64, y: f64, r: f64, attrs: &str) {
        let _ = write!(self.out, r#"<circle cx="{}" cy="{}" r="{}" {attrs}/>"#, n(x), n(y), n(r));
    }

    pub fn open(&mut self, tag: &str, attrs: &str) {
        let _ = write!(self.out, "<{tag} {attrs}>");
    }

    pub fn close(&mut self, tag: &str) {
        let _ = write!(self.out, "</{tag}>");
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }
}

/// The element names and text of an SVG, in order: what its structure snapshot pins.
pub fn outline(svg: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        rest = &rest[end.min(rest.len())..];
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let after = rest.strip_prefix('>').unwrap_or(rest);
        let text: String = after.chars().take_while(|c| *c != '<').collect();
        let text = text.trim();
        if matches!(name.as_str(), "text" | "title" | "tspan") && !text.is_empty() {
            out.push(format!("{name}: {text}"));
        } else if !matches!(name.as_str(), "text" | "title" | "tspan") {
            out.push(name);
        }
    }
    out
}
