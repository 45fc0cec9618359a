//! Errors of the lab. Each variant carries what a user needs to act: the host, the
//! namespace, the command or the file involved. `help()` gives the fix in one line, and
//! `kind()` says which documented exit code the binary maps it to.

use std::path::PathBuf;

/// Which of the lab's documented outcomes an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The machine lacks what the lab needs (root, a binary, a kernel feature), or a name
    /// the lab needs is taken. Nothing was created.
    Environment,
    /// Bad usage: a value the user gave cannot work (unknown host, profile, scenario).
    Usage,
    /// A file could not be read or written.
    Io,
    /// The lab is not in the state the command needs, or it failed while running.
    Lab,
}

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
    #[error("netlink: {op} in namespace `{ns}` failed: {source}")]
    Netlink { ns: String, op: String, source: std::io::Error },
    #[error("lab record {path}: {message}")]
    State { path: PathBuf, message: String },
    #[error("another n3x command is working on lab `{cluster}` ({dir})")]
    Busy { cluster: String, dir: PathBuf },
    #[error("a lab of cluster `{cluster}` is already up")]
    AlreadyUp { cluster: String },
    #[error("an earlier lab of `{cluster}` did not finish (its record is in {})", .dir.display())]
    Unfinished { cluster: String, dir: PathBuf },
    #[error("no lab of cluster `{cluster}` is up{}", others_suffix(.others))]
    NotUp { cluster: String, others: Vec<String> },
    #[error("no lab is up")]
    NoLab,
    #[error("{} labs are up ({}); this command needs to know which", .labs.len(), .labs.join(", "))]
    WhichLab { labs: Vec<String> },
    #[error("the {fabric} fabric cannot {what}")]
    Unsupported { fabric: String, what: String, fix: String },
    #[error("`{name}` already exists and was not created by this lab")]
    Collision { name: String },
    #[error("`{host}` is not a host of lab `{cluster}`")]
    UnknownHost { host: String, cluster: String },
    #[error("lab `{cluster}` has no log for `{host}`")]
    NoLog { cluster: String, host: String },
    #[error("`{host}` is an agent: it runs no etcd member")]
    NotAServer { host: String },
    #[error("lab profile `{name}` does not exist")]
    UnknownProfile { name: String, known: Vec<String> },
    #[error("unknown scenario `{name}`")]
    UnknownScenario { name: String, known: Vec<String> },
    #[error("{flag} is {value}: {why}")]
    BadValue { flag: String, value: String, why: String },
    #[error("without an inventory, n3x cannot tell which hosts to cut `{hosts}` from")]
    PartitionFromWhom { hosts: String },
    #[error("the lab's options in {} are unreadable: {message}", .path.display())]
    BadOptions { path: PathBuf, message: String },
    #[error("etcd on `{host}` exited during start-up")]
    MemberExited { host: String, log: PathBuf },
    #[error("etcd formed no quorum in {secs} s ({detail})")]
    NoQuorum { secs: u64, detail: String },
    #[error("no write was acknowledged for {} agent(s) in {secs} s: {}", .agents.len(), preview(.agents))]
    FirstWrites { agents: Vec<String>, secs: u64 },
    #[error("no etcd member answers")]
    NoMemberAnswers,
    #[error("reading the probes' keys back through `{via}` failed: {message}")]
    ReadBack { via: String, message: String },
    #[error("no etcd leader to {action}")]
    NoLeader { action: String },
    #[error("the thread working in namespace `{ns}` died")]
    NamespaceThread { ns: String },
    #[error("the lab supervisor exited before the lab was ready{}", tail_suffix(.tail))]
    SupervisorExited { log: PathBuf, tail: String },
    /// An error the supervisor reported while building, carried back to `up`.
    #[error("{message}")]
    Supervisor { message: String, help: String, kind: ErrorKind },
    /// The supervisor refused a request of a running lab.
    #[error("the lab supervisor refused `{request}`: {message}")]
    Refused { request: String, message: String },
    #[error("the lab supervisor gave an unexpected answer to `{request}`")]
    UnexpectedAnswer { request: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: String, message: String },
    #[error("{} process(es) of the lab did not exit after SIGKILL: {}", .what.len(), .what.join(", "))]
    Survivors { what: Vec<String> },
    #[error("sshd on `{host}` did not start listening")]
    SshdDown { host: String, log: PathBuf },
    #[error("lab `{cluster}` runs without SSH, so nothing can be deployed to it")]
    NoSsh { cluster: String },
    #[error("the inventory does not match lab `{cluster}`: {detail}")]
    Mismatch { cluster: String, detail: String },
    #[error("`{host}` is not installed yet")]
    NotInstalled { host: String },
    #[error("the lab's etcd certificates: {what}: {message}")]
    Tls { what: String, message: String },
}

