//! The workflows of `n3x secrets` on a repository (the directory holding `n3x.toml`):
//! `init`, `add-host`, `tokens`/`rotate` and `decrypt`. Each returns what it did, for the
//! binary to print; none prints, and none puts a secret in an error.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use n3x_model::Resolved;
use n3x_model::model::Role as ModelRole;

use crate::inventory::{Change, InventoryEdit};
use crate::keys::{Ed25519KeyPair, Identities, SshPublicKey};
use crate::plan::{FileSpec, Host, K3S_AGENT_TOKEN, K3S_TOKEN, Plan, Role};
use crate::sops::{SopsFile, Value};
use crate::{Error, Zeroizing, atomic, scan};

/// The inventory file, its directory, and what the secrets need from it.
#[derive(Debug)]
pub struct Repo {
    pub path: PathBuf,
    pub root: PathBuf,
    text: String,
    pub cluster: String,
    pub plan: Plan,
}

/// The secrets' view of a resolved inventory.
fn plan_of(resolved: &Resolved) -> Result<Plan, Error> {
    let hosts: Vec<Host> = resolved
        .hosts
        .iter()
        .map(|h| Host {
            name: h.name.clone(),
            role: if h.role == ModelRole::Server { Role::Server } else { Role::Agent },
            age: h.age.clone(),
        })
        .collect();
    Plan::new(&resolved.secrets.file, &resolved.secrets.agent_file, &resolved.secrets.admins, &hosts)
}

impl Repo {
    /// The repository of the inventory at `path` (already read and resolved by the caller,
    /// who showed its diagnostics if it had errors). `-` (standard input) cannot be edited.
    pub fn new(path: &Path, text: String, resolved: &Resolved) -> Result<Repo, Error> {
        if path == Path::new("-") {
            return Err(Error::InventoryFromStdin);
        }
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let plan = plan_of(resolved).map_err(|e| e.in_file(path))?;
        Ok(Repo { path: path.to_path_buf(), root, text, cluster: resolved.cluster.name.clone(), plan })
    }

    /// Writes the edited inventory atomically and re-derives the plan from it.
    fn save(&mut self, edit: &InventoryEdit) -> Result<(), Error> {
        let text = edit.to_string();
        atomic::write(&self.path, text.as_bytes(), None).map_err(|e| Error::io("write", &self.path, e))?;
        let resolved =
            n3x_model::analyze(&text).resolve().map_err(|_| Error::InventoryErrors { path: self.path.clone() })?;
        self.plan = plan_of(&resolved).map_err(|e| e.in_file(&self.path))?;
        self.text = text;
        Ok(())
    }

    fn edit(&self) -> Result<InventoryEdit, Error> {
        InventoryEdit::parse(&self.text).map_err(|e| e.in_file(&self.path))
    }

    /// A path relative to the repository.
    pub fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes `.sops.yaml` if it differs from the plan's; true if written.
    pub fn write_sops_yaml(&self) -> Result<bool, Error> {
        let path = self.root.join(".sops.yaml");
        let text = self.plan.sops_yaml();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        atomic::write(&path, text.as_bytes(), Some(0o644)).map_err(|e| Error::io("write", &path, e))?;
        Ok(true)
    }

    pub fn token_files_exist(&self) -> bool {
        self.plan.files().iter().any(|f| self.abs(&f.path).exists())
    }

    /// Decrypts `spec`'s file and returns its values for `spec.keys` (all must be strings).
    pub fn read_tokens(
        &self,
        spec: &FileSpec,
        ids: &Identities,
    ) -> Result<Vec<(&'static str, Zeroizing<String>)>, Error> {
        let path = self.abs(&spec.path);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let file = SopsFile::parse(&text).map_err(|e| e.in_file(&path))?;
        let docs = file.decrypt(ids).map_err(|e| e.in_file(&path))?;
        let doc = docs.first().cloned().unwrap_or(Value::Map(Vec::new()));
        let mut out = Vec::new();
        for k in &spec.keys {
            match doc.get(k) {
                Some(Value::Str(s)) if !s.is_empty() => out.push((*k, s.clone())),
                _ => return Err(Error::MissingToken { file: path, key: (*k).to_owned() }),
            }
        }
        Ok(out)
    }
}

