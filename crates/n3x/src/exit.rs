//! Exit codes: a public contract, documented in README.md. Scripts rely on them; never
//! renumber, only add.

/// Success: the inventory checks clean (warnings allowed unless `--deny-warnings`); a lab
/// command did what it was asked; `lab run` passed every scenario.
pub const OK: u8 = 0;
/// The inventory has errors (or warnings under `--deny-warnings`).
pub const INVENTORY: u8 = 1;
/// Bad usage (unknown flag, missing argument) or an IO problem (file missing, unreadable).
/// clap uses 2 for usage errors too.
pub const USAGE_OR_IO: u8 = 2;
/// The machine lacks what the command needs: root, a binary (`etcd`, `ip`, `nft`), or a
/// kernel feature for the chosen fabric. Nothing was created.
pub const ENVIRONMENT: u8 = 3;
/// `lab run` ran, and at least one scenario failed (see the report).
pub const SCENARIO_FAILED: u8 = 4;
/// The lab is not in the state the command needs (none up, already up, busy), or it
/// failed while running.
pub const LAB: u8 = 5;
/// A deploy was refused before any host changed: preflight found the cluster unhealthy,
/// another deploy holds the lock, or an earlier deploy is unfinished.
pub const REFUSED: u8 = 6;
/// A host failed its gates after a switch, was put back on its previous generation, and the
/// rollout halted; hosts after it are untouched.
pub const ROLLED_BACK: u8 = 7;
/// A deploy or install stopped half-way with nothing undone (interrupted, or a host was
/// lost and its guard decides): `n3x deploy --resume` continues.
pub const RESUMABLE: u8 = 8;
/// `status`: the cluster is degraded (every problem is listed).
pub const DEGRADED: u8 = 9;
/// `status` or `backup`: no server of the cluster answers over SSH.
pub const UNREACHABLE: u8 = 10;
/// `backup`: the snapshot file is not a good backup: truncated, changed, corrupt, without
/// its manifest, or not encrypted to the identity given.
pub const BACKUP_INVALID: u8 = 11;
/// Killed by a signal while `lab up` or `lab run` worked: 128 + the signal number, the
/// shell's convention. The lab was removed first.
pub const INTERRUPTED_BASE: u8 = 128;
/// Ctrl-C (SIGINT).
pub const INTERRUPTED_SIGINT: u8 = INTERRUPTED_BASE + 2;
/// SIGTERM.
pub const INTERRUPTED_SIGTERM: u8 = INTERRUPTED_BASE + 15;

/// The exit code for an interruption by signal `sig`.
pub fn interrupted(sig: i32) -> i32 {
    match sig {
        signal_hook::consts::SIGINT => i32::from(INTERRUPTED_SIGINT),
        signal_hook::consts::SIGTERM => i32::from(INTERRUPTED_SIGTERM),
        other => i32::from(INTERRUPTED_BASE) + other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn interruptions_follow_the_shell_convention() {
        assert_eq!(super::interrupted(signal_hook::consts::SIGINT), 130);
        assert_eq!(super::interrupted(signal_hook::consts::SIGTERM), 143);
        assert_eq!(super::interrupted(signal_hook::consts::SIGHUP), 129);
    }
}
