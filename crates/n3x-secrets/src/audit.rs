//! `n3x secrets check`: recipients, plaintext secrets in the repository, key permissions.
//! Every problem is a [`Problem`], one line each with its fix; nothing here prints.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::keys::SshPublicKey;
use crate::plan::{K3S_AGENT_TOKEN, Role};
use crate::repo::{Repo, read_identities};
use crate::sops::SopsFile;
use crate::{Zeroizing, scan};

/// One problem found, with its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    NoAdmins {
        inventory: String,
    },
    HostWithoutRecipient {
        inventory: String,
        host: String,
    },
    FileMissing {
        file: String,
    },
    FileUnreadable {
        file: String,
        message: String,
    },
    AdminCannotDecrypt {
        file: String,
        admin: String,
    },
    HostCannotDecrypt {
        file: String,
        host: String,
    },
    HostMustNotDecrypt {
        file: String,
        host: String,
        role: Role,
    },
    UnknownRecipient {
        file: String,
        recipient: String,
    },
    StrayKey {
        file: String,
        key: String,
    },
    MissingKey {
        file: String,
        key: String,
    },
    SopsYamlOutdated,
    SopsYamlMissing,
    LooseKeyMode {
        path: PathBuf,
        mode: u32,
        what: &'static str,
    },
    /// Decrypting with the admin key failed (message of the error).
    Decrypt {
        message: String,
    },
    AgentTokensDiffer {
        server_file: String,
        agent_file: String,
    },
    /// A plaintext secret in the repository: `path[:line]: message`.
    Plaintext {
        path: String,
        line: usize,
        message: String,
    },
    HostKeyMismatch {
        key: PathBuf,
        host: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoAdmins { inventory } => {
                write!(f, "{inventory}: `[secrets].admins` is empty; run `n3x secrets init`")
            }
            Problem::HostWithoutRecipient { inventory, host } => {
                write!(f, "{inventory}: host `{host}` has no `age` recipient; run `n3x secrets add-host {host} ...`")
            }
            Problem::FileMissing { file } => write!(f, "{file}: missing; run `n3x secrets tokens`"),
            Problem::FileUnreadable { file, message } => write!(f, "{file}: {message}"),
            Problem::AdminCannotDecrypt { file, admin } => {
                write!(f, "{file}: admin `{admin}` cannot decrypt it; run `n3x secrets tokens`")
            }
            Problem::HostCannotDecrypt { file, host } => {
                write!(f, "{file}: host `{host}` needs it but cannot decrypt it; run `n3x secrets tokens`")
            }
            Problem::HostMustNotDecrypt { file, host, role } => write!(
                f,
                "{file}: host `{host}` ({}) can decrypt it but must not; run `n3x secrets rotate` (it may have seen the tokens)",
                if *role == Role::Server { "server" } else { "agent" }
            ),
            Problem::UnknownRecipient { file, recipient } => {
                write!(f, "{file}: unknown recipient `{recipient}` can decrypt it; run `n3x secrets rotate`")
            }
            Problem::StrayKey { file, key } => write!(f, "{file}: holds `{key}`, which does not belong in this file"),
            Problem::MissingKey { file, key } => write!(f, "{file}: `{key}` is missing; run `n3x secrets rotate`"),
            Problem::SopsYamlOutdated => write!(f, ".sops.yaml: out of date with n3x.toml; run `n3x secrets tokens`"),
            Problem::SopsYamlMissing => write!(f, ".sops.yaml: missing; run `n3x secrets tokens`"),
            Problem::LooseKeyMode { path, mode, what } => {
                write!(f, "{}: {what} has mode {mode:04o}; run `chmod 600 {}`", path.display(), path.display())
            }
            Problem::Decrypt { message } => write!(f, "{message}"),
            Problem::AgentTokensDiffer { server_file, agent_file } => {
                write!(f, "{server_file} and {agent_file}: the agent tokens differ; run `n3x secrets tokens`")
            }
            Problem::Plaintext { path, line, message } if *line > 0 => write!(f, "{path}:{line}: {message}"),
            Problem::Plaintext { path, message, .. } => write!(f, "{path}: {message}"),
            Problem::HostKeyMismatch { key, host } => write!(
                f,
                "{}: does not match hosts.{host}.age; run `n3x secrets add-host {host} {}.pub`",
                key.display(),
                key.display()
            ),
        }
    }
}

#[derive(Debug, Default)]
pub struct Audit {
    pub problems: Vec<Problem>,
    /// No admin key was found: the files were not decrypted, their values not searched for.
    pub without_key: bool,
}