/// Reads an identity file (age keys or an SSH private key).
pub fn read_identities(path: &Path) -> Result<Identities, Error> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io("read key file", path, e))?);
    Identities::parse(&text).map_err(|e| e.in_file(path))
}

/// The admin identity at `key` (or the default location), which must exist.
pub fn admin_identities(key: Option<&Path>, default: Option<PathBuf>) -> Result<Identities, Error> {
    let path = key
        .map(Path::to_path_buf)
        .or(default)
        .ok_or_else(|| Error::NoHome { what: "the admin key is".into(), fix: "pass --key PATH".into() })?;
    if !path.exists() {
        return Err(Error::NoAdminKey { path });
    }
    read_identities(&path)
}

// ---- init ----

#[derive(Debug)]
pub struct InitOutcome {
    pub key_path: PathBuf,
    pub created: bool,
    pub recipient: String,
    /// Mode of an existing key file that others may read.
    pub loose_mode: Option<u32>,
    pub admin_added: bool,
    pub sops_yaml_written: bool,
    /// The token files exist and must be re-encrypted for the new admin.
    pub reencrypt: bool,
}

impl Repo {
    /// Creates the admin identity at `key_path` (or reuses it) and adds its recipient to
    /// `[secrets].admins`.
    pub fn init(&mut self, key_path: &Path) -> Result<InitOutcome, Error> {
        let (recipient, created, loose_mode) = if key_path.exists() {
            let ids = read_identities(key_path)?;
            let Some(r) = ids.recipients.first().filter(|r| r.starts_with("age1")) else {
                return Err(Error::NotAnAgeIdentity { path: key_path.to_path_buf() });
            };
            (r.clone(), false, scan::loose_permissions(key_path))
        } else {
            if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                atomic::create_dir_all(dir, 0o700).map_err(|e| Error::io("create", dir, e))?;
            }
            let (text, recipient) = crate::keys::generate_age_identity(&crate::sops::rfc3339_utc(SystemTime::now()));
            atomic::write(key_path, text.as_bytes(), Some(0o600)).map_err(|e| Error::io("write", key_path, e))?;
            (recipient, true, None)
        };
        let mut edit = self.edit()?;
        let change = edit.add_admin(&recipient).map_err(|e| e.in_file(&self.path))?;
        let admin_added = change != Change::Unchanged;
        if admin_added {
            self.save(&edit)?;
        }
        let sops_yaml_written = self.write_sops_yaml()?;
        Ok(InitOutcome {
            key_path: key_path.to_path_buf(),
            created,
            recipient,
            loose_mode,
            admin_added,
            sops_yaml_written,
            reencrypt: admin_added && self.token_files_exist(),
        })
    }
}

// ---- add-host ----

/// Where a host's public key comes from.
#[derive(Debug)]
pub enum HostKey {
    /// `ssh-ed25519 AAAA...`, or a file holding it.
    Given(String),
    /// Generate a pair into `dir` (an nixos-anywhere extra-files tree).
    Generate { dir: PathBuf, chosen: bool },
}

#[derive(Debug)]
pub struct AddHostOutcome {
    pub recipient: String,
    pub change: Change,
    pub sops_yaml_written: bool,
    /// What else happened, one line each (generated key, `.gitignore`, advice).
    pub notes: Vec<String>,
    pub reencrypt: bool,
}

/// `path` relative to `root` when it lies inside it (both made absolute first).
pub fn inside(root: &Path, path: &Path) -> Option<String> {
    let root = std::fs::canonicalize(root).ok()?;
    let mut abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().ok()?.join(path) };
    // The directory may not exist yet: canonicalize its nearest existing ancestor.
    let mut tail = Vec::new();
    while !abs.exists() {
        tail.push(abs.file_name()?.to_os_string());
        abs = abs.parent()?.to_path_buf();
    }
    let mut abs = std::fs::canonicalize(abs).ok()?;
    abs.extend(tail.iter().rev());
    abs.strip_prefix(&root).ok().map(|r| r.to_string_lossy().into_owned())
}

