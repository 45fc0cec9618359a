//! The deterministic heart of a link: given a frame's arrival time and size, decide
//! whether it is dropped (and why) or when it is delivered.
//!
//! No clocks, no IO: times are nanoseconds on the caller's clock, so tests feed synthetic
//! arrival times and the switch feeds real ones. Stages, in order: partition, loss, rate
//! (a link of `rate_bps` with a bounded queue, tail drop), delay and jitter.
//!
//! Randomness: two streams per link, one for loss and one for jitter, each seeded from
//! `(seed, switch, from, to, purpose)`. While a loss model is set, every offered frame
//! takes exactly the loss model's draws (even a partitioned one), so the n-th frame of a
//! link gets the same loss decision whatever the timing, the queue or the partitions did.

use crate::impair::{Impairment, JitterDist, Loss};
use crate::rng::Rng;

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The link is partitioned ([`crate::Switch::partition`] or `Impairment::partitioned`).
    Partition,
    /// The random loss model chose this frame.
    Loss,
    /// The rate limiter's queue (or the delay line) was full: tail drop.
    Queue,
}

/// The fate of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver at this time (nanoseconds, the same clock as the arrival time).
    Deliver {
        at_ns: u64,
    },
    Drop(DropReason),
}

/// The state of one directed link.
#[derive(Clone, Debug)]
pub struct LinkPipeline {
    imp: Impairment,
    cut: bool,
    loss_rng: Rng,
    delay_rng: Rng,
    /// Gilbert-Elliott state: true while in the bad state.
    ge_bad: bool,
    /// When the rate-limited link finishes sending what it has accepted so far.
    tx_free_at: u64,
    /// Delivery time of the latest accepted frame (for `reorder = false`).
    last_due: u64,
}

impl LinkPipeline {
    /// A link with no impairment; `seed` is the lab seed, the names identify the link.
    pub fn new(seed: u64, switch: &str, from: &str, to: &str) -> LinkPipeline {
        LinkPipeline {
            imp: Impairment::default(),
            cut: false,
            loss_rng: Rng::for_link(seed, switch, from, to, "loss"),
            delay_rng: Rng::for_link(seed, switch, from, to, "delay"),
            ge_bad: false,
            tx_free_at: 0,
            last_due: 0,
        }
    }

    pub fn impairment(&self) -> &Impairment {
        &self.imp
    }

    /// Takes effect for frames offered from now on. Random streams and the loss state
    /// carry on (a new loss model starts in its good state only on its first use).
    pub fn set_impairment(&mut self, imp: Impairment) {
        if !matches!(imp.loss, Loss::GilbertElliott { .. }) {
            self.ge_bad = false;
        }
        self.imp = imp;
    }

    /// A partition imposed from outside the link's impairment.
    pub fn set_cut(&mut self, cut: bool) {
        self.cut = cut;
    }

    pub fn is_cut(&self) -> bool {
        self.cut || self.imp.partitioned
    }

    /// True when frames pass unchanged and immediately: the switch may skip the pipeline.
    pub fn passes_through(&self) -> bool {
        !self.cut && self.imp.is_none()
    }

    /// Decides the fate of a frame of `wire_bytes` arriving at `now_ns`.
    pub fn offer(&mut self, now_ns: u64, wire_bytes: u64) -> Verdict {
        // Draw first so the loss stream advances once per frame, whatever happens next.
        let lost = self.draw_loss();
        if self.is_cut() {
            return Verdict::Drop(DropReason::Partition);
        }
        if lost {
            return Verdict::Drop(DropReason::Loss);
        }
        let departed = match self.imp.rate_bps {
            Some(rate) if rate > 0 => match self.shape(now_ns, wire_bytes, rate) {
                Some(t) => t,
                None => return Verdict::Drop(DropReason::Queue),
            },
            _ => now_ns,
        };
        let mut due = departed.saturating_add(self.draw_delay_ns());
        if !self.imp.reorder {
            due = due.max(self.last_due);
        }
        self.last_due = self.last_due.max(due);
        Verdict::Deliver { at_ns: due }
    }

