//! Atomic file writes, shared with the lab: see the `n3x-fs` crate.

pub use n3x_fs::{create_dir_all, write};
