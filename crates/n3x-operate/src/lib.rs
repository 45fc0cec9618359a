//! `n3x status`, `n3x backup` and `n3x certs`: is the cluster healthy and running what
//! `n3x.toml` says, can it be got back if it is lost, and are its certificates renewed.
//!
//! - [`status`]: every host's generation, k3s, node and etcd member, and the cluster's
//!   quorum, leader, learners, newest snapshot and certificate expiry, asked over SSH and
//!   judged healthy, degraded or unreachable.
//! - [`bundle`]: the backup file (an etcd snapshot and its server token, encrypted with
//!   age) and its manifest; atomic writes; the checks a copy must pass.
//! - [`backup`]: snapshot (through k3s on a server), verify, and restore (k3s's
//!   cluster-reset procedure, step by step over SSH).
//! - [`throwaway`]: verify's proof: a real etcd started from the snapshot, every key read.
//! - [`certs`]: k3s's certificate rotation, one host at a time (leader last, agents after).
//!
//! Hosts are reached only through `n3x_deploy::observe::Ask` over an `n3x_remote::Remote`:
//! the system `ssh` for real clusters and for the lab (through its operator namespace).

pub mod backup;
pub mod bundle;
pub mod certs;
pub mod error;
pub mod status;
pub mod throwaway;

pub use error::{Kind, OperateError};
