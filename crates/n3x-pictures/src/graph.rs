//! `n3x graph`: the topology as SVG (for people), DOT (graphviz) and mermaid (wikis,
//! GitHub).
//!
//! The SVG is laid out by hand: hosts in rows (servers first), each box listing its NICs,
//! bonds and VLAN devices; under each row one line per network (its "bus"), joined down
//! the left margin by a trunk of the network's colour; a host drops a line to each network
//! it is on, its address written on the bus. Nothing crosses a box or another label, and
//! the text is at least 10 px, so the reference cluster reads without zooming and 50 hosts
//! (six to a row) stay legible.

use std::fmt::Write as _;

use crate::svg::{Svg, colour, esc};
use crate::topology::{Host, Topology};

/// About how wide a character of the 11 px text is (DejaVu Sans averages 0.6 em).
const CHAR_W: f64 = 6.6;
const GAP: f64 = 28.0;
const LANE: f64 = 16.0;
const LINE: f64 = 15.0;
const MAX_COLS: usize = 6;

fn role_colour(role: &str) -> &'static str {
    // Dark, and apart from the networks' palette: a box's border never reads as a network.
    if role == "server" { "#1b3a5c" } else { "#2d5e3a" }
}

fn lines_of(h: &Host) -> Vec<(f64, String)> {
    let mut v = Vec::new();
    for i in &h.interfaces {
        v.push((0.0, Topology::interface_label(i)));
        for a in &i.attachments {
            if a.device != i.name || i.attachments.len() > 1 {
                v.push((12.0, format!("{} → {}", a.device, a.network)));
            } else {
                v.push((12.0, format!("→ {}", a.network)));
            }
        }
    }
    v
}