fn others_suffix(others: &[String]) -> String {
    if others.is_empty() { String::new() } else { format!(" (up: {})", others.join(", ")) }
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() { String::new() } else { format!("; its last lines:\n{tail}") }
}

fn preview(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        s.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    s
}

/// The commands that act on each of `labs`, for help lines.
fn down_commands(labs: &[String]) -> String {
    labs.iter().map(|l| format!("`n3x lab down --cluster {l}`")).collect::<Vec<_>>().join(" or ")
}

impl LabError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io { context: context.into(), source }
    }

    /// The fix, in one line, for the message's `help:`. Names the exact command that works.
    pub fn help(&self) -> String {
        match self {
            LabError::NotRoot => "run it as root (e.g. `sudo n3x lab ...`)".into(),
            LabError::MissingBinary { fix, .. } => fix.clone(),
            LabError::Io { .. } => "check permissions and free space under /run/n3x".into(),
            LabError::Command { .. } | LabError::Netlink { .. } => {
                "see the message above; `n3x lab down` removes what was built".into()
            }
            LabError::State { .. } => "`n3x lab down` still removes the lab's namespaces and processes".into(),
            LabError::Busy { .. } => "wait for the other command to finish, or stop it".into(),
            LabError::AlreadyUp { cluster } => {
                format!(
                    "use it (`n3x lab status --cluster {cluster}`), or remove it with `n3x lab down --cluster {cluster}`"
                )
            }
            LabError::Unfinished { cluster, .. } => {
                format!("remove what is left with `n3x lab down --cluster {cluster}`, then try again")
            }
            LabError::NotUp { others, .. } if !others.is_empty() => {
                format!("name one that is up, e.g. `--cluster {}`", others[0])
            }
            LabError::NotUp { .. } | LabError::NoLab => "start one with `n3x lab up`".into(),
            LabError::WhichLab { labs } => format!(
                "add `--cluster NAME`, e.g. `n3x lab status --cluster {}`; to remove one: {}",
                labs[0],
                down_commands(labs)
            ),
            LabError::Unsupported { fix, .. } => fix.clone(),
            LabError::Collision { .. } => {
                "another lab or program owns that name: rename the cluster or remove the object yourself".into()
            }
            LabError::UnknownHost { cluster, .. } | LabError::NoLog { cluster, .. } => {
                format!("`n3x lab status --cluster {cluster}` lists the hosts")
            }
            LabError::NotAServer { .. } => "name a server (`n3x lab status` shows the roles)".into(),
            LabError::UnknownProfile { known, .. } => format!("use one of {}", known.join(", ")),
            LabError::UnknownScenario { known, .. } => format!("the scenarios are {}", known.join(", ")),
            LabError::BadValue { .. } => "fix the value".into(),
            LabError::PartitionFromWhom { hosts } => {
                format!("add `--from host,host` (e.g. `n3x lab partition {hosts} --from ...`)")
            }
            LabError::BadOptions { .. } => "this is a bug in n3x; `n3x lab down` removes the lab".into(),
            LabError::MemberExited { log, .. } => format!("its log is {}", log.display()),
            LabError::NoQuorum { .. } | LabError::FirstWrites { .. } | LabError::NoMemberAnswers => {
                "`n3x lab logs <host>` shows each service's log".into()
            }
            LabError::ReadBack { .. } => "`n3x lab status` shows which members answer".into(),
            LabError::NoLeader { .. } => "wait for the members to elect one (`n3x lab status`)".into(),
            LabError::NamespaceThread { .. } => "this is a bug in n3x; `n3x lab down` removes the lab".into(),
            LabError::SupervisorExited { log, .. } => format!("the whole log is {}", log.display()),
            LabError::Supervisor { help, .. } => help.clone(),
            LabError::Refused { .. } => "see the message; `n3x lab status` shows the lab".into(),
            LabError::UnexpectedAnswer { .. } => {
                "the supervisor may be of another n3x version: `n3x lab down`, then `n3x lab up`".into()
            }
            LabError::Encode { .. } => "this is a bug in n3x; please report it".into(),
            LabError::Survivors { .. } => "kill them by hand (`kill -9 PID`), then run `n3x lab down` again".into(),
            LabError::SshdDown { log, .. } => format!("its log is {}", log.display()),
            LabError::NoSsh { cluster } => {
                format!(
                    "`n3x lab down --cluster {cluster}`, then `n3x lab up --ssh on` (SSH is on by default up to 100 hosts)"
                )
            }
            LabError::Mismatch { .. } => {
                "a lab deploy changes settings of the hosts the lab runs; bring a lab of this inventory up first".into()
            }
            LabError::NotInstalled { host } => format!("install it first: `n3x install --lab {host}`"),
            LabError::Tls { .. } => {
                "`n3x lab down`, then `n3x lab up`: a new lab makes a new CA and certificates".into()
            }
        }
    }

    /// Which documented outcome this error is (the binary maps it to an exit code).
    pub fn kind(&self) -> ErrorKind {
        match self {
            LabError::NotRoot
            | LabError::MissingBinary { .. }
            | LabError::Unsupported { .. }
            | LabError::Collision { .. } => ErrorKind::Environment,
            LabError::Supervisor { kind, .. } => *kind,
            LabError::UnknownProfile { .. }
            | LabError::UnknownScenario { .. }
            | LabError::BadValue { .. }
            | LabError::PartitionFromWhom { .. }
            | LabError::Mismatch { .. } => ErrorKind::Usage,
            LabError::Io { .. } => ErrorKind::Io,
            _ => ErrorKind::Lab,
        }
    }

    /// Whether the environment (privileges, binaries, kernel) is what is missing.
    pub fn is_environment(&self) -> bool {
        self.kind() == ErrorKind::Environment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_commands_that_work() {
        let e = LabError::WhichLab { labs: vec!["gen".into(), "n3x".into()] };
        assert_eq!(e.to_string(), "2 labs are up (gen, n3x); this command needs to know which");
        let h = e.help();
        assert!(h.contains("`n3x lab down --cluster gen` or `n3x lab down --cluster n3x`"), "{h}");
        let e = LabError::AlreadyUp { cluster: "gen".into() };
        assert!(e.help().contains("`n3x lab down --cluster gen`"));
        let e = LabError::NotUp { cluster: "n3x".into(), others: vec!["gen".into()] };
        assert_eq!(e.to_string(), "no lab of cluster `n3x` is up (up: gen)");
        assert!(e.help().contains("--cluster gen"));
    }

    #[test]
    fn kinds_map_to_outcomes() {
        assert_eq!(LabError::NotRoot.kind(), ErrorKind::Environment);
        assert_eq!(LabError::UnknownScenario { name: "x".into(), known: vec![] }.kind(), ErrorKind::Usage);
        assert_eq!(LabError::io("x", std::io::Error::other("y")).kind(), ErrorKind::Io);
        assert_eq!(LabError::NoLab.kind(), ErrorKind::Lab);
        let long: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
        let e = LabError::FirstWrites { agents: long, secs: 15 };
        assert!(e.to_string().ends_with("a7 and 2 more"), "{e}");
    }
}
