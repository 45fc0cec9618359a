//! Building and copying systems with Nix, as a user would by hand: one `nix build` of every
//! changed host's toplevel, then `nix copy` to each host over SSH, all before any host is
//! activated.

use std::collections::BTreeMap;
use std::process::Stdio;

use crate::HostSpec;
use crate::error::DeployError;

/// Makes each host's new system exist, on the deploying machine and on the host.
pub trait Builder: Send + Sync {
    /// Builds the systems of `hosts`; returns each host's store path.
    fn build(&self, hosts: &[&HostSpec]) -> Result<BTreeMap<String, String>, DeployError>;
    /// Copies `path` (and its closure) to `host`.
    fn push(&self, host: &HostSpec, path: &str) -> Result<(), DeployError>;
}

/// The real builder: `nix build` and `nix copy` on the flake.
#[derive(Clone, Debug)]
pub struct NixBuilder {
    /// The `nix` program (`nix` on PATH).
    pub nix: String,
    /// The flake, e.g. `.` or `github:me/cluster`.
    pub flake: String,
    /// Extra options for the SSH that `nix copy` opens (`NIX_SSHOPTS`), e.g. a known_hosts file.
    pub ssh_opts: Vec<String>,
}

/// `nix build` of every host's system; prints the store paths in order.
pub fn build_argv(flake: &str, hosts: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["nix", "build", "--no-link", "--print-out-paths"].map(String::from).to_vec();
    for h in hosts {
        a.push(format!("{flake}#nixosConfigurations.{h}.config.system.build.toplevel"));
    }
    a
}

/// `nix copy` of a system to a host over SSH (the `ssh-ng` store protocol).
pub fn copy_argv(dest: &str, path: &str) -> Vec<String> {
    ["nix", "copy", "--to", &format!("ssh-ng://{dest}"), path].map(String::from).to_vec()
}

fn run(nix: &str, argv: &[String], env: &[(&str, String)]) -> Result<String, DeployError> {
    let mut c = std::process::Command::new(nix);
    c.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().map_err(|e| DeployError::Tool { command: argv.join(" "), detail: e.to_string() })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(15).collect();
        return Err(DeployError::Tool {
            command: argv.join(" "),
            detail: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Builder for NixBuilder {
    fn build(&self, hosts: &[&HostSpec]) -> Result<BTreeMap<String, String>, DeployError> {
        if hosts.is_empty() {
            return Ok(BTreeMap::new());
        }
        let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let out = run(&self.nix, &build_argv(&self.flake, &names), &[])?;
        let paths: Vec<&str> = out.lines().filter(|l| l.starts_with('/')).collect();
        if paths.len() != names.len() {
            return Err(DeployError::Tool {
                command: build_argv(&self.flake, &names).join(" "),
                detail: format!("printed {} store paths for {} hosts", paths.len(), names.len()),
            });
        }
        Ok(names.iter().zip(paths).map(|(h, p)| (h.to_string(), p.to_owned())).collect())
    }

    fn push(&self, host: &HostSpec, path: &str) -> Result<(), DeployError> {
        let env = if self.ssh_opts.is_empty() { vec![] } else { vec![("NIX_SSHOPTS", self.ssh_opts.join(" "))] };
        run(&self.nix, &copy_argv(&host.dest, path), &env).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing secrets file fails the host's build (the flake's `system.checks`): the
    /// error carries nix's own last lines. `nix` here is a named test double printing what
    /// that check prints, since NixOS cannot be built on this machine.
    #[test]
    fn a_failed_build_says_why_in_nix_words() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let nix = d.path().join("nix-double");
        std::fs::write(
            &nix,
            "#!/bin/sh\necho 'building...' >&2\necho \"error: Failed assertions:\n- n3x: secrets/k3s.yaml is missing: run \\`n3x secrets tokens\\`\" >&2\nexit 1\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&nix, std::fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("{e}"));
        let b = NixBuilder { nix: nix.display().to_string(), flake: ".".into(), ssh_opts: vec![] };
        let spec = crate::testing::reference();
        let hosts: Vec<&HostSpec> = spec.hosts.iter().take(1).collect();
        let e = b.build(&hosts).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("nix build --no-link --print-out-paths .#nixosConfigurations.jetson-1"), "{msg}");
        assert!(msg.contains("secrets/k3s.yaml is missing") && msg.contains("n3x secrets tokens"), "{msg}");
        assert_eq!(e.outcome(), crate::Outcome::Usage);
    }

    #[test]
    fn golden_nix_argv() {
        assert_eq!(
            build_argv(".", &["n100-1", "jetson-1"]).join(" "),
            "nix build --no-link --print-out-paths .#nixosConfigurations.n100-1.config.system.build.toplevel \
             .#nixosConfigurations.jetson-1.config.system.build.toplevel"
        );
        assert_eq!(
            copy_argv("root@192.168.200.11", "/nix/store/aaaa-nixos-system-n100-1").join(" "),
            "nix copy --to ssh-ng://root@192.168.200.11 /nix/store/aaaa-nixos-system-n100-1"
        );
    }
}
