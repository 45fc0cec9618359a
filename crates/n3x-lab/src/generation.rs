//! The lab's generation store: the named test double of NixOS's system closures.
//!
//! NixOS cannot run here, so a lab host's "generation" is the part of the inventory the lab
//! can apply (the etcd heartbeat and election timeout, the k3s version) plus, for tests, a
//! fault. It is laid out like a NixOS system so the deployer's commands work on it verbatim:
//!
//! ```text
//! /nix/store/<hash>-nixos-system-<host>-lab/
//!   bin/switch-to-configuration    activates it (the lab double)
//!   sw/bin/{nix-env,systemd-run,systemctl,k3s,curl,sh}
//!   n3x-generation.json            the settings
//! ```
//!
//! The path is a hash of the settings, so an unchanged inventory gives an unchanged path
//! and the deployer classifies the host as unchanged, as with real Nix.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::LabError;
use crate::plan::{EtcdTimings, HostPlan, LabPlan};

/// How a generation misbehaves, so every failure path of a deploy can be exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    #[default]
    None,
    /// `switch-to-configuration` fails (exit 4, as NixOS does when units fail to start).
    FailActivation,
    /// Activates, but the host's services do not come up (its etcd member stays down).
    BreakServices,
    /// `switch-to-configuration` never returns.
    Hang,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        match s {
            "none" => Some(Fault::None),
            "fail-activation" => Some(Fault::FailActivation),
            "break-services" => Some(Fault::BreakServices),
            "hang" => Some(Fault::Hang),
            _ => None,
        }
    }

    pub const NAMES: &[&str] = &["fail-activation", "break-services", "hang"];
}

/// What a lab host's generation is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub host: String,
    pub etcd: EtcdTimings,
    pub k3s_version: String,
    #[serde(default)]
    pub fault: Fault,
    /// sha256 (hex) of the k3s server token's secret this generation's secrets carry; none:
    /// the token the lab was made with. A server whose token is not the cluster's does not
    /// start, as k3s refuses to. (A hash: a real generation never holds the token either,
    /// sops-nix decrypts it at activation.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

