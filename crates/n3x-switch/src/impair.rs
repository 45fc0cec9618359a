//! What can be wrong with a link: the configuration types.

use std::time::Duration;

/// How the jitter of a link's delay is distributed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JitterDist {
    /// Uniform on `delay - jitter ..= delay + jitter` (standard deviation `jitter / sqrt(3)`).
    Uniform,
    /// Normal with mean `delay` and standard deviation `jitter`.
    #[default]
    Normal,
}

/// Which frames a link loses at random, independently of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Loss {
    #[default]
    None,
    /// Each frame is lost with probability `p` (0..=1), independently.
    Bernoulli { p: f64 },
    /// Two-state Markov chain (Gilbert-Elliott), for bursty loss. Per frame: the frame is
    /// lost with the current state's probability, then the state moves.
    GilbertElliott { p_good_to_bad: f64, p_bad_to_good: f64, loss_good: f64, loss_bad: f64 },
}

impl Loss {
    /// The long-run fraction of frames lost.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Bernoulli { p } => p.clamp(0.0, 1.0),
            Loss::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_good, loss_bad } => {
                let total = p_good_to_bad + p_bad_to_good;
                if total <= 0.0 {
                    // Never leaves the initial (good) state.
                    return loss_good.clamp(0.0, 1.0);
                }
                let bad = p_good_to_bad / total;
                (1.0 - bad) * loss_good.clamp(0.0, 1.0) + bad * loss_bad.clamp(0.0, 1.0)
            }
        }
    }
}

/// The impairment of one directed link (every frame one host sends to another).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Impairment {
    /// Fixed one-way delay added to every frame.
    pub delay: Duration,
    /// Random variation of the delay (see [`JitterDist`]). The total delay never goes below zero.
    pub jitter: Duration,
    pub jitter_dist: JitterDist,
    /// `false`: a frame never leaves before an earlier frame of the same link (a jittered
    /// delay that would overtake is raised to the previous frame's departure).
    /// `true`: each frame gets its own delay and may overtake.
    pub reorder: bool,
    pub loss: Loss,
    /// Link speed in bits per second (layer 2 bytes, per-segment headers of offloaded
    /// TCP super-frames included). `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Bytes the rate-limited link may hold (waiting, plus the frame being sent) before
    /// new frames are tail dropped. `None`: 100 ms at the rate, at least 64 KiB. A frame
    /// arriving at an empty link is always accepted, however large.
    pub queue_bytes: Option<u64>,
    /// Drop every frame.
    pub partitioned: bool,
}

impl Impairment {
    /// True when this impairment changes nothing: frames take the direct path.
    pub fn is_none(&self) -> bool {
        *self == Impairment::default() || *self == Impairment { jitter_dist: JitterDist::Uniform, ..Default::default() }
    }

    /// The queue limit in bytes used with `rate_bps`.
    pub fn effective_queue_bytes(&self) -> u64 {
        match (self.queue_bytes, self.rate_bps) {
            (Some(q), _) => q,
            (None, Some(rate)) => (rate / 8 / 10).max(64 * 1024),
            (None, None) => 64 * 1024,
        }
    }
}
