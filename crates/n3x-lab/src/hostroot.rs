//! Each lab host's own filesystem view and its real `sshd`.
//!
//! A host gets a root directory (`/run/n3x/<cluster>/hosts/<host>/root`) with the machine's
//! `/usr`, `/etc`, `/dev`, `/proc` and `/sys` bound in and its own `/run`, `/nix`, `/var`,
//! `/tmp` and `/root`. `n3x lab host-init` enters a private mount namespace (and UTS, for
//! its hostname) inside the host's network namespace, binds those, binds the lab's
//! directory at `/n3x-lab` (the control socket, the `n3x` binary the doubles run), changes
//! root, and becomes Debian's `sshd`, listening on the host's cluster address. Mounts live
//! and die with that namespace: nothing is mounted on the machine itself.
//!
//! Keys are made per lab: a host key per host (pinned in the lab's known_hosts) and the
//! operator's client key (authorized on every host).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::generation::{self, LAB_MOUNT};
use crate::plan::{HostPlan, LabPlan};

/// Debian's OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";
/// What every session's PATH is: the running generation's tools first, as on NixOS.
pub const SESSION_PATH: &str = "/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Inside a host root: who the host is (read by the doubles).
pub const HOST_FILE: &str = "run/n3x-lab-host.json";
/// A server's etcd data and k3s server token, where k3s keeps them (in the host's root).
pub const ETCD_DATA: &str = "var/lib/rancher/k3s/server/db/etcd";
pub const SERVER_TOKEN: &str = "var/lib/rancher/k3s/server/token";
/// The lab's k3s server token (what `k3s server --cluster-reset` must be given back), and
/// the age identity the lab's backups are encrypted to, in the lab's directory.
pub const LAB_TOKEN: &str = "k3s-token";
pub const BACKUP_KEY: &str = "backup/age-key.txt";

/// The lab's k3s server token, made on first use: k3s's format (`K10<ca hash>::server:<secret>`).
pub fn lab_token(lab_dir: &Path) -> Result<String, LabError> {
    let path = lab_dir.join(LAB_TOKEN);
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    let hash = n3x_secrets::generate_token();
    let secret = n3x_secrets::generate_token();
    let token = format!("K10{}::server:{}", hash.as_str(), &secret[..32]);
    n3x_fs::write(&path, format!("{token}\n").as_bytes(), Some(0o600))
        .map_err(io(format!("write {}", path.display())))?;
    Ok(token)
}

/// The lab's token becomes `secret` (its `K10<hash>::server:` prefix kept): what
/// `k3s token rotate` does to the cluster's token.
pub fn set_lab_token(lab_dir: &Path, secret: &str) -> Result<(), LabError> {
    let old = lab_token(lab_dir)?;
    let prefix = old.split_once("::").map_or("K10", |(p, _)| p);
    let token = format!("{prefix}::server:{}", n3x_deploy::token::secret_of(secret));
    let path = lab_dir.join(LAB_TOKEN);
    n3x_fs::write(&path, format!("{token}\n").as_bytes(), Some(0o600)).map_err(io(format!("write {}", path.display())))
}

/// Puts the lab's token where k3s keeps it on server `host`.
pub fn write_server_token(lab_dir: &Path, host: &str) -> Result<(), LabError> {
    let token = lab_token(lab_dir)?;
    let path = generation::host_root(lab_dir, host).join(SERVER_TOKEN);
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(io(format!("create {}", d.display())))?;
    }
    n3x_fs::write(&path, format!("{token}\n").as_bytes(), Some(0o600)).map_err(io(format!("write {}", path.display())))
}

/// The lab's backup identity (made on first use); returns its recipient (`age1...`).
pub fn backup_key(lab_dir: &Path) -> Result<(PathBuf, String), LabError> {
    let path = lab_dir.join(BACKUP_KEY);
    let recipient_of =
        |text: &str| text.lines().find_map(|l| l.strip_prefix("# public key: ").map(|r| r.trim().to_owned()));
    if let Some(r) = std::fs::read_to_string(&path).ok().as_deref().and_then(recipient_of) {
        return Ok((path, r));
    }
    let dir = path.parent().unwrap_or(lab_dir);
    n3x_fs::create_dir_all(dir, 0o700).map_err(io(format!("create {}", dir.display())))?;
    let (text, recipient) = n3x_secrets::keys::generate_age_identity("n3x lab");
    n3x_fs::write(&path, text.as_bytes(), Some(0o600)).map_err(io(format!("write {}", path.display())))?;
    Ok((path, recipient))
}

/// What a double needs to know about the host it runs on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostFile {
    pub cluster: String,
    pub host: String,
    pub server: bool,
    /// The host's address on `cluster` (what its etcd certificate names).
    #[serde(default)]
    pub cluster_ip: Option<std::net::Ipv4Addr>,
}

/// The lab's SSH material, for the deployer.
#[derive(Clone, Debug)]
pub struct SshFiles {
    pub dir: PathBuf,
}

