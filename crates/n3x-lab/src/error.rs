//! Errors of the lab: each names the object, the command or the file involved, and the
//! binary turns it into a message with a fix and an exit code.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root: it creates network namespaces, links and nftables tables")]
    NotRoot,
    #[error("`{name}` was not found{}", .looked.as_ref().map(|l| format!(" (looked for {l})")).unwrap_or_default())]
    MissingBinary { name: String, looked: Option<String>, fix: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("lab record {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("another n3x command is working on this lab ({dir})")]
    Busy { dir: PathBuf },
    #[error("a lab of cluster `{cluster}` is already up")]
    AlreadyUp { cluster: String },
    #[error("no lab of cluster `{cluster}` is up")]
    NotUp { cluster: String },
    #[error("the {fabric} fabric cannot {what}")]
    Unsupported { fabric: String, what: String, fix: String },
    #[error("`{name}` already exists and was not created by this lab")]
    Collision { name: String },
    #[error("{0}")]
    Lab(String),
    /// An error the supervisor reported while building, carried back to `up`.
    #[error("{message}")]
    Supervisor { message: String, help: String, environment: bool },
}

impl LabError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io { context: context.into(), source }
    }

    /// The fix, in one line, for the message's `help:`.
    pub fn help(&self) -> String {
        match self {
            LabError::NotRoot => "run it as root, e.g. `sudo n3x lab ...`".into(),
            LabError::MissingBinary { fix, .. } => fix.clone(),
            LabError::Io { .. } => "check permissions and free space under /run/n3x".into(),
            LabError::Command { .. } => "see the command's message above; `n3x lab down` removes what was built".into(),
            LabError::State { .. } => "`n3x lab down` still removes the lab's namespaces and processes".into(),
            LabError::Busy { .. } => "wait for the other command to finish, or stop it".into(),
            LabError::AlreadyUp { .. } => "use it (`n3x lab status`), or run `n3x lab down` first".into(),
            LabError::NotUp { .. } => "start one with `n3x lab up`".into(),
            LabError::Unsupported { fix, .. } => fix.clone(),
            LabError::Collision { .. } => {
                "another lab or program owns that name: rename the cluster or remove the object yourself".into()
            }
            LabError::Lab(_) => "`n3x lab logs <host>` shows each service's log".into(),
            LabError::Supervisor { help, .. } => help.clone(),
        }
    }

    /// Whether the environment (privileges, binaries, kernel) is what is missing.
    pub fn is_environment(&self) -> bool {
        match self {
            LabError::NotRoot
            | LabError::MissingBinary { .. }
            | LabError::Unsupported { .. }
            | LabError::Collision { .. } => true,
            LabError::Supervisor { environment, .. } => *environment,
            _ => false,
        }
    }
}
