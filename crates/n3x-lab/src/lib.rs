//! The n3x lab: the inventory's cluster emulated on one Linux machine without VMs. A
//! network namespace per host, an L2 segment per network (kernel bridges or the n3x
//! userspace switch), real etcd on the servers, a write probe on the agents, and
//! scenarios that break things and check that no acknowledged write is lost.
//!
//! The entry points the binary uses: [`preflight::prepare`] (decide, touching nothing),
//! [`lifecycle::up`] and [`lifecycle::down`], [`session::run`] (up, scenarios, report,
//! down), [`target::choose`] (which lab a command means), [`control`] (talk to a running
//! lab). Everything done to the machine goes through [`system::System`].
//!
//! **Architecture Invariant:** every object is recorded in `/run/n3x/<cluster>/state.json`
//! before it is created, so `down` can remove a lab that crashed at any point, and removes
//! nothing else.

pub mod build;
pub mod control;
pub mod double;
pub mod error;
pub mod etcd;
pub mod fabric;
pub mod generation;
pub mod hostroot;
pub use n3x_etcd::http;
pub mod lifecycle;
pub mod plan;
pub mod preflight;
pub mod probe;
pub mod rehearse;
pub mod report;
pub mod scenario;
pub mod session;
pub mod state;
pub mod supervisor;
pub mod system;
pub mod target;
pub mod tls;

pub use error::{ErrorKind, LabError};
pub use plan::{FabricKind, LabPlan};
