//! The n3x link emulator: a userspace L2 switch between TAP devices with seeded per-link
//! delay, jitter, loss, rate and partitions.
//!
//! Frames are forwarded by MAC learning (broadcast, multicast and unknown unicast are
//! flooded). Every directed link `(from host, to host)` has its own pipeline:
//! partition, loss, rate (bounded queue, tail drop), delay and jitter, then delivery into
//! the destination TAP. A host's profile impairs what it sends ([`Switch::set_egress`]),
//! so the round trip between A and B carries the delay of both.
//!
//! The deterministic part ([`LinkPipeline`], [`Rng`]) has no clock and no IO; the
//! [`Switch`] feeds it real arrival times. ARCHITECTURE.md (`crates/n3x-switch`) explains the design.

mod frame;
mod impair;
mod pipeline;
mod rng;
mod switch;
mod sys;

pub use frame::{MAX_FRAME, VNET_HDR_LEN, wire_len};
pub use impair::{Impairment, JitterDist, Loss};
pub use pipeline::{DropReason, LinkPipeline, Verdict};
pub use rng::{Rng, stable_hash};
pub use switch::{DELAY_LINE_LIMIT_BYTES, LinkStats, Switch, SwitchStats};
pub use sys::Tap;