impl SshFiles {
    pub fn of(lab_dir: &Path) -> SshFiles {
        SshFiles { dir: lab_dir.join("ssh") }
    }
    pub fn identity(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    /// A host's key pair as the lab made it (before any install replaced it).
    pub fn host_key(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.key"))
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |e| LabError::io(what, e)
}

fn write_mode(path: &Path, text: &str, mode: u32) -> Result<(), LabError> {
    n3x_fs::write(path, text.as_bytes(), Some(mode)).map_err(io(format!("write {}", path.display())))
}

fn mkdir(path: &Path, mode: u32) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(io(format!("create {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
}

/// The directories of the machine bound into every host root (merged-/usr symlinks like
/// `/bin -> usr/bin` are copied as symlinks instead).
pub const BOUND: &[&str] = &["usr", "etc", "dev", "proc", "sys"];
const TOP_LINKS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Makes the lab's keys: the operator's client key, and one host key per host, with the
/// known_hosts that pins them. Returns the operator's public key line.
pub fn make_keys(plan: &LabPlan, files: &SshFiles) -> Result<String, LabError> {
    mkdir(&files.dir, 0o700)?;
    let op = n3x_secrets::keys::Ed25519KeyPair::generate(&format!("operator@n3x-lab-{}", plan.cluster));
    write_mode(&files.identity(), &op.to_openssh(), 0o600)?;
    let op_pub = op.public.to_line();
    write_mode(&files.identity().with_extension("pub"), &format!("{op_pub}\n"), 0o644)?;
    let mut known = String::new();
    for h in plan.inventory_hosts() {
        let k = n3x_secrets::keys::Ed25519KeyPair::generate(&format!("root@{}", h.name));
        write_mode(&files.host_key(&h.name), &k.to_openssh(), 0o600)?;
        write_mode(&files.host_key(&h.name).with_extension("key.pub"), &format!("{}\n", k.public.to_line()), 0o644)?;
        let line = k.public.to_line();
        let key: Vec<&str> = line.split_whitespace().take(2).collect();
        known.push_str(&format!("{} {}\n", h.cluster_ip, key.join(" ")));
    }
    write_mode(&files.known_hosts(), &known, 0o644)?;
    Ok(op_pub)
}

/// The sshd configuration of a lab host.
pub fn sshd_config(host: &HostPlan) -> String {
    format!(
        "# n3x lab: sshd of {name}\n\
         ListenAddress {ip}:22\n\
         HostKey /run/ssh_host_ed25519_key\n\
         PidFile none\n\
         AuthorizedKeysFile /run/authorized_keys\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 100\n\
         LoginGraceTime 30\n\
         SetEnv PATH={SESSION_PATH}\n",
        name = host.name,
        ip = host.cluster_ip,
    )
}

/// Lays out `host`'s root: directories, sshd's configuration and keys, who it is, and
/// (unless the lab starts empty, waiting for an install) its first generation.
pub fn prepare(
    lab_dir: &Path,
    plan: &LabPlan,
    host: &HostPlan,
    operator_key: &str,
    host_key: &Path,
    first: Option<&generation::Settings>,
) -> Result<PathBuf, LabError> {
    let root = generation::host_root(lab_dir, &host.name);
    for d in BOUND {
        mkdir(&root.join(d), 0o755)?;
    }
    for l in TOP_LINKS {
        let machine = Path::new("/").join(l);
        if let Ok(target) = std::fs::read_link(&machine) {
            let link = root.join(l);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(target, &link).map_err(io(format!("link {}", link.display())))?;
            }
        } else if machine.is_dir() {
            mkdir(&root.join(l), 0o755)?;
        }
    }
    mkdir(&root.join(LAB_MOUNT.trim_start_matches('/')), 0o755)?;
    mkdir(&root.join("run"), 0o755)?;
    mkdir(&root.join("run/sshd"), 0o755)?;
    mkdir(&root.join("tmp"), 0o1777)?;
    mkdir(&root.join("var/lib"), 0o755)?;
    mkdir(&root.join("var/tmp"), 0o1777)?;
    mkdir(&root.join("nix/store"), 0o755)?;
    mkdir(&root.join("nix/var/nix/profiles"), 0o755)?;
    mkdir(&root.join("root"), 0o700)?;
    write_mode(&root.join("run/sshd_config"), &sshd_config(host), 0o644)?;
    write_mode(&root.join("run/authorized_keys"), &format!("{operator_key}\n"), 0o600)?;
    set_host_key(&root, host_key)?;
    let me = HostFile {
        cluster: plan.cluster.clone(),
        host: host.name.clone(),
        server: host.is_server(),
        cluster_ip: Some(host.cluster_ip),
    };
    write_mode(&root.join(HOST_FILE), &(serde_json::to_string(&me).unwrap_or_default() + "\n"), 0o644)?;
    if let Some(s) = first {
        let path = generation::write(&root.join("nix/store"), s)?;
        generation::install_first(&root, &path)?;
    }
    Ok(root)
}

/// Installs the private key at `key` (and its `.pub`) as the host's SSH host key.
pub fn set_host_key(root: &Path, key: &Path) -> Result<(), LabError> {
    let private = std::fs::read_to_string(key).map_err(io(format!("read {}", key.display())))?;
    let pub_path = PathBuf::from(format!("{}.pub", key.display()));
    let public = std::fs::read_to_string(&pub_path).map_err(io(format!("read {}", pub_path.display())))?;
    write_mode(&root.join("run/ssh_host_ed25519_key"), &private, 0o600)?;
    write_mode(&root.join("run/ssh_host_ed25519_key.pub"), &public, 0o644)
}

/// The command line the supervisor starts in a host's namespace (with `n3x` as `exe`).
pub fn init_args(lab_dir: &Path, host: &str) -> Vec<String> {
    vec![
        "lab".into(),
        "host-init".into(),
        "--lab-dir".into(),
        lab_dir.display().to_string(),
        "--host".into(),
        host.into(),
    ]
}

/// `n3x lab host-init`: runs in the host's network namespace; enters a private mount and
/// UTS namespace, binds the machine's directories into the host's root, changes root and
/// becomes sshd. Returns only on error.
pub fn exec_init(lab_dir: &Path, host: &str) -> LabError {
    match enter(lab_dir, host) {
        Ok(()) => {
            use std::os::unix::process::CommandExt;
            let e = std::process::Command::new(SSHD).args(["-D", "-e", "-f", "/run/sshd_config"]).exec();
            LabError::io(format!("start {SSHD} for `{host}`"), e)
        }
        Err(e) => e,
    }
}

fn enter(lab_dir: &Path, host: &str) -> Result<(), LabError> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let root = generation::host_root(lab_dir, host);
    let sys = |what: String| move |e: nix::Error| LabError::io(what, std::io::Error::from(e));
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS).map_err(sys(format!("unshare for `{host}`")))?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(sys("make mounts private".into()))?;
    nix::unistd::sethostname(host).map_err(sys(format!("set hostname `{host}`")))?;
    let mut binds: Vec<(PathBuf, PathBuf)> = BOUND.iter().map(|d| (Path::new("/").join(d), root.join(d))).collect();
    for l in TOP_LINKS {
        let machine = Path::new("/").join(l);
        if machine.is_dir() && std::fs::read_link(&machine).is_err() {
            binds.push((machine, root.join(l)));
        }
    }
    binds.push((lab_dir.to_path_buf(), root.join(LAB_MOUNT.trim_start_matches('/'))));
    for (from, to) in binds {
        mount(Some(&from), &to, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(sys(format!("bind {} at {}", from.display(), to.display())))?;
    }
    nix::unistd::chroot(&root).map_err(sys(format!("change root to {}", root.display())))?;
    std::env::set_current_dir("/").map_err(io("enter /".into()))?;
    Ok(())
}

/// The n3x binary the doubles run, copied into the lab's directory (so a rebuilt n3x does
/// not change a running lab under it).
pub fn install_binary(lab_dir: &Path, exe: &Path) -> Result<(), LabError> {
    let bin = lab_dir.join("bin");
    mkdir(&bin, 0o755)?;
    let to = bin.join("n3x");
    let tmp = bin.join(".n3x.tmp");
    std::fs::copy(exe, &tmp).map_err(io(format!("copy {} into the lab", exe.display())))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(io("chmod the lab's n3x".into()))?;
    std::fs::rename(&tmp, &to).map_err(io(format!("install {}", to.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_host_root_has_its_keys_config_and_first_generation() {
        let d = tempfile::tempdir().unwrap();
        let mut plan = crate::plan::reference();
        let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve().unwrap();
        plan.add_operator(&r).unwrap();
        let files = SshFiles::of(d.path());
        let op = make_keys(&plan, &files).unwrap();
        assert!(op.starts_with("ssh-ed25519 "));
        let known = std::fs::read_to_string(files.known_hosts()).unwrap();
        assert_eq!(known.lines().count(), 5, "one line per host, none for the operator");
        assert!(known.lines().any(|l| l.starts_with("192.168.200.11 ssh-ed25519 ")), "{known}");
        let h = plan.host("n100-2").unwrap();
        let s = generation::Settings::of(&plan, h, "v1.31");
        let root = prepare(d.path(), &plan, h, &op, &files.host_key("n100-2"), Some(&s)).unwrap();
        let cfg = std::fs::read_to_string(root.join("run/sshd_config")).unwrap();
        assert!(cfg.contains("ListenAddress 192.168.200.12:22"));
        assert!(cfg.contains(&format!("SetEnv PATH={SESSION_PATH}")));
        assert_eq!(std::fs::read_to_string(root.join("run/authorized_keys")).unwrap().trim(), op);
        let mode = std::fs::metadata(root.join("run/ssh_host_ed25519_key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_link(root.join("run/current-system")).unwrap(), Path::new(&s.store_path()));
        let me: HostFile = serde_json::from_str(&std::fs::read_to_string(root.join(HOST_FILE)).unwrap()).unwrap();
        assert!(me.server && me.host == "n100-2");
        // Preparing again (a restart) is fine.
        prepare(d.path(), &plan, h, &op, &files.host_key("n100-2"), Some(&s)).unwrap();
    }
}
