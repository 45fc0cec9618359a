//! The real transport: the system `ssh` client, one connection per command.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{Command, Output, Remote, RemoteError, Target, shell_line};

/// How to run `ssh`. The defaults use the user's own configuration (`~/.ssh/config`,
/// known_hosts, agent); the lab points them at its own files.
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// The client; default `ssh` on PATH.
    pub program: PathBuf,
    /// `-F`: a configuration file instead of `~/.ssh/config`.
    pub config_file: Option<PathBuf>,
    /// `-i`, with `IdentitiesOnly=yes`.
    pub identity: Option<PathBuf>,
    /// `UserKnownHostsFile`: where the pinned host keys are.
    pub known_hosts: Option<PathBuf>,
    /// `ConnectTimeout`.
    pub connect_timeout: Duration,
    /// A command `ssh` runs under, e.g. `ip netns exec <operator namespace>` in the lab.
    pub wrapper: Vec<String>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            program: PathBuf::from("ssh"),
            config_file: None,
            identity: None,
            known_hosts: None,
            connect_timeout: Duration::from_secs(5),
            wrapper: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Ssh {
    pub opts: SshOptions,
}

/// `user@host:port` -> (`user@host`, port).
fn split_port(dest: &str) -> (&str, Option<&str>) {
    match dest.rsplit_once(':') {
        Some((d, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (d, Some(p)),
        _ => (dest, None),
    }
}

impl Ssh {
    pub fn new(opts: SshOptions) -> Ssh {
        Ssh { opts }
    }

    /// The whole command line that runs `cmd` on `target`.
    pub fn argv(&self, target: &Target, cmd: &Command) -> Vec<String> {
        let o = &self.opts;
        let mut a: Vec<String> = o.wrapper.clone();
        a.push(o.program.display().to_string());
        a.push("-T".into());
        let mut opt = |k: &str, v: String| {
            a.push("-o".into());
            a.push(format!("{k}={v}"));
        };
        opt("BatchMode", "yes".into());
        opt("StrictHostKeyChecking", "yes".into());
        opt("ControlMaster", "no".into());
        opt("ControlPath", "none".into());
        opt("ConnectTimeout", o.connect_timeout.as_secs().max(1).to_string());
        opt("ServerAliveInterval", "5".into());
        opt("ServerAliveCountMax", "2".into());
        if let Some(k) = &o.known_hosts {
            opt("UserKnownHostsFile", k.display().to_string());
        }
        if let Some(i) = &o.identity {
            opt("IdentitiesOnly", "yes".into());
            a.push("-i".into());
            a.push(i.display().to_string());
        }
        if let Some(f) = &o.config_file {
            a.push("-F".into());
            a.push(f.display().to_string());
        }
        let (dest, port) = split_port(&target.dest);
        if let Some(p) = port {
            a.push("-p".into());
            a.push(p.into());
        }
        a.push(dest.into());
        a.push("--".into());
        a.push(shell_line(&cmd.argv));
        a
    }
}

/// Sorts `ssh`'s own failures (exit 255) by what its message says.
fn classify(target: &Target, stderr: &str) -> RemoteError {
    let (host, dest) = (target.host.clone(), target.dest.clone());
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("ssh failed").trim().to_owned();
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || stderr.contains("Offending") {
        RemoteError::HostKeyChanged { host, dest, detail: last }
    } else if stderr.contains("host key is known") || stderr.contains("Host key verification failed") {
        RemoteError::HostKeyUnknown { host, dest }
    } else if stderr.contains("Permission denied") {
        RemoteError::Denied { host, dest, detail: last }
    } else {
        RemoteError::Unreachable { host, dest, detail: last }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Marks each part's output in a batch (see [`batch_script`]).
const MARK: &str = "@@n3x-part";

/// One shell line running `cmds` in turn: each part's output (standard error merged)
/// after a mark with its index, then a newline (an output may not end with one) and a line
/// with its exit status.
pub fn batch_script(cmds: &[Command]) -> String {
    cmds.iter()
        .enumerate()
        .map(|(i, c)| format!("echo '{MARK} {i}'; {} 2>&1; s=$?; echo; echo \"{MARK}-exit $s\"", c.display()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Splits a batch's output into one [`Output`] per command; a part without its exit line
/// did not finish (status -1).
pub fn split_batch(out: &str, n: usize) -> Vec<Output> {
    let mut parts: Vec<Output> =
        (0..n).map(|_| Output { status: -1, stdout: String::new(), stderr: String::new() }).collect();
    let (start, end) = (format!("{MARK} "), format!("{MARK}-exit "));
    let mut current: Option<usize> = None;
    for line in out.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if let Some(code) = bare.strip_prefix(&end) {
            if let Some(p) = current.take().and_then(|i| parts.get_mut(i)) {
                // The newline the script adds before the exit line.
                p.stdout.pop();
                p.status = code.trim().parse().unwrap_or(-1);
                if p.status != 0 {
                    p.stderr = p.stdout.clone();
                }
            }
        } else if let Some(i) = bare.strip_prefix(&start).and_then(|i| i.parse::<usize>().ok()) {
            current = (i < n).then_some(i);
        } else if let Some(p) = current.and_then(|i| parts.get_mut(i)) {
            p.stdout.push_str(line);
        }
    }
    parts
}

impl Remote for Ssh {
    fn run_all(&self, target: &Target, cmds: &[Command]) -> Result<Vec<Output>, RemoteError> {
        if cmds.len() < 2 || cmds.iter().any(|c| c.stdin.is_some()) {
            return cmds.iter().map(|c| self.run(target, c)).collect();
        }
        let timeout = cmds.iter().map(|c| c.timeout).sum();
        let one = Command::new(["sh".to_owned(), "-c".to_owned(), batch_script(cmds)], timeout);
        let out = self.run(target, &one)?;
        Ok(split_batch(&out.stdout, cmds.len()))
    }

    fn run(&self, target: &Target, cmd: &Command) -> Result<Output, RemoteError> {
        let argv = self.argv(target, cmd);
        let mut c = std::process::Command::new(&argv[0]);
        c.args(&argv[1..])
            .stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a timeout kills ssh and whatever it started (a ProxyCommand).
            .process_group(0);
        let mut child =
            c.spawn().map_err(|e| RemoteError::Spawn { program: argv[0].clone(), detail: e.to_string() })?;
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        if let (Some(input), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            // A host that stops reading fails the write; the exit status tells why.
            let _ = pipe.write_all(input);
        }
        let deadline = Instant::now() + cmd.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() >= deadline => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(RemoteError::Spawn { program: argv[0].clone(), detail: e.to_string() }),
            }
        };
        let Some(status) = status else {
            let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            return Err(RemoteError::Timeout {
                host: target.host.clone(),
                command: cmd.display(),
                secs: cmd.timeout.as_secs_f64().ceil() as u64,
            });
        };
        let stdout = String::from_utf8_lossy(&out.and_then(|h| h.join().ok()).unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err.and_then(|h| h.join().ok()).unwrap_or_default()).into_owned();
        let code = status.code().unwrap_or(-1);
        if code == 255 {
            return Err(classify(target, &stderr));
        }
        Ok(Output { status: code, stdout, stderr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_runs_in_one_shell_and_splits_back_per_command() {
        let t = Duration::from_secs(1);
        let cmds = [
            Command::new(["readlink", "-f", "/run/current-system"], t),
            Command::new(["systemctl", "is-active", "k3s"], t),
        ];
        assert_eq!(
            batch_script(&cmds),
            r#"echo '@@n3x-part 0'; readlink -f /run/current-system 2>&1; s=$?; echo; echo "@@n3x-part-exit $s"; echo '@@n3x-part 1'; systemctl is-active k3s 2>&1; s=$?; echo; echo "@@n3x-part-exit $s""#
        );
        // The real shell runs it, quoting and all.
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &batch_script(&[
                    Command::new(["echo", "it's"], t),
                    Command::new(["sh", "-c", "echo no >&2; exit 3"], t),
                    Command::new(["printf", "{}"], t),
                ]),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let parts = split_batch(&out, 3);
        assert_eq!((parts[0].status, parts[0].stdout.as_str()), (0, "it's\n"));
        assert_eq!((parts[1].status, parts[1].stderr.as_str()), (3, "no\n"));
        // An answer without a final newline (curl's JSON) comes back as it was.
        assert_eq!((parts[2].status, parts[2].stdout.as_str()), (0, "{}"));
        let cut = split_batch("@@n3x-part 0\nx\n\n@@n3x-part-exit 0\n@@n3x-part 1\npartial", 2);
        assert_eq!((cut[0].status, cut[1].status), (0, -1));
        assert!(split_batch("", 1)[0].status == -1);
    }

    fn t() -> Target {
        Target::new("n100-1", "root@192.168.200.11")
    }

    #[test]
    fn the_command_line_checks_keys_and_opens_its_own_connection() {
        let ssh = Ssh::default();
        let cmd = Command::new(["systemctl", "is-active", "k3s"], Duration::from_secs(10));
        assert_eq!(
            ssh.argv(&t(), &cmd).join(" "),
            "ssh -T -o BatchMode=yes -o StrictHostKeyChecking=yes -o ControlMaster=no -o ControlPath=none \
             -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=2 root@192.168.200.11 -- systemctl is-active k3s"
        );
        let lab = Ssh::new(SshOptions {
            known_hosts: Some("/run/n3x/c/ssh/known_hosts".into()),
            identity: Some("/run/n3x/c/ssh/operator".into()),
            wrapper: vec!["ip".into(), "netns".into(), "exec".into(), "n3x-c-operator".into()],
            ..SshOptions::default()
        });
        let argv =
            lab.argv(&Target::new("a", "admin@10.0.0.1:2222"), &Command::new(["echo", "a b"], Duration::from_secs(1)));
        assert_eq!(&argv[..4], ["ip", "netns", "exec", "n3x-c-operator"]);
        let tail = argv[argv.len() - 5..].join(" ");
        assert_eq!(tail, "-p 2222 admin@10.0.0.1 -- echo 'a b'");
        assert!(argv.contains(&"UserKnownHostsFile=/run/n3x/c/ssh/known_hosts".to_owned()));
        assert!(argv.windows(2).any(|w| w[0] == "-i" && w[1] == "/run/n3x/c/ssh/operator"));
    }

    #[test]
    fn ssh_failures_are_sorted_by_their_message() {
        let changed = "@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nOffending ED25519 key in /root/.ssh/known_hosts:3\nHost key verification failed.\n";
        assert!(matches!(classify(&t(), changed), RemoteError::HostKeyChanged { .. }));
        let unknown = "No ED25519 host key is known for 192.168.200.11 and you have requested strict checking.\nHost key verification failed.\n";
        assert!(matches!(classify(&t(), unknown), RemoteError::HostKeyUnknown { .. }));
        let denied = "root@192.168.200.11: Permission denied (publickey).\n";
        assert!(matches!(classify(&t(), denied), RemoteError::Denied { .. }));
        let refused = "ssh: connect to host 192.168.200.11 port 22: Connection refused\n";
        let e = classify(&t(), refused);
        assert_eq!(
            e.to_string(),
            "`n100-1` (root@192.168.200.11) is unreachable: ssh: connect to host 192.168.200.11 port 22: Connection refused"
        );
        assert!(e.help().contains("ssh root@192.168.200.11 true"));
    }

    #[test]
    fn a_hung_command_is_killed_at_its_timeout() {
        // A wrapper that never returns stands in for a host that never answers: the
        // transport's own timeout is what is tested.
        let started = Instant::now();
        let sleeper = Ssh::new(SshOptions {
            program: "sleep".into(),
            wrapper: vec!["sh".into(), "-c".into(), "sleep 30".into()],
            ..SshOptions::default()
        });
        let e = sleeper.run(&t(), &Command::new(["true"], Duration::from_millis(300))).unwrap_err();
        assert!(matches!(e, RemoteError::Timeout { secs: 1, .. }), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "the timeout was not kept");
    }
}
