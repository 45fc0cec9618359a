//! The lab as a deploy target: the deployer's two seams implemented for a running lab.
//!
//! - Remote: the real [`n3x_remote::Ssh`] (the system `ssh`), started in the operator's
//!   namespace (`ip netns exec`), with the lab's key and known_hosts, to each host's sshd
//!   on its cluster address. Partitions and impairments apply to it.
//! - Builder: the lab's generation store ([`crate::generation`]), the named test double of
//!   `nix build` (write the generation) and `nix copy` (copy it into the host's store).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use n3x_deploy::install::{ExtraFiles, InstallOptions};
use n3x_deploy::{Builder, ClusterSpec, DeployError, HostSpec};
use n3x_model::Resolved;
use n3x_remote::{Ssh, SshOptions};

use crate::error::LabError;
use crate::generation::{self, Fault, Settings};
use crate::hostroot::SshFiles;
use crate::plan::{EtcdTimings, LabPlan};
use crate::supervisor::LabOptions;

/// A running lab, ready to be deployed to.
#[derive(Clone, Debug)]
pub struct Rehearsal {
    pub dir: PathBuf,
    pub plan: LabPlan,
    pub spec: ClusterSpec,
    pub ssh: Ssh,
    pub k3s_version: String,
}

/// Where a lab deploy keeps its journal.
pub fn journal(dir: &Path) -> PathBuf {
    dir.join("deploy-journal.json")
}

impl Rehearsal {
    /// The lab in `dir`. With `resolved`, the inventory being deployed: it must be the
    /// lab's cluster with the same hosts at the same addresses (a lab deploy changes
    /// settings, not the machines).
    pub fn open(dir: &Path, resolved: Option<&Resolved>) -> Result<Rehearsal, LabError> {
        let opts = LabOptions::read(dir)?;
        let plan = opts.plan;
        let operator = match (opts.ssh, plan.operator()) {
            (true, Some(op)) => op.ns.clone(),
            _ => return Err(LabError::NoSsh { cluster: plan.cluster.clone() }),
        };
        let mismatch = |detail: String| LabError::Mismatch { cluster: plan.cluster.clone(), detail };
        let mut spec = match resolved {
            Some(r) => {
                if r.cluster.name != plan.cluster {
                    return Err(mismatch(format!("its cluster is `{}`", r.cluster.name)));
                }
                ClusterSpec::from_resolved(r)
            }
            None => ClusterSpec {
                name: plan.cluster.clone(),
                k3s_version: opts.k3s_version.clone(),
                secrets_encryption: true,
                hosts: plan
                    .inventory_hosts()
                    .map(|h| HostSpec {
                        name: h.name.clone(),
                        server: h.is_server(),
                        init: h.init,
                        dest: String::new(),
                        cluster_ip: h.cluster_ip,
                        jetson: false,
                    })
                    .collect(),
            },
        };
        for h in &mut spec.hosts {
            let lab = plan.host(&h.name).ok_or_else(|| mismatch(format!("`{}` is not a host of the lab", h.name)))?;
            if lab.cluster_ip != h.cluster_ip || lab.is_server() != h.server {
                return Err(mismatch(format!("`{}` differs (address or role)", h.name)));
            }
            // The lab's sshd listens on the cluster address, whatever `ssh` the inventory gives.
            h.dest = format!("root@{}", h.cluster_ip);
        }
        let files = SshFiles::of(dir);
        let ssh = Ssh::new(SshOptions {
            program: "ssh".into(),
            config_file: Some("/dev/null".into()),
            identity: Some(files.identity()),
            known_hosts: Some(files.known_hosts()),
            connect_timeout: Duration::from_secs(3),
            wrapper: vec!["ip".into(), "netns".into(), "exec".into(), operator],
        });
        Ok(Rehearsal { dir: dir.to_path_buf(), plan, spec, ssh, k3s_version: opts.k3s_version })
    }

    /// Each host's generation for inventory `r` (the lab's own settings without one),
    /// with `faults` on the hosts they name.
    pub fn settings(&self, r: Option<&Resolved>, faults: &BTreeMap<String, Fault>) -> BTreeMap<String, Settings> {
        self.settings_with_token(r, faults, None)
    }