/// The topology as an SVG document.
pub fn svg(t: &Topology) -> String {
    let nets = t.networks.len();
    // Every box as wide as the longest line any host needs (within bounds).
    let longest = t
        .hosts
        .iter()
        .flat_map(|h| {
            lines_of(h)
                .into_iter()
                .map(|(i, l)| i / CHAR_W + l.chars().count() as f64)
                .chain([Topology::host_label(h).chars().count() as f64])
        })
        .fold(0.0, f64::max);
    let box_w = (longest * CHAR_W + 24.0).clamp(200.0, 340.0);
    let cols = t.hosts.len().clamp(1, MAX_COLS);
    let left = 24.0 + nets as f64 * 12.0;
    let width = left + cols as f64 * (box_w + GAP);
    let legend_top = 48.0;
    let grid_top = legend_top + nets as f64 * 18.0 + 16.0;
    let rows: Vec<&[Host]> = t.hosts.chunks(cols).collect();
    let box_h: Vec<f64> =
        rows.iter().map(|r| r.iter().map(|h| 44.0 + lines_of(h).len() as f64 * LINE).fold(60.0, f64::max)).collect();
    let row_h = |i: usize| box_h[i] + 18.0 + nets as f64 * LANE + 22.0;
    let height = grid_top + (0..rows.len()).map(row_h).sum::<f64>() + 8.0;
    let title = format!(
        "cluster {}: {} servers, {} agents, {} networks",
        t.cluster,
        t.servers(),
        t.hosts.len() - t.servers(),
        nets
    );
    let mut s = Svg::new(width, height.max(grid_top + 40.0), &title);
    s.rect(0.0, 0.0, width, height.max(grid_top + 40.0), r##"fill="#ffffff""##);
    s.text(16.0, 26.0, 17.0, r##"font-weight="bold" fill="#222""##, &title);
    for (k, n) in t.networks.iter().enumerate() {
        let y = legend_top + k as f64 * 18.0;
        s.line(16.0, y - 4.0, 46.0, y - 4.0, &format!(r#"stroke="{}" stroke-width="4""#, colour(k)));
        s.text(54.0, y, 12.0, r##"fill="#222""##, &Topology::network_label(n));
    }
    if t.hosts.is_empty() {
        s.text(16.0, grid_top + 20.0, 13.0, r##"fill="#555""##, "no hosts in the inventory");
        return s.finish();
    }
    // Lanes: (row, network) -> y.
    let mut row_top = Vec::new();
    let mut y = grid_top;
    for i in 0..rows.len() {
        row_top.push(y);
        y += row_h(i);
    }
    let lane_y = |row: usize, k: usize| row_top[row] + box_h[row] + 18.0 + k as f64 * LANE;
    // Trunks and buses first, so boxes and labels sit on top.
    s.open("g", r#"class="networks""#);
    for (k, n) in t.networks.iter().enumerate() {
        let c = colour(k);
        let used: Vec<usize> = (0..rows.len())
            .filter(|&r| {
                rows[r].iter().any(|h| h.interfaces.iter().any(|i| i.attachments.iter().any(|a| a.network == n.name)))
            })
            .collect();
        let (Some(&first), Some(&last)) = (used.first(), used.last()) else { continue };
        let tx = 16.0 + k as f64 * 12.0;
        s.line(tx, lane_y(first, k), tx, lane_y(last, k), &format!(r#"stroke="{c}" stroke-width="3""#));
        for &r in &used {
            let end = left + rows[r].len() as f64 * (box_w + GAP) - GAP;
            s.line(tx, lane_y(r, k), end, lane_y(r, k), &format!(r#"stroke="{c}" stroke-width="3""#));
        }
    }
    s.close("g");
    for (r, row) in rows.iter().enumerate() {
        for (c, h) in row.iter().enumerate() {
            let x = left + c as f64 * (box_w + GAP);
            let top = row_top[r];
            s.open("g", &format!(r#"class="host" data-host="{}""#, esc(&h.name)));
            // Drops to each network this host is on, with the address on the bus.
            for (k, n) in t.networks.iter().enumerate() {
                let Some(a) = h.interfaces.iter().flat_map(|i| &i.attachments).find(|a| a.network == n.name) else {
                    continue;
                };
                let dx = x + 14.0 + k as f64 * 14.0;
                let ly = lane_y(r, k);
                let col = colour(k);
                s.line(dx, top + box_h[r], dx, ly, &format!(r#"stroke="{col}" stroke-width="2""#));
                s.circle(dx, ly, 3.5, &format!(r#"fill="{col}""#));
                let lx = x + 18.0 + nets as f64 * 14.0;
                s.text(lx, ly - 3.0, 10.5, &format!(r#"fill="{col}""#), &a.address);
            }
            s.rect(
                x,
                top,
                box_w,
                box_h[r],
                &format!(r##"rx="6" fill="#ffffff" stroke="{}" stroke-width="2""##, role_colour(&h.role)),
            );
            s.text(x + 10.0, top + 20.0, 14.0, r##"font-weight="bold" fill="#111""##, &h.name);
            s.text(x + 10.0, top + 36.0, 10.5, r##"fill="#555""##, &Topology::host_label(h));
            for (i, (indent, line)) in lines_of(h).iter().enumerate() {
                s.text(x + 10.0 + indent, top + 54.0 + i as f64 * LINE, 11.0, r##"fill="#222""##, line);
            }
            s.close("g");
        }
    }
    s.finish()
}

/// A host's node text for DOT and mermaid: name, role line, one line per interface.
fn box_label(h: &Host) -> String {
    let mut label = format!("{}\n{}", h.name, Topology::host_label(h));
    for i in &h.interfaces {
        label.push('\n');
        label.push_str(&Topology::interface_label(i));
    }
    label
}

/// The hosts of each role that has any: (role, plural, hosts).
fn by_role(t: &Topology) -> Vec<(&'static str, &'static str, Vec<&Host>)> {
    [("server", "servers"), ("agent", "agents")]
        .into_iter()
        .map(|(r, p)| (r, p, t.hosts.iter().filter(|h| h.role == r).collect::<Vec<_>>()))
        .filter(|(_, _, hs)| !hs.is_empty())
        .collect()
}

fn dot_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

/// The topology in graphviz's DOT: hosts (boxes, grouped by role) joined to networks
/// (ellipses) by edges labelled with the device and address.
pub fn dot(t: &Topology) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "graph {} {{", dot_str(&t.cluster));
    let _ = writeln!(
        o,
        "  graph [rankdir=LR, fontname=\"DejaVu Sans\", labelloc=t, label={}];",
        dot_str(&format!("cluster {}", t.cluster))
    );
    o.push_str("  node [fontname=\"DejaVu Sans\", fontsize=10];\n  edge [fontname=\"DejaVu Sans\", fontsize=9];\n");
    for (role, plural, hosts) in by_role(t) {
        let _ = writeln!(o, "  subgraph cluster_{plural} {{\n    label={};", dot_str(plural));
        for h in hosts {
            let label = box_label(h);
            let _ = writeln!(
                o,
                "    {} [shape=box, style=rounded, color={}, label={}];",
                dot_str(&format!("host:{}", h.name)),
                dot_str(role_colour(role)),
                dot_str(&label)
            );
        }
        o.push_str("  }\n");
    }
    for (k, n) in t.networks.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {} [shape=ellipse, color={}, penwidth=2, label={}];",
            dot_str(&format!("net:{}", n.name)),
            dot_str(colour(k)),
            dot_str(&Topology::network_label(n))
        );
    }
    for h in &t.hosts {
        for i in &h.interfaces {
            for a in &i.attachments {
                let k = t.networks.iter().position(|n| n.name == a.network).unwrap_or(0);
                let _ = writeln!(
                    o,
                    "  {} -- {} [color={}, label={}];",
                    dot_str(&format!("host:{}", h.name)),
                    dot_str(&format!("net:{}", a.network)),
                    dot_str(colour(k)),
                    dot_str(&format!("{}\n{}", a.device, a.address))
                );
            }
        }
    }
    o.push_str("}\n");
    o
}

fn mermaid_str(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "#quot;").replace('\n', "<br/>"))
}

/// The topology as a mermaid flowchart (renders on GitHub).
pub fn mermaid(t: &Topology) -> String {
    let mut o = String::from("flowchart LR\n");
    let id = |h: &Host| format!("h{}", t.hosts.iter().position(|x| x.name == h.name).unwrap_or(0));
    for (_, plural, hosts) in by_role(t) {
        let _ = writeln!(o, "  subgraph {plural}[{}]", mermaid_str(plural));
        for h in hosts {
            let label = box_label(h);
            let _ = writeln!(o, "    {}[{}]", id(h), mermaid_str(&label));
        }
        o.push_str("  end\n");
    }
    for (k, n) in t.networks.iter().enumerate() {
        let _ = writeln!(o, "  n{k}([{}])", mermaid_str(&Topology::network_label(n)));
    }
    let mut edge = 0;
    for h in &t.hosts {
        for i in &h.interfaces {
            for a in &i.attachments {
                let k = t.networks.iter().position(|n| n.name == a.network).unwrap_or(0);
                let _ = writeln!(o, "  {} ---|{}| n{k}", id(h), mermaid_str(&format!("{} · {}", a.device, a.address)));
                let _ = writeln!(o, "  linkStyle {edge} stroke:{},stroke-width:2px", colour(k));
                edge += 1;
            }
        }
    }
    for (k, _) in t.networks.iter().enumerate() {
        let _ = writeln!(o, "  style n{k} stroke:{},stroke-width:3px", colour(k));
    }
    o
}
