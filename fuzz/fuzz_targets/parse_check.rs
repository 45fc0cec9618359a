//! Coverage-guided fuzzing of parse + check + resolve. The oracle is the same as the
//! property tests': no panic, spans inside the text, no errors implies resolvable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let a = n3x_model::analyze(source);
    for d in &a.diagnostics {
        let s = &d.primary.span;
        assert!(s.start <= s.end && s.end <= source.len());
        assert!(source.is_char_boundary(s.start) && source.is_char_boundary(s.end));
        assert!(d.help.is_some());
    }
    if a.inventory.is_some() && !a.has_errors() {
        assert!(a.resolve().is_ok(), "no errors, yet unresolvable");
    }
});
