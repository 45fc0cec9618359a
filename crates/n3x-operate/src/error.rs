//! What can go wrong in `status`, `backup` and `certs`, each with the place and the fix. No error
//! carries a secret: they name files, hosts and recipients (public keys), never a token or
//! a snapshot's contents.

use std::path::PathBuf;

use n3x_deploy::DeployError;

/// Which documented exit code an error gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad usage or a local file problem.
    Usage,
    /// A tool this machine needs is missing or failed (etcd, etcdctl, age keys).
    Environment,
    /// The snapshot file is not a good backup: truncated, changed, corrupt, not for you.
    Invalid,
    /// Refused before anything changed: another cluster's snapshot, a healthy cluster.
    Refused,
    /// No host of the cluster answered.
    Unreachable,
    /// A restore stopped part-way; running it again continues.
    Interrupted,
}

#[derive(Debug, thiserror::Error)]
pub enum OperateError {
    #[error(transparent)]
    Host(#[from] DeployError),
    #[error("no server of `{cluster}` answered: {detail}")]
    NoServer { cluster: String, detail: String },
    #[error("no one to encrypt the snapshot to: `[secrets].admins` of `{cluster}` is empty")]
    NoRecipients { cluster: String },
    #[error("`{value}` is not an age recipient (`age1...` or `ssh-ed25519 ...`)")]
    BadRecipient { value: String },
    #[error("cannot {what} {}: {detail}", .path.display())]
    Io { what: String, path: PathBuf, detail: String },
    #[error("{} has no manifest ({} is missing)", .data.display(), .manifest.display())]
    NoManifest { data: PathBuf, manifest: PathBuf },
    #[error("{} is not an n3x snapshot manifest: {detail}", .path.display())]
    BadManifest { path: PathBuf, detail: String },
    #[error("{} is truncated: {have} of the {want} bytes its manifest records", .path.display())]
    Truncated { path: PathBuf, have: u64, want: u64 },
    #[error("{} does not match its manifest: sha256 {have}, the manifest says {want}", .path.display())]
    Changed { path: PathBuf, have: String, want: String },
    #[error("{} is not encrypted to your identity ({}): it is for {}", .path.display(), .identity, .recipients.join(", "))]
    NotForYou { path: PathBuf, recipients: Vec<String>, identity: String },
    #[error("{} is corrupt: {detail}", .path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{} is a snapshot of cluster `{theirs}`, not of `{ours}`", .path.display())]
    OtherCluster { path: PathBuf, theirs: String, ours: String },
    #[error("`{cluster}` has quorum ({detail}): a restore would throw away every write since the snapshot")]
    Healthy { cluster: String, detail: String },
    #[error("`{command}` failed: {detail}")]
    Tool { command: String, detail: String },
    #[error("the restore stopped at `{step}`: {detail}")]
    Restore { step: String, detail: String },
    #[error("`{cluster}` is not healthy ({detail}): restarting its hosts one by one could lose quorum")]
    Unhealthy { cluster: String, detail: String },
    #[error("the certificate rotation stopped at `{step}`: {detail}")]
    Rotate { step: String, detail: String },
    #[error(transparent)]
    Secrets(#[from] n3x_secrets::Error),
}

impl OperateError {
    pub fn io(what: &str, path: impl Into<PathBuf>, e: impl std::fmt::Display) -> OperateError {
        OperateError::Io { what: what.into(), path: path.into(), detail: e.to_string() }
    }

    pub fn kind(&self) -> Kind {
        match self {
            OperateError::Host(e) => match e {
                DeployError::Remote { source, .. }
                    if matches!(**source, n3x_remote::RemoteError::Unreachable { .. }) =>
                {
                    Kind::Unreachable
                }
                _ => Kind::Environment,
            },
            OperateError::NoServer { .. } => Kind::Unreachable,
            OperateError::NoRecipients { .. } | OperateError::BadRecipient { .. } | OperateError::Io { .. } => {
                Kind::Usage
            }
            OperateError::NoManifest { .. }
            | OperateError::BadManifest { .. }
            | OperateError::Truncated { .. }
            | OperateError::Changed { .. }
            | OperateError::NotForYou { .. }
            | OperateError::Corrupt { .. } => Kind::Invalid,
            OperateError::OtherCluster { .. } | OperateError::Healthy { .. } | OperateError::Unhealthy { .. } => {
                Kind::Refused
            }
            OperateError::Tool { .. } => Kind::Environment,
            OperateError::Restore { .. } | OperateError::Rotate { .. } => Kind::Interrupted,
            OperateError::Secrets(e) => match e.kind() {
                n3x_secrets::ErrorKind::Usage => Kind::Usage,
                _ => Kind::Environment,
            },
        }
    }

    /// The fix, in one line.
    pub fn help(&self) -> String {
        match self {
            OperateError::Host(e) => e.help(),
            OperateError::NoServer { .. } => {
                "check the servers are up and `ssh root@<server> true` works; `n3x status` shows each host".into()
            }
            OperateError::NoRecipients { .. } => {
                "run `n3x secrets init` (it adds your age key to `[secrets].admins`), or pass `--recipient age1...`"
                    .into()
            }
            OperateError::BadRecipient { .. } => "`age-keygen -y KEYFILE` prints a recipient".into(),
            OperateError::Io { .. } => "check the path and its permissions".into(),
            OperateError::NoManifest { .. } => {
                "the snapshot was interrupted before its manifest was written, or the manifest was moved: keep `NAME.json` beside `NAME.snap.age`".into()
            }
            OperateError::BadManifest { .. } => "restore the manifest from where the snapshot was copied from".into(),
            OperateError::Truncated { .. } => {
                "the copy was cut short: copy the file again from where it was written (`n3x backup list` there)".into()
            }
            OperateError::Changed { .. } => {
                "the file or its manifest changed after the snapshot: use another snapshot (`n3x backup list`)".into()
            }
            OperateError::NotForYou { .. } => {
                "decrypt with one of the identities it was encrypted to: `--identity FILE` (or SOPS_AGE_KEY_FILE)".into()
            }
            OperateError::Corrupt { .. } => "use another snapshot (`n3x backup list`)".into(),
            OperateError::OtherCluster { .. } => {
                "restore a snapshot of this cluster (`n3x backup list`), or point `-f` at the inventory it came from".into()
            }
            OperateError::Healthy { .. } => {
                "if you mean it (a bad write to roll back), pass `--force`; `--plan` shows the steps first".into()
            }
            OperateError::Tool { .. } => {
                "install it (`apt-get install etcd-server etcd-client`) or check its output above".into()
            }
            OperateError::Restore { .. } => {
                "fix the cause above, then run the same `n3x backup restore` again (with `--force`): every step is safe to repeat".into()
            }
            OperateError::Unhealthy { .. } => {
                "bring every server back first (`n3x status` names what is wrong); `--force` rotates anyway".into()
            }
            OperateError::Rotate { .. } => {
                "fix the cause above, then run `n3x certs rotate` again (with `--force` while a member still does not \
                 answer): every step is safe to repeat"
                    .into()
            }
            OperateError::Secrets(e) => e.help(),
        }
    }
}
