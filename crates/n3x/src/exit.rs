//! Exit codes: a public contract, documented in README.md. Scripts rely on them; never
//! renumber, only add.

/// Success: the inventory checks clean (warnings allowed unless `--deny-warnings`).
pub const OK: u8 = 0;
/// The inventory has errors (or warnings under `--deny-warnings`).
pub const INVENTORY: u8 = 1;
/// Bad usage (unknown flag, missing argument) or an IO problem (file missing, unreadable).
/// clap uses 2 for usage errors too.
pub const USAGE_OR_IO: u8 = 2;