    fn draw_loss(&mut self) -> bool {
        match self.imp.loss {
            Loss::None => false,
            Loss::Bernoulli { p } => self.loss_rng.next_f64() < p,
            Loss::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_good, loss_bad } => {
                let lost = self.loss_rng.next_f64() < if self.ge_bad { loss_bad } else { loss_good };
                let u = self.loss_rng.next_f64();
                self.ge_bad = if self.ge_bad { u >= p_bad_to_good } else { u < p_good_to_bad };
                lost
            }
        }
    }

    /// The rate stage: a link of `rate` bits per second (a token bucket one frame deep),
    /// behind a FIFO of at most `queue_bytes`. Returns when the frame has been sent.
    fn shape(&mut self, now_ns: u64, wire_bytes: u64, rate: u64) -> Option<u64> {
        let backlog_ns = self.tx_free_at.saturating_sub(now_ns);
        if backlog_ns > 0 {
            let backlog_bytes = (u128::from(backlog_ns) * u128::from(rate) / 8_000_000_000) as u64;
            if backlog_bytes + wire_bytes > self.imp.effective_queue_bytes() {
                return None;
            }
        }
        let tx_ns = (u128::from(wire_bytes) * 8_000_000_000 / u128::from(rate)) as u64;
        self.tx_free_at = self.tx_free_at.max(now_ns) + tx_ns;
        Some(self.tx_free_at)
    }

    fn draw_delay_ns(&mut self) -> u64 {
        let delay = self.imp.delay.as_nanos() as f64;
        let jitter = self.imp.jitter.as_nanos() as f64;
        if jitter <= 0.0 {
            return delay as u64;
        }
        let d = match self.imp.jitter_dist {
            JitterDist::Uniform => delay + (2.0 * self.delay_rng.next_f64() - 1.0) * jitter,
            JitterDist::Normal => delay + self.delay_rng.next_normal() * jitter,
        };
        d.max(0.0) as u64
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn link(seed: u64, imp: Impairment) -> LinkPipeline {
        let mut l = LinkPipeline::new(seed, "net", "a", "b");
        l.set_impairment(imp);
        l
    }

    /// The 99% two-sided normal-approximation interval of a Binomial(n, p) count.
    fn binomial_99(n: u64, p: f64) -> (f64, f64) {
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        (mean - 2.576 * sd, mean + 2.576 * sd)
    }

    fn verdicts(l: &mut LinkPipeline, n: u64, spacing_ns: u64, bytes: u64) -> Vec<Verdict> {
        (0..n).map(|i| l.offer(i * spacing_ns, bytes)).collect()
    }

    fn percentile(sorted: &[f64], q: f64) -> f64 {
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    fn mean_sd(xs: &[f64]) -> (f64, f64) {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64;
        (m, v.sqrt())
    }

    #[test]
    fn no_impairment_delivers_immediately() {
        let mut l = link(1, Impairment::default());
        assert!(l.passes_through());
        for i in 0..100 {
            assert_eq!(l.offer(i * 1000, 1500), Verdict::Deliver { at_ns: i * 1000 });
        }
    }

    #[test]
    fn bernoulli_loss_within_99_percent_binomial_interval() {
        let n = 20_000;
        for (seed, p) in [(1, 0.05), (2, 0.05), (3, 0.01), (4, 0.3), (5, 0.5)] {
            let mut l = link(seed, Impairment { loss: Loss::Bernoulli { p }, ..Default::default() });
            let lost =
                verdicts(&mut l, n, MS, 100).iter().filter(|v| **v == Verdict::Drop(DropReason::Loss)).count() as f64;
            let (lo, hi) = binomial_99(n, p);
            assert!((lo..=hi).contains(&lost), "seed {seed} p {p}: lost {lost} outside [{lo:.0}, {hi:.0}]");
        }
    }

    #[test]
    fn bernoulli_extremes() {
        let mut l = link(9, Impairment { loss: Loss::Bernoulli { p: 0.0 }, ..Default::default() });
        assert!(verdicts(&mut l, 1000, MS, 100).iter().all(|v| matches!(v, Verdict::Deliver { .. })));
        let mut l = link(9, Impairment { loss: Loss::Bernoulli { p: 1.0 }, ..Default::default() });
        assert!(verdicts(&mut l, 1000, MS, 100).iter().all(|v| *v == Verdict::Drop(DropReason::Loss)));
    }

    #[test]
    fn gilbert_elliott_matches_stationary_loss_and_is_bursty() {
        let ge = Loss::GilbertElliott { p_good_to_bad: 0.01, p_bad_to_good: 0.25, loss_good: 0.0, loss_bad: 1.0 };
        let expected = ge.mean_loss();
        assert!((expected - 0.01 / 0.26).abs() < 1e-12);
        let n = 400_000;
        let mut l = link(11, Impairment { loss: ge, ..Default::default() });
        let lost: Vec<bool> = verdicts(&mut l, n, MS, 100).iter().map(|v| matches!(v, Verdict::Drop(_))).collect();
        let rate = lost.iter().filter(|x| **x).count() as f64 / n as f64;
        assert!((rate - expected).abs() < 0.1 * expected, "loss {rate} vs stationary {expected}");
        // Bursts: runs of consecutive losses average 1 / p_bad_to_good = 4 frames, where
        // independent loss at the same rate would average 1 / (1 - p), about 1.04.
        let mut runs = Vec::new();
        let mut run = 0u32;
        for &x in &lost {
            if x {
                run += 1;
            } else if run > 0 {
                runs.push(f64::from(run));
                run = 0;
            }
        }
        let (mean_run, _) = mean_sd(&runs);
        assert!((mean_run - 4.0).abs() < 0.4, "mean burst {mean_run}");
    }

    #[test]
    fn gilbert_elliott_stationary_with_partial_losses() {
        let ge = Loss::GilbertElliott { p_good_to_bad: 0.05, p_bad_to_good: 0.2, loss_good: 0.01, loss_bad: 0.5 };
        let expected = 0.8 * 0.01 + 0.2 * 0.5;
        assert!((ge.mean_loss() - expected).abs() < 1e-12);
        let n = 200_000;
        let mut l = link(12, Impairment { loss: ge, ..Default::default() });
        let lost = verdicts(&mut l, n, MS, 100).iter().filter(|v| matches!(v, Verdict::Drop(_))).count();
        let rate = lost as f64 / n as f64;
        assert!((rate - expected).abs() < 0.05 * expected, "loss {rate} vs stationary {expected}");
    }

    /// One-way delays of `n` frames spaced `spacing` apart, in milliseconds.
    fn delays_ms(imp: Impairment, seed: u64, n: u64, spacing: u64) -> Vec<f64> {
        let mut l = link(seed, imp);
        (0..n)
            .map(|i| match l.offer(i * spacing, 100) {
                Verdict::Deliver { at_ns } => (at_ns - i * spacing) as f64 / MS as f64,
                Verdict::Drop(r) => panic!("unexpected drop {r:?}"),
            })
            .collect()
    }

    fn jitter(dist: JitterDist, reorder: bool) -> Impairment {
        Impairment {
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
            jitter_dist: dist,
            reorder,
            ..Default::default()
        }
    }

    #[test]
    fn normal_jitter_p50_and_standard_deviation() {
        // Reordering allowed: every frame gets its own draw.
        for seed in [1, 2, 3] {
            let mut d = delays_ms(jitter(JitterDist::Normal, true), seed, 20_000, MS);
            let (_, sd) = mean_sd(&d);
            d.sort_by(f64::total_cmp);
            let p50 = percentile(&d, 0.5);
            assert!((p50 - 50.0).abs() <= 0.5, "seed {seed}: p50 {p50}");
            assert!((sd - 10.0).abs() <= 1.0, "seed {seed}: sd {sd}");
        }
    }

    #[test]
    fn uniform_jitter_p50_standard_deviation_and_bounds() {
        let mut d = delays_ms(jitter(JitterDist::Uniform, true), 4, 20_000, MS);
        let (_, sd) = mean_sd(&d);
        let expected_sd = 10.0 / 3f64.sqrt();
        d.sort_by(f64::total_cmp);
        assert!((percentile(&d, 0.5) - 50.0).abs() <= 0.5);
        assert!((sd - expected_sd).abs() <= 0.1 * expected_sd, "sd {sd}");
        assert!(d[0] >= 40.0 && d[d.len() - 1] <= 60.0, "range {} .. {}", d[0], d[d.len() - 1]);
    }

    #[test]
    fn jitter_without_reorder_is_accurate_when_frames_are_sparse() {
        // Frames 200 ms apart never catch up with each other, so clamping never applies.
        let mut d = delays_ms(jitter(JitterDist::Normal, false), 5, 10_000, 200 * MS);
        let (_, sd) = mean_sd(&d);
        d.sort_by(f64::total_cmp);
        assert!((percentile(&d, 0.5) - 50.0).abs() <= 0.5);
        assert!((sd - 10.0).abs() <= 1.0, "sd {sd}");
    }

    fn due_times(imp: Impairment, n: u64, spacing: u64) -> Vec<u64> {
        let mut l = link(6, imp);
        (0..n)
            .filter_map(|i| match l.offer(i * spacing, 100) {
                Verdict::Deliver { at_ns } => Some(at_ns),
                Verdict::Drop(_) => None,
            })
            .collect()
    }

    #[test]
    fn no_reordering_unless_asked() {
        for dist in [JitterDist::Normal, JitterDist::Uniform] {
            let due = due_times(jitter(dist, false), 5000, MS);
            assert!(due.windows(2).all(|w| w[0] <= w[1]), "{dist:?} reordered without reorder = true");
            let due = due_times(jitter(dist, true), 5000, MS);
            let overtaken = due.windows(2).filter(|w| w[0] > w[1]).count();
            assert!(overtaken > 1000, "{dist:?}: reorder = true overtook only {overtaken} times");
        }
        // Lowering the delay at run time does not let new frames overtake old ones.
        let mut l = link(7, Impairment { delay: Duration::from_millis(100), ..Default::default() });
        let Verdict::Deliver { at_ns: first } = l.offer(0, 100) else { panic!() };
        l.set_impairment(Impairment { delay: Duration::from_millis(1), ..Default::default() });
        let Verdict::Deliver { at_ns: second } = l.offer(MS, 100) else { panic!() };
        assert!(second >= first);
    }

    /// Throughput in bits per second of what a link delivers from a saturating input.
    fn shaped(rate: u64, offered_bps: u64, bytes: u64, secs: u64) -> (f64, usize, u64) {
        let imp = Impairment { rate_bps: Some(rate), ..Default::default() };
        let mut l = link(8, imp);
        let spacing = bytes * 8 * 1_000_000_000 / offered_bps;
        let n = secs * 1_000_000_000 / spacing;
        let mut delivered = 0u64;
        let mut last = 0u64;
        let mut drops = 0;
        let mut max_wait = 0u64;
        for i in 0..n {
            match l.offer(i * spacing, bytes) {
                Verdict::Deliver { at_ns } => {
                    delivered += bytes;
                    last = at_ns;
                    max_wait = max_wait.max(at_ns - i * spacing);
                }
                Verdict::Drop(r) => {
                    assert_eq!(r, DropReason::Queue);
                    drops += 1;
                }
            }
        }
        (delivered as f64 * 8.0 / (last as f64 / 1e9), drops, max_wait)
    }

    #[test]
    fn rate_within_five_percent_for_a_saturating_input() {
        for (rate, offered, bytes) in
            [(10_000_000, 25_000_000, 1514), (1_000_000, 5_000_000, 200), (100_000_000, 300_000_000, 9000)]
        {
            let (got, drops, max_wait) = shaped(rate, offered, bytes, 10);
            let err = (got - rate as f64).abs() / rate as f64;
            assert!(err < 0.05, "rate {rate}: measured {got:.0} bit/s");
            assert!(drops > 0, "a saturating input must overflow the queue");
            // The queue bounds the wait: 100 ms at the rate (or 64 KiB) plus one frame.
            let limit = Impairment { rate_bps: Some(rate), ..Default::default() }.effective_queue_bytes();
            let bound = (limit + bytes) * 8 * 1_000_000_000 / rate;
            assert!(max_wait <= bound, "rate {rate}: waited {max_wait} ns > {bound} ns");
        }
    }

    #[test]
    fn rate_below_capacity_adds_only_serialisation() {
        let (_, drops, max_wait) = shaped(10_000_000, 5_000_000, 1250, 5);
        assert_eq!(drops, 0);
        assert_eq!(max_wait, 1_000_000, "1250 bytes at 10 Mbit/s take 1 ms");
    }

    #[test]
    fn explicit_queue_limit_is_honoured() {
        let imp = Impairment { rate_bps: Some(8_000_000), queue_bytes: Some(10_000), ..Default::default() };
        let mut l = link(1, imp);
        // 20 frames of 1000 bytes at once: the link holds 10 000 bytes (the one being sent included).
        let accepted = (0..20).filter(|_| matches!(l.offer(0, 1000), Verdict::Deliver { .. })).count();
        assert_eq!(accepted, 10);
        // 0.5 ms later only 500 bytes have left: no room; at 1 ms a whole frame fits again.
        assert_eq!(l.offer(500_000, 1000), Verdict::Drop(DropReason::Queue));
        assert!(matches!(l.offer(1_000_000, 1000), Verdict::Deliver { .. }));
        assert_eq!(Impairment { rate_bps: Some(1_000_000), ..Default::default() }.effective_queue_bytes(), 65_536);
        assert_eq!(Impairment { rate_bps: Some(100_000_000), ..Default::default() }.effective_queue_bytes(), 1_250_000);
    }

    fn full_profile(seed: u64) -> LinkPipeline {
        link(
            seed,
            Impairment {
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(5),
                loss: Loss::Bernoulli { p: 0.1 },
                rate_bps: Some(50_000_000),
                ..Default::default()
            },
        )
    }

    #[test]
    fn same_seed_same_decisions_different_seed_different() {
        let run = |seed| verdicts(&mut full_profile(seed), 5000, 100_000, 1500);
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
        let other_link = {
            let mut l = LinkPipeline::new(42, "net", "b", "a");
            l.set_impairment(*full_profile(42).impairment());
            verdicts(&mut l, 5000, 100_000, 1500)
        };
        assert_ne!(run(42), other_link, "each direction has its own stream");
    }

    #[test]
    fn loss_decisions_do_not_depend_on_timing_queue_or_partitions() {
        let run = |spacing: u64, cut: std::ops::Range<u64>| -> Vec<Verdict> {
            let mut l = full_profile(7);
            (0..5000)
                .map(|i| {
                    l.set_cut(cut.contains(&i));
                    l.offer(i * spacing, 1500)
                })
                .collect()
        };
        // Slow arrivals: no queue drops, no partition. Fast arrivals: many queue drops and
        // a partition in the middle. The loss decisions outside the partition are identical.
        let slow = run(1_000_000, 0..0);
        let fast = run(10_000, 1000..1500);
        let lost = |v: &[Verdict]| -> Vec<bool> {
            v.iter()
                .enumerate()
                .filter(|(i, _)| !(1000..1500).contains(i))
                .map(|(_, x)| *x == Verdict::Drop(DropReason::Loss))
                .collect()
        };
        assert_eq!(lost(&slow), lost(&fast));
        let count = |v: &[Verdict], r: DropReason| v.iter().filter(|x| **x == Verdict::Drop(r)).count();
        assert_eq!(count(&slow, DropReason::Queue), 0);
        assert!(count(&fast, DropReason::Queue) > 1000, "the fast run must exercise the queue");
        assert_eq!(count(&fast, DropReason::Partition), 500);
    }

    #[test]
    fn partition_drops_everything_and_heals() {
        let mut l = link(3, Impairment::default());
        l.set_cut(true);
        assert!(!l.passes_through());
        assert!(verdicts(&mut l, 100, MS, 100).iter().all(|v| *v == Verdict::Drop(DropReason::Partition)));
        l.set_cut(false);
        assert!(l.passes_through());
        assert!(matches!(l.offer(0, 100), Verdict::Deliver { .. }));
        let mut l = link(3, Impairment { partitioned: true, ..Default::default() });
        assert_eq!(l.offer(0, 100), Verdict::Drop(DropReason::Partition));
    }
}
