//! Running commands on the cluster's hosts through the system `ssh` client, so the user's
//! `~/.ssh/config`, agents and jump hosts work as they do for them.
//!
//! - Host keys are always checked (`StrictHostKeyChecking=yes`): an unknown or changed
//!   key is an error naming the host and the fix, never a prompt or a silent accept.
//! - Every command has a timeout: connecting, running and answering together; past it the
//!   client is killed and the error names the host and the command.
//! - Each command opens its own connection (`ControlMaster=no`), so a gate that checks "sshd
//!   answers" after a switch really opens a new session.
//!
//! [`Remote`] is the seam: [`Ssh`] is the real one; tests use a recording fake.

mod quote;
mod ssh;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

use std::time::Duration;

pub use quote::{quote, shell_line};
pub use ssh::{Ssh, SshOptions, batch_script, split_batch};

/// A host to reach: its name in the inventory and where SSH goes (`user@host[:port]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub dest: String,
}

impl Target {
    pub fn new(host: impl Into<String>, dest: impl Into<String>) -> Target {
        Target { host: host.into(), dest: dest.into() }
    }
}

/// A command for a host: its argv (quoted for the remote shell by the transport), an
/// optional standard input, and how long it may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl Command {
    pub fn new<I, S>(argv: I, timeout: Duration) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command { argv: argv.into_iter().map(Into::into).collect(), stdin: None, timeout }
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(input.into());
        self
    }

    /// The command as one line, for messages.
    pub fn display(&self) -> String {
        shell_line(&self.argv)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not give an answer, with what the user needs to act.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RemoteError {
    #[error("`{host}` ({dest}) is unreachable: {detail}")]
    Unreachable { host: String, dest: String, detail: String },
    #[error("the SSH host key of `{host}` ({dest}) is not the one on record: {detail}")]
    HostKeyChanged { host: String, dest: String, detail: String },
    #[error("the SSH host key of `{host}` ({dest}) is not known")]
    HostKeyUnknown { host: String, dest: String },
    #[error("`{host}` ({dest}) refused the login: {detail}")]
    Denied { host: String, dest: String, detail: String },
    #[error("`{command}` on `{host}` took longer than {secs} s")]
    Timeout { host: String, command: String, secs: u64 },
    #[error("`{command}` on `{host}` failed (exit {status}): {stderr}")]
    Failed { host: String, command: String, status: i32, stderr: String },
    #[error("cannot start `{program}`: {detail}")]
    Spawn { program: String, detail: String },
}

impl RemoteError {
    /// The fix, in one line.
    pub fn help(&self) -> String {
        match self {
            RemoteError::Unreachable { dest, .. } => {
                format!("check that the host is up and that `ssh {dest} true` works from here")
            }
            RemoteError::HostKeyChanged { dest, .. } => format!(
                "if the host was reinstalled, remove its old key (`ssh-keygen -R {}`) and pin the new one; otherwise someone may be in between",
                host_part(dest)
            ),
            RemoteError::HostKeyUnknown { dest, .. } => format!(
                "pin the host's key in known_hosts first (n3x install does; or `ssh-keyscan {} >> ~/.ssh/known_hosts` after checking its fingerprint)",
                host_part(dest)
            ),
            RemoteError::Denied { dest, .. } => {
                format!(
                    "check that your key is in `[access].ssh_keys` and loaded (`ssh-add -l`), then `ssh {dest} true`"
                )
            }
            RemoteError::Timeout { .. } => "the host may be overloaded or cut off; check it, then retry".into(),
            RemoteError::Failed { .. } => "see the command's message above".into(),
            RemoteError::Spawn { .. } => "install the OpenSSH client (`apt-get install openssh-client`)".into(),
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            RemoteError::Unreachable { host, .. }
            | RemoteError::HostKeyChanged { host, .. }
            | RemoteError::HostKeyUnknown { host, .. }
            | RemoteError::Denied { host, .. }
            | RemoteError::Timeout { host, .. }
            | RemoteError::Failed { host, .. } => Some(host),
            RemoteError::Spawn { .. } => None,
        }
    }
}

/// `user@host:port` -> `host` (the known_hosts name; a port makes it `[host]:port`).
pub fn host_part(dest: &str) -> String {
    let after_user = dest.rsplit_once('@').map_or(dest, |(_, h)| h);
    match after_user.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => format!("[{h}]:{port}"),
        _ => after_user.to_owned(),
    }
}

/// The `i`-th answer of [`Remote::run_all`]: its standard output when it exited 0, else
/// why not ("exit N: what it printed", or no answer when the connection broke first).
pub fn answer(outs: &[Output], i: usize) -> Result<&str, String> {
    match outs.get(i) {
        Some(o) if o.status == 0 => Ok(o.stdout.as_str()),
        Some(o) => Err(format!("exit {}: {}", o.status, o.stderr.trim())),
        None => Err("no answer (the connection broke)".to_owned()),
    }
}

/// Commands on hosts. The real one is [`Ssh`]; tests use `fake::Fake`.
pub trait Remote: Send + Sync {
    /// Runs `cmd` on `target`. A command that ran and exited non-zero is `Ok` with its
    /// status; [`RemoteError::Failed`] is for callers that want it (`run_ok`).
    fn run(&self, target: &Target, cmd: &Command) -> Result<Output, RemoteError>;

    /// Runs several commands that read no standard input, each with its own output; a
    /// transport error fails them all. [`Ssh`] sends them over one connection (one
    /// handshake instead of one each); this default runs them one by one.
    fn run_all(&self, target: &Target, cmds: &[Command]) -> Result<Vec<Output>, RemoteError> {
        cmds.iter().map(|c| self.run(target, c)).collect()
    }

    /// Runs `cmd`, and treats a non-zero exit as an error.
    fn run_ok(&self, target: &Target, cmd: &Command) -> Result<Output, RemoteError> {
        let out = self.run(target, cmd)?;
        if out.status == 0 {
            Ok(out)
        } else {
            Err(RemoteError::Failed {
                host: target.host.clone(),
                command: cmd.display(),
                status: out.status,
                stderr: out.stderr.trim().chars().take(400).collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_names() {
        assert_eq!(host_part("root@192.168.200.11"), "192.168.200.11");
        assert_eq!(host_part("admin@n100-1.lan:2222"), "[n100-1.lan]:2222");
        assert_eq!(host_part("n100-1"), "n100-1");
    }
}