/// A recipient as a comparable principal: ssh-ed25519 keys become their ssh-to-age `age1`.
pub fn principal(r: &str) -> String {
    if r.starts_with("ssh-ed25519 ") {
        if let Ok(a) = SshPublicKey::parse(r).and_then(|k| k.to_age_recipient()) {
            return a;
        }
    }
    r.to_string()
}

/// Audits the repository. `admin_key`: the admin identity file, if one exists;
/// `host_key_dir`: where a host's generated extra-files tree would be.
pub fn audit(repo: &Repo, admin_key: Option<&Path>, host_key_dir: &dyn Fn(&str) -> Option<PathBuf>) -> Audit {
    let plan = &repo.plan;
    let inv = repo.path.display().to_string();
    let mut a = Audit::default();
    let p = &mut a.problems;
    if plan.admins.is_empty() {
        p.push(Problem::NoAdmins { inventory: inv.clone() });
    }
    for h in &plan.missing_age {
        p.push(Problem::HostWithoutRecipient { inventory: inv.clone(), host: h.clone() });
    }
    recipients(repo, p);
    match std::fs::read_to_string(repo.root.join(".sops.yaml")) {
        Ok(t) if t == plan.sops_yaml() => {}
        Ok(_) => p.push(Problem::SopsYamlOutdated),
        Err(_) => p.push(Problem::SopsYamlMissing),
    }
    // With an admin key: verify both files fully (MAC) and look for the values themselves.
    let mut known: Vec<(String, Zeroizing<String>)> = Vec::new();
    match admin_key {
        Some(kp) => {
            if let Some(mode) = scan::loose_permissions(kp) {
                p.push(Problem::LooseKeyMode { path: kp.to_path_buf(), mode, what: "admin key" });
            }
            values(repo, kp, p, &mut known);
        }
        None => a.without_key = true,
    }
    let known_refs: Vec<scan::Known<'_>> =
        known.iter().map(|(label, v)| scan::Known { label: label.clone(), value: v.as_str() }).collect();
    let allowed = scan::ignored_key_dirs(&repo.root);
    for f in scan::scan_tree(&repo.root, &allowed, &known_refs) {
        let path = f.path.strip_prefix(&repo.root).unwrap_or(&f.path).display().to_string();
        p.push(Problem::Plaintext { path, line: f.line, message: f.message });
    }
    host_keys(repo, host_key_dir, p);
    a
}

/// Each file against who must, and who only may, decrypt it.
fn recipients(repo: &Repo, p: &mut Vec<Problem>) {
    let plan = &repo.plan;
    let role_of = |age: &str| plan.hosts.iter().find(|h| h.age.as_deref() == Some(age));
    for spec in plan.files() {
        let file = spec.path.clone();
        let Ok(text) = std::fs::read_to_string(repo.abs(&spec.path)) else {
            p.push(Problem::FileMissing { file });
            continue;
        };
        let sops = match SopsFile::parse(&text) {
            Ok(f) => f,
            Err(e) => {
                p.push(Problem::FileUnreadable { file, message: e.to_string() });
                continue;
            }
        };
        let have: Vec<String> = sops.recipients().iter().map(|r| principal(r)).collect();
        for admin in plan.admins.iter().filter(|a| !have.contains(a)) {
            p.push(Problem::AdminCannotDecrypt { file: file.clone(), admin: admin.clone() });
        }
        for h in plan.hosts.iter().filter(|h| spec.readers.contains(&h.name)) {
            if h.age.as_ref().is_some_and(|age| !have.contains(age)) {
                p.push(Problem::HostCannotDecrypt { file: file.clone(), host: h.name.clone() });
            }
        }
        for r in have.iter().filter(|r| !spec.recipients.contains(r)) {
            p.push(match role_of(r) {
                Some(h) => Problem::HostMustNotDecrypt { file: file.clone(), host: h.name.clone(), role: h.role },
                None => Problem::UnknownRecipient { file: file.clone(), recipient: r.clone() },
            });
        }
        let keys = sops.top_level_keys();
        for k in keys.iter().filter(|k| !spec.keys.contains(&k.as_str())) {
            p.push(Problem::StrayKey { file: file.clone(), key: k.clone() });
        }
        for k in spec.keys.iter().filter(|k| !keys.iter().any(|x| x == *k)) {
            p.push(Problem::MissingKey { file: file.clone(), key: (*k).to_owned() });
        }
    }
}