    /// [`Rehearsal::settings`], the servers' generations carrying server token `token`
    /// (what a generation built after `n3x secrets rotate` carries).
    pub fn settings_with_token(
        &self,
        r: Option<&Resolved>,
        faults: &BTreeMap<String, Fault>,
        token: Option<&str>,
    ) -> BTreeMap<String, Settings> {
        let (etcd, k3s) = match r {
            Some(r) => (
                EtcdTimings { heartbeat_ms: r.k3s.etcd.heartbeat_ms, election_ms: r.k3s.etcd.election_ms },
                r.k3s.version.clone(),
            ),
            None => (self.plan.etcd, self.k3s_version.clone()),
        };
        self.spec
            .hosts
            .iter()
            .map(|h| {
                let fault = faults.get(&h.name).copied().unwrap_or_default();
                let token_sha256 = token.filter(|_| h.server).map(generation::token_hash);
                (h.name.clone(), Settings { host: h.name.clone(), etcd, k3s_version: k3s.clone(), fault, token_sha256 })
            })
            .collect()
    }

    pub fn builder(&self, settings: BTreeMap<String, Settings>) -> LabBuilder {
        LabBuilder { dir: self.dir.clone(), settings }
    }

    /// How an install rehearses here: nixos-anywhere's named double, the lab's known_hosts,
    /// gates every 200 ms (the lab answers in milliseconds).
    pub fn install_options(&self, flake: String, extra_files: ExtraFiles) -> InstallOptions {
        let mut o = InstallOptions::new(flake, extra_files, SshFiles::of(&self.dir).known_hosts());
        o.program = vec![
            self.dir.join("bin/n3x").display().to_string(),
            "lab".into(),
            "double".into(),
            "nixos-anywhere".into(),
        ];
        o.gate_interval = Duration::from_millis(200);
        o
    }

    pub fn journal(&self) -> PathBuf {
        journal(&self.dir)
    }

    /// Where the lab keeps its backups.
    pub fn backup_dir(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// The lab's backup identity file and its recipient (made on first use).
    pub fn backup_key(&self) -> Result<(PathBuf, String), LabError> {
        crate::hostroot::backup_key(&self.dir)
    }
}

/// `--lab-fault HOST=FAULT` values, checked against the lab's hosts.
pub fn parse_faults(values: &[String], spec: &ClusterSpec) -> Result<BTreeMap<String, Fault>, LabError> {
    let bad = |value: &str, why: String| LabError::BadValue { flag: "--lab-fault".into(), value: value.into(), why };
    values
        .iter()
        .map(|v| {
            let (host, fault) = v.split_once('=').ok_or_else(|| bad(v, "write HOST=FAULT".into()))?;
            if spec.host(host).is_none() {
                return Err(bad(v, format!("`{host}` is not a host of the lab")));
            }
            let f = Fault::parse(fault).ok_or_else(|| bad(v, format!("faults are {}", Fault::NAMES.join(", "))))?;
            Ok((host.to_owned(), f))
        })
        .collect()
}

/// The generation store standing in for `nix build` and `nix copy`.
pub struct LabBuilder {
    dir: PathBuf,
    settings: BTreeMap<String, Settings>,
}

impl Builder for LabBuilder {
    fn build(&self, hosts: &[&HostSpec]) -> Result<BTreeMap<String, String>, DeployError> {
        let store = generation::local_store(&self.dir);
        std::fs::create_dir_all(&store)
            .map_err(|e| DeployError::Tool { command: "the lab's generation store".into(), detail: e.to_string() })?;
        hosts
            .iter()
            .map(|h| {
                let s = self.settings.get(&h.name).ok_or_else(|| DeployError::Tool {
                    command: "the lab's generation store".into(),
                    detail: format!("no settings for `{}`", h.name),
                })?;
                let path = generation::write(&store, s).map_err(|e| DeployError::Tool {
                    command: "the lab's generation store".into(),
                    detail: e.to_string(),
                })?;
                Ok((h.name.clone(), path))
            })
            .collect()
    }

    fn push(&self, host: &HostSpec, path: &str) -> Result<(), DeployError> {
        let to = generation::host_root(&self.dir, &host.name).join("nix/store");
        generation::copy(&generation::local_store(&self.dir), &to, path).map_err(|e| DeployError::Tool {
            command: format!("copying {path} to `{}`", host.name),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lab_faults_name_a_host_and_a_known_fault() {
        let r = n3x_model::analyze(include_str!("../../../n3x.toml")).resolve().unwrap();
        let spec = ClusterSpec::from_resolved(&r);
        let ok = parse_faults(&["n100-2=break-services".into(), "jetson-1=hang".into()], &spec).unwrap();
        assert_eq!(ok.get("n100-2"), Some(&Fault::BreakServices));
        assert_eq!(ok.get("jetson-1"), Some(&Fault::Hang));
        for (v, why) in [("n100-2", "HOST=FAULT"), ("nope=hang", "not a host"), ("n100-1=explode", "fail-activation")] {
            let e = parse_faults(&[v.into()], &spec).unwrap_err();
            assert!(e.to_string().contains(why), "{v}: {e}");
            assert_eq!(e.kind(), crate::ErrorKind::Usage);
        }
    }
}