/// Makes `root/.gitignore` ignore the key directory `rel`, before the key exists. Returns
/// whether it changed the file.
pub fn ignore_key_dir(root: &Path, rel: &str) -> Result<bool, Error> {
    let target = root.join(rel.trim_matches('/'));
    if scan::ignored_key_dirs(root).contains(&target) {
        return Ok(false);
    }
    let gi = root.join(".gitignore");
    let mut text = std::fs::read_to_string(&gi).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&scan::gitignore_entry(rel));
    atomic::write(&gi, text.as_bytes(), None).map_err(|e| Error::io("write", &gi, e))?;
    Ok(true)
}

impl Repo {
    /// Records `host`'s age recipient, derived from its ed25519 SSH host key.
    pub fn add_host(&mut self, host: &str, key: HostKey) -> Result<AddHostOutcome, Error> {
        if !self.plan.hosts.iter().any(|h| h.name == host) {
            return Err(Error::UnknownHost {
                host: host.to_owned(),
                inventory: self.path.clone(),
                known: self.plan.hosts.iter().map(|h| h.name.clone()).collect(),
            });
        }
        let mut notes = Vec::new();
        let public = match key {
            HostKey::Generate { dir, chosen } => self.generate_host_key(host, &dir, chosen, &mut notes)?,
            HostKey::Given(arg) => {
                let text = if Path::new(&arg).is_file() {
                    std::fs::read_to_string(&arg).map_err(|e| Error::io("read", Path::new(&arg), e))?
                } else {
                    arg
                };
                if text.contains("PRIVATE KEY") {
                    return Err(Error::PrivateKeyGiven);
                }
                SshPublicKey::parse(&text)?
            }
        };
        let recipient = public.to_age_recipient()?;
        let mut edit = self.edit()?;
        let change = edit.set_host_age(host, &recipient).map_err(|e| e.in_file(&self.path))?;
        if change != Change::Unchanged {
            self.save(&edit)?;
        }
        let sops_yaml_written = self.write_sops_yaml()?;
        let reencrypt = change != Change::Unchanged && self.token_files_exist();
        Ok(AddHostOutcome { recipient, change, sops_yaml_written, notes, reencrypt })
    }

    fn generate_host_key(
        &self,
        host: &str,
        dir: &Path,
        chosen: bool,
        notes: &mut Vec<String>,
    ) -> Result<SshPublicKey, Error> {
        let ssh_dir = dir.join("etc/ssh");
        let key_path = crate::locations::host_key_in(dir);
        if key_path.exists() {
            return Err(Error::HostKeyExists { path: key_path, host: host.to_owned() });
        }
        if let Some(rel) = inside(&self.root, dir) {
            // Inside the repository: ignore it before the key exists. nixos-anywhere copies
            // DIR's contents to `/`, so the ignore file must not go inside DIR.
            if ignore_key_dir(&self.root, &rel)? {
                notes.push(format!("{}: ignores /{rel}/", self.root.join(".gitignore").display()));
            }
            notes.push(
                "note: the key directory is inside the repository; a flake outside git would copy it into the world-readable Nix store, so prefer the default location".into(),
            );
        } else if !chosen {
            if let Some(parent) = dir.parent() {
                // The private part of the path: only the owner may list or enter it.
                atomic::create_dir_all(parent, 0o700).map_err(|e| Error::io("create", parent, e))?;
            }
        }
        // DIR and etc/ssh become / and /etc/ssh on the host: the usual 0755.
        atomic::create_dir_all(&ssh_dir, 0o755).map_err(|e| Error::io("create", &ssh_dir, e))?;
        let pair = Ed25519KeyPair::generate(&format!("root@{host}"));
        atomic::write(&key_path, pair.to_openssh().as_bytes(), Some(0o600))
            .map_err(|e| Error::io("write", &key_path, e))?;
        let pub_path = ssh_dir.join("ssh_host_ed25519_key.pub");
        atomic::write(&pub_path, format!("{}\n", pair.public.to_line()).as_bytes(), Some(0o644))
            .map_err(|e| Error::io("write", &pub_path, e))?;
        notes.push(format!("host key: {} (0600) and .pub", key_path.display()));
        notes.push(format!("install with: nixos-anywhere --extra-files {} ...", dir.display()));
        Ok(pair.public.clone())
    }
}