/// Decrypts both files with the admin key (verifying their MACs); collects their values.
fn values(repo: &Repo, key: &Path, p: &mut Vec<Problem>, known: &mut Vec<(String, Zeroizing<String>)>) {
    let plan = &repo.plan;
    let ids = match read_identities(key) {
        Ok(ids) => ids,
        Err(e) => return p.push(Problem::Decrypt { message: e.to_string() }),
    };
    let mut agent_tokens = Vec::new();
    for spec in plan.files() {
        if !repo.abs(&spec.path).exists() {
            continue;
        }
        match repo.read_tokens(spec, &ids) {
            Ok(vals) => {
                for (k, v) in vals {
                    if k == K3S_AGENT_TOKEN {
                        agent_tokens.push(v.clone());
                    }
                    known.push((format!("`{k}` from {}", spec.path), v));
                }
            }
            Err(e) => p.push(Problem::Decrypt { message: e.to_string() }),
        }
    }
    if agent_tokens.len() == 2 && agent_tokens[0] != agent_tokens[1] {
        p.push(Problem::AgentTokensDiffer {
            server_file: plan.server.path.clone(),
            agent_file: plan.agent.path.clone(),
        });
    }
}

/// Generated host keys outside the repository: permissions, and that they match n3x.toml.
fn host_keys(repo: &Repo, host_key_dir: &dyn Fn(&str) -> Option<PathBuf>, p: &mut Vec<Problem>) {
    for h in &repo.plan.hosts {
        let Some(dir) = host_key_dir(&h.name) else { continue };
        let key = crate::locations::host_key_in(&dir);
        if !key.exists() {
            continue;
        }
        if let Some(mode) = scan::loose_permissions(&key) {
            p.push(Problem::LooseKeyMode { path: key.clone(), mode, what: "host key" });
        }
        let derived = std::fs::read_to_string(key.with_extension("pub"))
            .ok()
            .and_then(|t| SshPublicKey::parse(&t).ok())
            .and_then(|k| k.to_age_recipient().ok());
        if derived.is_some() && derived != h.age {
            p.push(Problem::HostKeyMismatch { key, host: h.name.clone() });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::repo::HostKey;

    #[test]
    fn a_fresh_repository_lists_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("n3x.toml");
        let text = include_str!("../../../n3x.toml");
        std::fs::write(&path, text).unwrap();
        let r = Repo::new(&path, text.into(), &n3x_model::analyze(text).resolve().unwrap()).unwrap();
        let a = audit(&r, None, &|_| None);
        assert!(a.without_key);
        assert!(matches!(a.problems[0], Problem::NoAdmins { .. }));
        assert_eq!(a.problems.iter().filter(|p| matches!(p, Problem::HostWithoutRecipient { .. })).count(), 5);
        assert!(a.problems.contains(&Problem::FileMissing { file: "secrets/k3s.yaml".into() }));
        assert!(a.problems.contains(&Problem::SopsYamlMissing));
    }

    #[test]
    fn a_complete_repository_is_clean_and_a_generated_key_is_checked() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("n3x.toml");
        let text = include_str!("../../../n3x.toml");
        std::fs::write(&path, text).unwrap();
        let mut r = Repo::new(&path, text.into(), &n3x_model::analyze(text).resolve().unwrap()).unwrap();
        let home = tempfile::tempdir().unwrap();
        let key = home.path().join("admin.txt");
        r.init(&key).unwrap();
        let keys = home.path().join("extra");
        for h in ["n100-1", "n100-2", "n100-3", "jetson-1", "jetson-2"] {
            r.add_host(h, HostKey::Generate { dir: keys.join(h), chosen: false }).unwrap();
        }
        r.tokens(false, &mut || panic!()).unwrap();
        let dirs = |h: &str| Some(keys.join(h));
        let a = audit(&r, Some(&key), &dirs);
        assert_eq!(a.problems, [], "{:#?}", a.problems);
        // A generated key that no longer matches the inventory.
        let other = crate::keys::Ed25519KeyPair::generate("x");
        let pub_path = keys.join("jetson-1/etc/ssh/ssh_host_ed25519_key.pub");
        std::fs::write(&pub_path, other.public.to_line()).unwrap();
        let a = audit(&r, Some(&key), &dirs);
        assert!(
            matches!(&a.problems[..], [Problem::HostKeyMismatch { host, .. }] if host == "jetson-1"),
            "{:?}",
            a.problems
        );
        assert!(a.problems[0].to_string().contains("run `n3x secrets add-host jetson-1"));
    }
}
