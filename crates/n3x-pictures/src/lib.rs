//! Pictures people would rather look at than read.
//!
//! - [`topology`]: the cluster's hosts, NICs, bonds, VLANs and networks, from the resolved
//!   inventory (serializable: `report.json` carries it).
//! - [`graph`]: `n3x graph`: the topology as SVG (laid out here), DOT and mermaid.
//! - [`timeline`]: a scenario's time series (`report.json`'s `series`) and its charts.
//! - [`html`]: `report.html`, one self-contained page from `report.json`.
//! - [`svg`]: the small SVG writer they share.
//!
//! Pure: text in, text out. Charts are hand-built SVG rather than a plotting library's:
//! each is a few hundred elements whose structure the tests pin, and a library would bring
//! fonts and a backend to place the same lines.

pub mod graph;
pub mod html;
pub mod svg;
pub mod timeline;
pub mod topology;

pub use timeline::Series;
pub use topology::Topology;

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Topology {
        let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve();
        Topology::from_resolved(&r.unwrap_or_else(|e| panic!("{e:?}")))
    }

    #[test]
    fn the_reference_topology_svg_has_every_host_network_and_address() {
        let t = reference();
        let svg = graph::svg(&t);
        let o = svg::outline(&svg);
        insta::assert_snapshot!(o.join("\n"));
        for h in ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"] {
            assert!(o.contains(&format!("text: {h}")), "{h}");
        }
        assert!(o.iter().any(|e| e.starts_with("text: cluster 192.168.200.0/24 · VLAN 200 · MTU 1500")));
        assert!(o.iter().any(|e| e == "text: 192.168.100.11/24"), "storage address of n100-1");
    }

    #[test]
    fn dot_and_mermaid_name_every_edge() {
        let t = reference();
        let d = graph::dot(&t);
        let m = graph::mermaid(&t);
        let edges: usize = t.hosts.iter().flat_map(|h| &h.interfaces).map(|i| i.attachments.len()).sum();
        assert_eq!(d.matches(" -- ").count(), edges);
        assert_eq!(m.matches(" ---|").count(), edges);
        insta::assert_snapshot!("dot", d);
        insta::assert_snapshot!("mermaid", m);
    }

    #[test]
    fn fifty_hosts_keep_six_to_a_row_and_readable_text() {
        let inv = n3x_model::analyze(&gen_inventory(50)).resolve().unwrap_or_else(|e| panic!("{e:?}"));
        let t = Topology::from_resolved(&inv);
        let svg = graph::svg(&t);
        let width: f64 =
            svg.split("width=\"").nth(1).and_then(|w| w.split('"').next()).and_then(|w| w.parse().ok()).unwrap_or(0.0);
        assert!(width <= 6.0 * (340.0 + 28.0) + 48.0, "six columns at most: {width}");
        let smallest = svg
            .split("font-size=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next()?.parse::<f64>().ok())
            .fold(f64::MAX, f64::min);
        assert!(smallest >= 10.0, "no text below 10 px: {smallest}");
        assert_eq!(svg.matches("class=\"host\"").count(), 50);
    }

    /// A valid inventory of `n` hosts (3 servers), in the shape n3x-gen writes.
    fn gen_inventory(n: usize) -> String {
        let mut s = String::from(
            "version = 1\n[cluster]\nname = \"big\"\n[networks.cluster]\ncidr = \"10.0.0.0/22\"\ngateway = \"10.0.0.1\"\ndns = [\"10.0.0.1\"]\n\
             [networks.storage]\ncidr = \"10.1.0.0/22\"\nvlan = 100\nmtu = 9000\n",
        );
        for i in 0..n {
            let role = if i < 3 { "server" } else { "agent" };
            let init = if i == 0 { "init = true\n" } else { "" };
            s.push_str(&format!(
                "[hosts.h{i:02}]\nrole = \"{role}\"\n{init}hardware = \"qemu-x86_64\"\nssh = \"root@10.0.0.{a}\"\n\
                 interfaces = {{ eno1 = {{ networks = [\"cluster\", \"storage\"] }} }}\n\
                 addresses = {{ cluster = \"10.0.0.{a}\", storage = \"10.1.0.{a}\" }}\n",
                a = i + 10
            ));
        }
        s
    }
}
