//! Errors of install and deploy, and the outcome each one is (an exit code in the binary).

use std::path::PathBuf;

use n3x_remote::RemoteError;

/// The documented outcomes of a deploy or an install.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Refused before any host changed: preflight failed, another deploy holds the lock,
    /// or an earlier deploy is unfinished.
    Refused,
    /// A host failed its gates, was put back on its previous generation, and the rollout
    /// stopped; hosts after it are untouched.
    RolledBack,
    /// Stopped half-way with nothing undone (the deployer was interrupted, or lost a host
    /// whose guard will roll it back): `--resume` continues.
    Interrupted,
    /// Bad usage or a local problem (a file, a missing tool).
    Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{step} on `{host}`: {source}")]
    Remote { host: String, step: String, source: Box<RemoteError> },
    #[error("preflight refused the deploy: {}", .reasons.join("; "))]
    Refused { reasons: Vec<String> },
    #[error("another deploy holds the cluster's lock: {owner}")]
    Locked { owner: String },
    #[error("an earlier deploy of `{cluster}` is unfinished ({})", .journal.display())]
    Unfinished { cluster: String, journal: PathBuf },
    #[error("there is no unfinished deploy of `{cluster}` to resume")]
    NothingToResume { cluster: String },
    #[error("`{host}` failed its gates ({}); it is back on its previous generation{}, and the rollout stopped", .reasons.join("; "), if *.healthy { " and healthy" } else { ", but not healthy there either" })]
    RolledBack { host: String, reasons: Vec<String>, healthy: bool },
    #[error(
        "lost `{host}` during its switch ({detail}); its guard puts it back on the previous generation within {guard_secs} s unless confirmed"
    )]
    LostContact { host: String, detail: String, guard_secs: u64 },
    #[error("interrupted")]
    Interrupted,
    #[error("`{command}` failed: {detail}")]
    Tool { command: String, detail: String },
    #[error("`{name}` is not a host of the inventory")]
    UnknownHost { name: String, known: Vec<String> },
    #[error("the deploy journal {}: {detail}", .path.display())]
    Journal { path: PathBuf, detail: String },
    #[error("k3s {from} -> {to} skips a minor version, which k3s does not support")]
    SkippedMinor { from: String, to: String },
    #[error("`{host}` has no generated host key at {}", .path.display())]
    MissingHostKey { host: String, path: PathBuf },
    #[error("{what} of `{host}`: {detail}")]
    Unexpected { host: String, what: String, detail: String },
}

impl DeployError {
    pub fn remote(host: &str, step: &str, source: RemoteError) -> DeployError {
        DeployError::Remote { host: host.into(), step: step.into(), source: Box::new(source) }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            DeployError::Refused { .. }
            | DeployError::Locked { .. }
            | DeployError::Unfinished { .. }
            | DeployError::SkippedMinor { .. } => Outcome::Refused,
            DeployError::RolledBack { .. } => Outcome::RolledBack,
            DeployError::LostContact { .. } | DeployError::Interrupted => Outcome::Interrupted,
            DeployError::Remote { .. } | DeployError::Unexpected { .. } => Outcome::Interrupted,
            DeployError::NothingToResume { .. }
            | DeployError::Tool { .. }
            | DeployError::UnknownHost { .. }
            | DeployError::Journal { .. }
            | DeployError::MissingHostKey { .. } => Outcome::Usage,
        }
    }

    pub fn help(&self) -> String {
        match self {
            DeployError::Remote { source, .. } => source.help(),
            DeployError::Refused { .. } => {
                "fix the cluster first (`n3x status` shows it), then deploy again; nothing was changed".into()
            }
            DeployError::Locked { .. } => {
                "wait for that deploy; if it crashed, resume it from its machine (`n3x deploy --resume`) or, when sure, `n3x deploy --unlock`".into()
            }
            DeployError::Unfinished { .. } => {
                "continue it with `n3x deploy --resume`, or drop it with `n3x deploy --unlock` after checking the hosts".into()
            }
            DeployError::NothingToResume { .. } => "start a deploy without `--resume`".into(),
            DeployError::RolledBack { host, .. } => format!(
                "see why on `{host}` (`journalctl -u k3s` there; `n3x deploy --plan` shows what would change), fix the change, deploy again"
            ),
            DeployError::LostContact { .. } | DeployError::Interrupted => {
                "run `n3x deploy --resume` when the host answers again: it checks each host and continues".into()
            }
            DeployError::Tool { .. } => "see the tool's message above".into(),
            DeployError::UnknownHost { known, .. } => format!("hosts: {}", known.join(", ")),
            DeployError::Journal { .. } => "move the journal aside if it is damaged; `n3x status` shows the hosts".into(),
            DeployError::SkippedMinor { .. } => {
                "upgrade one minor at a time: set `[k3s] version` to the next minor, deploy, then the next".into()
            }
            DeployError::MissingHostKey { host, .. } => format!("run `n3x secrets add-host {host} --generate` first"),
            DeployError::Unexpected { .. } => "this may be a bug in n3x; `n3x deploy --resume` re-checks every host".into(),
        }
    }
}