// ---- tokens / rotate ----

/// What to do with the tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAction {
    /// New random tokens. `orphan_agent_file`: the agent file exists without the server
    /// file (both get new tokens).
    Generate { orphan_agent_file: bool },
    /// Decrypt the existing tokens and keep them (re-encrypting if recipients changed).
    Keep,
}

/// The keep/rotate decision: `rotate` always makes new tokens; without it the tokens in
/// the server file are kept, and only a missing server file means new ones.
pub fn token_action(rotate: bool, server_exists: bool, agent_exists: bool) -> TokenAction {
    if rotate || !server_exists {
        TokenAction::Generate { orphan_agent_file: !rotate && agent_exists }
    } else {
        TokenAction::Keep
    }
}

/// Whether two recipient lists hold the same recipients.
pub fn same_recipients(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

#[derive(Debug)]
pub struct WrittenFile {
    pub path: String,
    pub keys: Vec<&'static str>,
    pub recipients: usize,
    pub readers: Vec<String>,
}

#[derive(Debug)]
pub struct TokensOutcome {
    pub action: TokenAction,
    /// Both files already held the tokens for exactly the right recipients.
    pub up_to_date: bool,
    pub written: Vec<WrittenFile>,
    pub sops_yaml_written: bool,
    /// Hosts that cannot read their token yet (no age recipient).
    pub missing_age: Vec<String>,
    pub rotated: bool,
}

/// The recipients a SOPS file is encrypted to, if it parses.
pub fn file_recipients(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    SopsFile::parse(&text).ok().map(|f| f.recipients())
}

impl Repo {
    /// Writes both token files, encrypted to exactly the hosts that need them. `ids` is
    /// asked for only when existing tokens must be decrypted.
    pub fn tokens(
        &self,
        rotate: bool,
        ids: &mut dyn FnMut() -> Result<Identities, Error>,
    ) -> Result<TokensOutcome, Error> {
        let plan = &self.plan;
        if plan.admins.is_empty() {
            return Err(Error::NoAdmins { inventory: self.path.clone() });
        }
        let server_path = self.abs(&plan.server.path);
        let agent_path = self.abs(&plan.agent.path);
        let action = token_action(rotate, server_path.exists(), agent_path.exists());
        let mut up_to_date = false;
        let (token, agent_token) = match action {
            TokenAction::Generate { .. } => (crate::generate_token(), crate::generate_token()),
            TokenAction::Keep => {
                let ids = ids()?;
                let mut values = self.read_tokens(&plan.server, &ids)?.into_iter();
                let (Some((_, t)), Some((_, a))) = (values.next(), values.next()) else {
                    return Err(Error::MissingToken { file: server_path, key: K3S_AGENT_TOKEN.into() });
                };
                up_to_date = file_recipients(&server_path)
                    .is_some_and(|r| same_recipients(&r, &plan.server.recipients))
                    && file_recipients(&agent_path).is_some_and(|r| same_recipients(&r, &plan.agent.recipients))
                    && self.read_tokens(&plan.agent, &ids).is_ok_and(|v| v.first().is_some_and(|(_, x)| *x == a));
                (t, a)
            }
        };
        let mut written = Vec::new();
        if !up_to_date {
            let now = SystemTime::now();
            for (spec, entries) in [
                (&plan.server, vec![(K3S_TOKEN, token.as_str()), (K3S_AGENT_TOKEN, agent_token.as_str())]),
                (&plan.agent, vec![(K3S_AGENT_TOKEN, agent_token.as_str())]),
            ] {
                let path = self.abs(&spec.path);
                let text = crate::sops::encrypt_flat(&entries, &spec.recipients, now).map_err(|e| e.in_file(&path))?;
                if let Some(dir) = path.parent() {
                    atomic::create_dir_all(dir, 0o755).map_err(|e| Error::io("create", dir, e))?;
                }
                atomic::write(&path, text.as_bytes(), Some(0o644)).map_err(|e| Error::io("write", &path, e))?;
                written.push(WrittenFile {
                    path: spec.path.clone(),
                    keys: spec.keys.clone(),
                    recipients: spec.recipients.len(),
                    readers: spec.readers.clone(),
                });
            }
        }
        Ok(TokensOutcome {
            action,
            up_to_date,
            written,
            sops_yaml_written: self.write_sops_yaml()?,
            missing_age: plan.missing_age.clone(),
            rotated: rotate,
        })
    }
}

// ---- decrypt ----

/// One decrypted value of `file` at `key_path` (nested keys separated by `/`).
pub fn decrypt(file: &Path, ids: &Identities, key_path: &str) -> Result<Zeroizing<String>, Error> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::io("read", file, e))?;
    let sops = SopsFile::parse(&text).map_err(|e| e.in_file(file))?;
    let docs = sops.decrypt(ids).map_err(|e| e.in_file(file))?;
    let value = docs.iter().find_map(|d| d.get(key_path));
    match value.and_then(Value::display_text) {
        Some(v) => Ok(v),
        None => Err(match value {
            Some(_) => Error::NotASingleValue { file: file.to_path_buf(), key: key_path.to_owned() },
            None => Error::NoSuchKey { file: file.to_path_buf(), key: key_path.to_owned() },
        }),
    }
}

