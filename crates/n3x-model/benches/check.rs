//! `cargo bench -p n3x-model`: time parse + check on generated inventories, next to the
//! bare TOML parse of the same text (the baseline any TOML reader pays), measured in the
//! same run. Prints a table; the figures go in BENCHMARKS.md. Not a test: nothing here
//! asserts a duration.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Median and minimum of `runs` timings of `f`, after one warm-up call.
fn measure(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    t.sort();
    (t[t.len() / 2], t[0])
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let reference = include_str!("../../../n3x.toml").to_owned();
    let inputs = [
        ("reference (5 hosts)", reference),
        ("generated 100 hosts", n3x_gen::inventory("gen", 100, 3)),
        ("generated 1000 hosts", n3x_gen::inventory("gen", 1000, 3)),
        ("generated 5000 hosts", n3x_gen::inventory("gen", 5000, 5)),
    ];
    println!(
        "| inventory | size | TOML parse only, median (baseline) | parse + check, median | min | ratio to baseline | + resolve (show), median |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, text) in &inputs {
        let runs = if text.len() > 1_000_000 { 11 } else { 31 };
        let a = n3x_model::analyze(text);
        assert!(!a.has_errors(), "{name}: the generator must produce a valid inventory");
        let (base, _) = measure(runs, || {
            black_box(toml::de::DeTable::parse(black_box(text)).ok());
        });
        let (check, check_min) = measure(runs, || {
            black_box(n3x_model::analyze(black_box(text)));
        });
        let (show, _) = measure(runs, || {
            black_box(n3x_model::analyze(black_box(text)).resolve().ok());
        });
        println!(
            "| {name} | {} KiB | {} ms | {} ms | {} ms | {:.2}x | {} ms |",
            text.len() / 1024,
            ms(base),
            ms(check),
            ms(check_min),
            check.as_secs_f64() / base.as_secs_f64(),
            ms(show)
        );
    }
}
