//! The one error path of the binary: every command returns `Result<_, Error>`, and `main`
//! renders the error once (message, fix) and maps it to its documented exit code.

use n3x_deploy::Outcome as DeployOutcome;
use n3x_lab::{ErrorKind as LabKind, LabError};
use n3x_operate::Kind as OperateKind;
use n3x_secrets::ErrorKind as SecretsKind;

use crate::exit;
use crate::inventory::{LoadError, Purpose, SourceError};

#[derive(Debug)]
pub enum Error {
    /// The inventory could not be read.
    Source(SourceError),
    /// The inventory has errors; `diagnostics` is their rendering.
    Inventory {
        name: String,
        purpose: Purpose,
        diagnostics: String,
    },
    Lab(LabError),
    /// `lab up` (or `run`) failed, and removing what it built may have failed too.
    LabUp(Box<n3x_lab::lifecycle::UpFailed>),
    Secrets(n3x_secrets::Error),
    /// A deploy or an install stopped; its outcome is the exit code.
    Deploy(n3x_deploy::DeployError),
    /// `status` or `backup` failed.
    Operate(n3x_operate::OperateError),
    /// A value the user gave cannot work.
    Usage {
        message: String,
        help: String,
    },
}

impl From<LabError> for Error {
    fn from(e: LabError) -> Self {
        Error::Lab(e)
    }
}

impl From<n3x_operate::OperateError> for Error {
    fn from(e: n3x_operate::OperateError) -> Self {
        Error::Operate(e)
    }
}

impl From<n3x_secrets::Error> for Error {
    fn from(e: n3x_secrets::Error) -> Self {
        Error::Secrets(e)
    }
}

impl From<LoadError> for Error {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Source(e) => Error::Source(e),
            LoadError::Invalid { name, purpose, diagnostics } => Error::Inventory { name, purpose, diagnostics },
        }
    }
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        Error::Source(e)
    }
}

fn lab_code(e: &LabError) -> u8 {
    match e.kind() {
        LabKind::Environment => exit::ENVIRONMENT,
        LabKind::Usage | LabKind::Io => exit::USAGE_OR_IO,
        LabKind::Lab => exit::LAB,
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Source(_) | Error::Usage { .. } => exit::USAGE_OR_IO,
            Error::Inventory { .. } => exit::INVENTORY,
            Error::Lab(e) => lab_code(e),
            // Something the lab built may be left: that is what the user must act on.
            Error::LabUp(f) if !f.teardown.ok() => exit::LAB,
            Error::LabUp(f) => lab_code(&f.error),
            Error::Secrets(e) => match e.kind() {
                SecretsKind::Usage => exit::USAGE_OR_IO,
                SecretsKind::Problem => exit::INVENTORY,
            },
            Error::Deploy(e) => match e.outcome() {
                DeployOutcome::Refused => exit::REFUSED,
                DeployOutcome::RolledBack => exit::ROLLED_BACK,
                DeployOutcome::Interrupted => exit::RESUMABLE,
                DeployOutcome::Usage => exit::USAGE_OR_IO,
            },
            Error::Operate(e) => match e.kind() {
                OperateKind::Usage => exit::USAGE_OR_IO,
                OperateKind::Environment => exit::ENVIRONMENT,
                OperateKind::Invalid => exit::BACKUP_INVALID,
                OperateKind::Refused => exit::REFUSED,
                OperateKind::Unreachable => exit::UNREACHABLE,
                OperateKind::Interrupted => exit::RESUMABLE,
            },
        }
    }

    /// The whole report: the problem, its fix, and anything that went wrong after it.
    pub fn render(&self) -> String {
        let line = |message: &str, help: &str| format!("error: {message}\n  help: {help}\n");
        match self {
            Error::Source(e) => line(&e.to_string(), &e.help()),
            Error::Inventory { name, purpose, diagnostics } => {
                format!(
                    "{diagnostics}{}",
                    line(&format!("cannot {} `{name}`: it has errors", purpose.verb()), purpose.help())
                )
            }
            Error::Lab(e) => line(&e.to_string(), &e.help()),
            Error::LabUp(f) => {
                let mut s = line(&f.error.to_string(), &f.error.help());
                for e in &f.teardown.errors {
                    s.push_str(&line(&format!("removing the lab: {e}"), &e.help()));
                }
                if !f.teardown.ok() {
                    s.push_str("  note: part of the lab is left; `n3x lab down` removes it\n");
                }
                s
            }
            Error::Secrets(e) => line(&e.to_string(), &e.help()),
            Error::Deploy(e) => line(&e.to_string(), &e.help()),
            Error::Operate(e) => line(&e.to_string(), &e.help()),
            Error::Usage { message, help } => line(message, help),
        }
    }
}