/// The k3s server token in the secrets file `secrets_file` (relative to the inventory at
/// `inventory`), decrypted with the admin identity at `key`: what a deploy compares with
/// the cluster's token. None when the inventory has no secrets file yet.
pub fn server_token(
    inventory: &Path,
    secrets_file: &str,
    key: Option<PathBuf>,
) -> Result<Option<Zeroizing<String>>, Error> {
    let file = inventory.parent().unwrap_or(Path::new(".")).join(secrets_file);
    if !file.is_file() {
        return Ok(None);
    }
    let ids = admin_identities(None, key)?;
    decrypt(&file, &ids, K3S_TOKEN).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const REFERENCE: &str = include_str!("../../../n3x.toml");

    fn repo(dir: &Path) -> Repo {
        let path = dir.join("n3x.toml");
        std::fs::write(&path, REFERENCE).unwrap();
        let resolved = n3x_model::analyze(REFERENCE).resolve().unwrap();
        Repo::new(&path, REFERENCE.to_owned(), &resolved).unwrap()
    }

    #[test]
    fn tokens_are_kept_unless_rotated_or_missing() {
        assert_eq!(token_action(false, true, true), TokenAction::Keep);
        assert_eq!(token_action(true, true, true), TokenAction::Generate { orphan_agent_file: false });
        assert_eq!(token_action(false, false, false), TokenAction::Generate { orphan_agent_file: false });
        assert_eq!(token_action(false, false, true), TokenAction::Generate { orphan_agent_file: true });
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(same_recipients(&s(&["a", "b"]), &s(&["b", "a"])));
        assert!(!same_recipients(&s(&["a", "b"]), &s(&["a", "c"])));
        assert!(!same_recipients(&s(&["a"]), &s(&["a", "a"])));
    }

    #[test]
    fn the_server_token_is_read_for_a_deploy_only_when_there_is_one() {
        let d = tempfile::tempdir().unwrap();
        let mut r = repo(d.path());
        let inv = d.path().join("n3x.toml");
        let key = d.path().join("keys/admin.txt");
        assert!(server_token(&inv, "secrets/k3s.yaml", Some(key.clone())).unwrap().is_none(), "no file yet");
        r.init(&key).unwrap();
        r.tokens(false, &mut || panic!("new tokens need no key")).unwrap();
        let ids = read_identities(&key).unwrap();
        let file = d.path().join("secrets/k3s.yaml");
        let want = decrypt(&file, &ids, K3S_TOKEN).unwrap();
        assert_eq!(server_token(&inv, "secrets/k3s.yaml", Some(key)).unwrap().unwrap(), want);
        let missing = server_token(&inv, "secrets/k3s.yaml", Some(d.path().join("nope.txt")));
        assert!(matches!(missing, Err(Error::NoAdminKey { .. })), "{missing:?}");
    }

    #[test]
    fn init_then_tokens_then_tokens_again_is_up_to_date() {
        let d = tempfile::tempdir().unwrap();
        let mut r = repo(d.path());
        let key = d.path().join("keys/admin.txt");
        let no_ids = || -> Result<Identities, Error> { panic!("nothing to decrypt yet") };
        assert!(matches!(r.tokens(false, &mut { no_ids }), Err(Error::NoAdmins { .. })));
        let init = r.init(&key).unwrap();
        assert!(init.created && init.admin_added && init.sops_yaml_written && !init.reencrypt);
        assert!(std::fs::read_to_string(d.path().join("n3x.toml")).unwrap().contains(&init.recipient));
        let first = r.tokens(false, &mut || panic!("new tokens need no key")).unwrap();
        assert_eq!(first.action, TokenAction::Generate { orphan_agent_file: false });
        assert_eq!(first.written.len(), 2);
        assert_eq!(first.missing_age.len(), 5, "no host has a recipient yet");
        let again = r.tokens(false, &mut || read_identities(&key)).unwrap();
        assert!(again.up_to_date && again.written.is_empty());
        // A second init with the same key changes nothing.
        let same = r.init(&key).unwrap();
        assert!(!same.created && !same.admin_added);
    }

    #[test]
    fn add_host_refuses_unknown_hosts_and_private_keys() {
        let d = tempfile::tempdir().unwrap();
        let mut r = repo(d.path());
        let e = r.add_host("nope", HostKey::Given("ssh-ed25519 AAAA".into())).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Usage);
        assert!(e.help().starts_with("hosts: jetson-1,") || e.help().contains("n100-1"), "{}", e.help());
        let pair = Ed25519KeyPair::generate("x");
        let e = r.add_host("n100-1", HostKey::Given(pair.to_openssh().to_string())).unwrap_err();
        assert!(matches!(e, Error::PrivateKeyGiven));
        assert!(!e.to_string().contains("PRIVATE"));
    }

    #[test]
    fn generating_a_key_inside_the_repository_ignores_it_first() {
        let d = tempfile::tempdir().unwrap();
        let mut r = repo(d.path());
        let dir = d.path().join("keys/jetson-1");
        let out = r.add_host("jetson-1", HostKey::Generate { dir: dir.clone(), chosen: true }).unwrap();
        assert_eq!(out.change, Change::Added);
        let gi = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
        assert!(gi.contains("/keys/jetson-1/"), "{gi}");
        assert!(out.notes.iter().any(|n| n.contains("inside the repository")));
        // Once: a second key refuses to overwrite, and the ignore entry is not repeated.
        let e = r.add_host("jetson-1", HostKey::Generate { dir, chosen: true }).unwrap_err();
        assert!(matches!(e, Error::HostKeyExists { .. }));
        assert!(e.help().contains("n3x secrets add-host jetson-1"));
        assert!(!ignore_key_dir(d.path(), "keys/jetson-1").unwrap());
    }

    #[test]
    fn decrypt_names_missing_and_nested_keys() {
        let d = tempfile::tempdir().unwrap();
        let mut r = repo(d.path());
        let key = d.path().join("admin.txt");
        r.init(&key).unwrap();
        r.tokens(false, &mut || panic!()).unwrap();
        let ids = read_identities(&key).unwrap();
        let file = d.path().join("secrets/k3s.yaml");
        assert_eq!(decrypt(&file, &ids, "k3s-token").unwrap().len(), 64);
        let e = decrypt(&file, &ids, "nope").unwrap_err();
        assert!(matches!(e, Error::NoSuchKey { .. }) && e.kind() == crate::ErrorKind::Usage);
    }
}