/// The hash a generation records for server token `token` (full or short form).
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(n3x_deploy::token::secret_of(token).as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file inside a generation that carries its settings.
pub const SETTINGS_FILE: &str = "n3x-generation.json";
/// Where the n3x binary is inside a lab host's root (the lab's directory is bound at /n3x-lab).
pub const LAB_MOUNT: &str = "/n3x-lab";
/// The doubles on a generation's `sw/bin`, each a call to `n3x lab double <name>`.
pub const DOUBLES: &[&str] = &["nix-env", "systemd-run", "systemctl", "k3s", "curl"];

impl Settings {
    /// The settings the inventory gives `host`.
    pub fn of(plan: &LabPlan, host: &HostPlan, k3s_version: &str) -> Settings {
        Settings {
            host: host.name.clone(),
            etcd: plan.etcd,
            k3s_version: k3s_version.to_owned(),
            fault: Fault::None,
            token_sha256: None,
        }
    }

    /// Its store path: `/nix/store/<32 hex of the settings' hash>-nixos-system-<host>-lab`.
    pub fn store_path(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let hash: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("/nix/store/{hash}-nixos-system-{}-lab", self.host)
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |e| LabError::io(what, e)
}

fn script(path: &Path, body: &str) -> Result<(), LabError> {
    std::fs::write(path, body).map_err(io(format!("write {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o555))
        .map_err(io(format!("chmod {}", path.display())))
}

/// Writes the generation of `settings` into the store at `store_root` (a directory that is
/// `/nix/store` somewhere). Returns its store path. Writing an existing one is a no-op.
pub fn write(store_root: &Path, settings: &Settings) -> Result<String, LabError> {
    let path = settings.store_path();
    let name = path.rsplit('/').next().unwrap_or_default();
    let dir = store_root.join(name);
    if dir.join(SETTINGS_FILE).is_file() {
        return Ok(path);
    }
    let tmp = store_root.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("bin")).map_err(io(format!("create {}", tmp.display())))?;
    std::fs::create_dir_all(tmp.join("sw/bin")).map_err(io(format!("create {}", tmp.display())))?;
    let json = serde_json::to_string_pretty(settings).unwrap_or_default();
    std::fs::write(tmp.join(SETTINGS_FILE), json + "\n").map_err(io(format!("write {}", tmp.display())))?;
    script(
        &tmp.join("bin/switch-to-configuration"),
        &format!(
            "#!/bin/sh\n# n3x lab: test double of NixOS's switch-to-configuration\nexec {LAB_MOUNT}/bin/n3x lab double switch-to-configuration {path} \"$@\"\n"
        ),
    )?;
    for d in DOUBLES {
        script(
            &tmp.join("sw/bin").join(d),
            &format!("#!/bin/sh\n# n3x lab: test double of `{d}`\nexec {LAB_MOUNT}/bin/n3x lab double {d} \"$@\"\n"),
        )?;
    }
    std::os::unix::fs::symlink("/bin/sh", tmp.join("sw/bin/sh")).map_err(io("link sw/bin/sh".into()))?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(path),
        // Someone wrote the same generation meanwhile: the same content.
        Err(_) if dir.join(SETTINGS_FILE).is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(path)
        }
        Err(e) => Err(LabError::io(format!("move {} into the store", tmp.display()), e)),
    }
}

/// Copies the generation at `path` from one store to another (the double of `nix copy`).
pub fn copy(from_store: &Path, to_store: &Path, path: &str) -> Result<(), LabError> {
    let name = path.rsplit('/').next().unwrap_or_default();
    let src = from_store.join(name);
    let settings: Settings = read_settings(&src)?;
    if settings.store_path() != path {
        return Err(LabError::io(
            format!("copy {path}"),
            std::io::Error::other("its settings do not hash to its name"),
        ));
    }
    std::fs::create_dir_all(to_store).map_err(io(format!("create {}", to_store.display())))?;
    write(to_store, &settings).map(|_| ())
}

/// The settings of the generation directory `dir`.
pub fn read_settings(dir: &Path) -> Result<Settings, LabError> {
    let f = dir.join(SETTINGS_FILE);
    let bytes = std::fs::read(&f).map_err(io(format!("read {}", f.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| LabError::BadOptions { path: f, message: e.to_string() })
}

/// A lab host's root directory (what it sees as `/`).
pub fn host_root(lab_dir: &Path, host: &str) -> PathBuf {
    lab_dir.join("hosts").join(host).join("root")
}

/// The deployer's side of the store: where "built" generations are before they are copied.
pub fn local_store(lab_dir: &Path) -> PathBuf {
    lab_dir.join("store")
}

/// Makes `path` the host's current and boot generation, as an install does: profile link
/// `system-1-link`, `system`, and `/run/current-system`.
pub fn install_first(root: &Path, path: &str) -> Result<(), LabError> {
    let profiles = root.join("nix/var/nix/profiles");
    std::fs::create_dir_all(root.join("run")).map_err(io(format!("create {}/run", root.display())))?;
    std::fs::create_dir_all(&profiles).map_err(io(format!("create {}", profiles.display())))?;
    replace_link(&profiles.join("system-1-link"), Path::new(path))?;
    replace_link(&profiles.join("system"), Path::new("system-1-link"))?;
    replace_link(&root.join("run/current-system"), Path::new(path))
}

/// Points `link` at `target` atomically (a new link renamed over the old one).
pub fn replace_link(link: &Path, target: &Path) -> Result<(), LabError> {
    let tmp = link.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io(format!("link {}", tmp.display())))?;
    std::fs::rename(&tmp, link).map_err(io(format!("replace {}", link.display())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings(hb: u64) -> Settings {
        Settings {
            host: "n100-1".into(),
            etcd: EtcdTimings { heartbeat_ms: hb, election_ms: 1000 },
            k3s_version: "v1.31".into(),
            fault: Fault::None,
            token_sha256: None,
        }
    }

    #[test]
    fn the_path_follows_the_settings() {
        let a = settings(100).store_path();
        assert!(a.starts_with("/nix/store/") && a.ends_with("-nixos-system-n100-1-lab"), "{a}");
        assert_eq!(a, settings(100).store_path());
        assert_ne!(a, settings(120).store_path());
        let broken = Settings { fault: Fault::BreakServices, ..settings(100) };
        assert_ne!(a, broken.store_path());
    }

    #[test]
    fn a_generation_looks_like_a_nixos_system_and_copies() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        let s = settings(100);
        let path = write(&a, &s).unwrap();
        let name = path.rsplit('/').next().unwrap();
        let dir = a.join(name);
        let stc = std::fs::read_to_string(dir.join("bin/switch-to-configuration")).unwrap();
        assert!(stc.contains(&format!("lab double switch-to-configuration {path} \"$@\"")), "{stc}");
        for d in DOUBLES {
            assert!(dir.join("sw/bin").join(d).is_file());
        }
        assert_eq!(std::fs::read_link(dir.join("sw/bin/sh")).unwrap(), Path::new("/bin/sh"));
        assert_eq!(read_settings(&dir).unwrap(), s);
        // Writing it again changes nothing; copying gives the same thing elsewhere.
        assert_eq!(write(&a, &s).unwrap(), path);
        copy(&a, &b, &path).unwrap();
        assert_eq!(read_settings(&b.join(name)).unwrap(), s);
        assert!(copy(&a, &b, "/nix/store/missing-nixos-system-x-lab").is_err());
        // First install: profile and current system.
        let root = d.path().join("root");
        install_first(&root, &path).unwrap();
        assert_eq!(std::fs::read_link(root.join("nix/var/nix/profiles/system")).unwrap(), Path::new("system-1-link"));
        assert_eq!(std::fs::read_link(root.join("run/current-system")).unwrap(), Path::new(&path));
        assert_eq!(Fault::parse("hang"), Some(Fault::Hang));
        assert_eq!(Fault::parse("x"), None);
    }
}
