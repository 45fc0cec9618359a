//! Property tests over parse + check: no input makes the model panic, every diagnostic
//! points inside the text, and an inventory without errors always resolves.
//! `cargo fuzz run parse_check` (see fuzz/) runs the same oracle coverage-guided.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use n3x_model::{Analysis, analyze};
use proptest::prelude::*;

const REFERENCE: &str = include_str!("../../../n3x.toml");

/// The invariants every analysis must hold, whatever the input.
fn assert_sound(source: &str, a: &Analysis) {
    for d in &a.diagnostics {
        for span in std::iter::once(&d.primary.span).chain(d.related.iter().map(|l| &l.span)) {
            assert!(span.start <= span.end && span.end <= source.len(), "{:?} outside the text: {span:?}", d.code);
            assert!(
                source.is_char_boundary(span.start) && source.is_char_boundary(span.end),
                "{:?} splits a character",
                d.code
            );
        }
        assert!(!d.message.is_empty());
        assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()), "{:?} has no help", d.code);
    }
    if a.inventory.is_some() && !a.has_errors() {
        let r = a.resolve().unwrap_or_else(|e| panic!("no errors, yet unresolvable: {e:?}\n{source}"));
        assert_eq!(r.hosts.len(), a.inventory.as_ref().map_or(0, |i| i.hosts.len()));
    }
}

/// Pieces of TOML that reach deep into the schema when spliced into the reference.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\n[hosts.x]\n".to_owned()),
        Just("init = true\n".to_owned()),
        Just("role = \"agent\"\n".to_owned()),
        Just("= =".to_owned()),
        Just("\"".to_owned()),
        Just("[[hosts]]\n".to_owned()),
        Just("vlan = 100\n".to_owned()),
        Just("cidr = \"192.168.200.0/23\"\n".to_owned()),
        Just("addresses = { cluster = \"192.168.200.11\" }\n".to_owned()),
        Just("interfaces.enp1s0 = { networks = [\"cluster\"] }\n".to_owned()),
        Just("firmware = \"35.3.1\"\n".to_owned()),
        Just("election_ms = 10\n".to_owned()),
        Just("profile = \"edge\"\n".to_owned()),
        Just("delay_ms = 1e308\n".to_owned()),
        Just("replicas = -1\n".to_owned()),
        Just("version = 99999999999999999999\n".to_owned()),
        Just("gateway = \"192.168.200.11\"\n".to_owned()),
        Just("dns = [\"1.1.1.1\", 3]\n".to_owned()),
        Just("mac = \"48:b0:2d:00:00:21\"\n".to_owned()),
        Just("ssh_keys = [\"ssh-ed25519 AAAA\"]\n".to_owned()),
        Just("\n[access]\nssh_keys = [\"ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB\"]\n".to_owned()),
        Just("version = \"v1.29\"\n".to_owned()),
        Just("tls_san = [\"a..b\", 3, \"*.x\", \"1.2.3\"]\n".to_owned()),
        Just("\n[security.audit]\nmax_size_mb = 0\nlog_path = \"/\"\n".to_owned()),
        Just("secrets_encryption = false\npod_security = \"privileged\"\n".to_owned()),
        Just("storage = \"local-path\"\nsize = \"0Gi\"\nretention = \"0d\"\n".to_owned()),
        Just("\n[addons.monitoring]\n".to_owned()),
        Just("ç€𝄞\u{0}\r\n".to_owned()),
        "[ -~]{0,12}",
    ]
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,400}") {
        let a = analyze(&source);
        assert_sound(&source, &a);
    }

    #[test]
    fn mutated_reference_never_panics(
        cut_at in 0usize..REFERENCE.len(),
        cut_len in 0usize..64,
        insert in fragment(),
        insert_at in 0usize..REFERENCE.len(),
    ) {
        let mut s = REFERENCE.to_owned();
        let start = floor_boundary(&s, cut_at);
        let end = floor_boundary(&s, start + cut_len);
        s.replace_range(start..end, "");
        let at = floor_boundary(&s, insert_at);
        s.insert_str(at, &insert);
        let a = analyze(&s);
        assert_sound(&s, &a);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]

    #[test]
    fn generated_inventories_are_valid(hosts in 1usize..300, servers in prop::sample::select(vec![1usize, 3, 5, 7])) {
        let text = n3x_gen::inventory("gen", hosts, servers);
        let a = analyze(&text);
        let errors: Vec<_> = a.errors().map(|d| d.code).collect();
        // The generator caps servers at the host count, which can make the count even.
        if servers.min(hosts) % 2 == 1 {
            prop_assert!(errors.is_empty(), "{errors:?}");
            prop_assert_eq!(a.resolve().unwrap().hosts.len(), hosts);
        } else {
            prop_assert_eq!(errors, vec![n3x_model::Code::EvenServers]);
        }
        assert_sound(&text, &a);
    }
}

#[test]
fn analysis_is_deterministic() {
    let a = analyze(REFERENCE);
    let b = analyze(REFERENCE);
    assert_eq!(a.diagnostics, b.diagnostics);
    assert_eq!(format!("{:?}", a.resolve()), format!("{:?}", b.resolve()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text is judged without a panic; a key's base64 cut anywhere is never accepted.
    #[test]
    fn ssh_keys_are_judged_without_panics(text in "\\PC{0,120}", cut in 0usize..68) {
        let _ = n3x_model::ssh::parse(&text);
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIg1tSeDbaCxo+Nd4dkyEITHaA5kYOGLbWiTHXUzfDMO";
        prop_assert!(n3x_model::ssh::parse(key).is_ok());
        let short = &key[..(12 + cut).min(key.len() - 1)];
        prop_assert!(n3x_model::ssh::parse(short).is_err(), "accepted a cut key: {short}");
    }
}
