//! The commands the deployer runs on a host, exactly. These are NixOS's own interfaces
//! (the system profile, `switch-to-configuration`, systemd's transient units, k3s) and
//! nothing n3x installs there; the lab answers the same commands with named test doubles.
//! The golden tests at the bottom pin every argv.

use std::time::Duration;

use n3x_remote::Command;

/// The system profile: its symlink is the generation the host boots and runs.
pub const PROFILE: &str = "/nix/var/nix/profiles/system";
/// The running system.
pub const RUNNING: &str = "/run/current-system";
/// Where the running system's tools are; the guard names them absolutely, since a
/// transient unit's PATH is systemd's, not a login shell's.
pub const SW: &str = "/run/current-system/sw/bin";
/// k3s's etcd client certificate and CA (what the API server itself uses for etcd).
pub const ETCD_CA: &str = "/var/lib/rancher/k3s/server/tls/etcd/server-ca.crt";
pub const ETCD_CERT: &str = "/var/lib/rancher/k3s/server/tls/etcd/server-client.crt";
pub const ETCD_KEY: &str = "/var/lib/rancher/k3s/server/tls/etcd/server-client.key";
/// The deploy lock on the init server: `mkdir` is atomic, and the directory outlives a
/// crashed deployer.
pub const LOCK_DIR: &str = "/var/lib/n3x/deploy.lock";

fn cmd<const N: usize>(argv: [&str; N], timeout: Duration) -> Command {
    Command::new(argv, timeout)
}

/// The generation the host runs now (`/run/current-system`, set by the last activation).
pub fn current_system(t: Duration) -> Command {
    cmd(["readlink", "-f", RUNNING], t)
}

/// The generation the host boots next (the system profile).
pub fn boot_system(t: Duration) -> Command {
    cmd(["readlink", "-f", PROFILE], t)
}

/// Points the system profile at `path` (a new generation, or back to an old one).
pub fn profile_set(path: &str, t: Duration) -> Command {
    cmd(["nix-env", "--profile", PROFILE, "--set", path], t)
}

/// Activates `path` now (`switch`), or at the next boot (`boot`).
pub fn switch(path: &str, action: &str, t: Duration) -> Command {
    Command::new([format!("{path}/bin/switch-to-configuration"), action.to_owned()], t)
}

/// The shell line that puts a host back on `previous`: idempotent, so the guard and the
/// deployer may both run it.
pub fn rollback_line(previous: &str) -> String {
    format!("{SW}/nix-env --profile {PROFILE} --set {previous} && {previous}/bin/switch-to-configuration switch")
}

/// The rollback guard: a transient systemd timer that, unless stopped within `secs`,
/// puts the host back on `previous` by itself, whatever happened to the deployer.
pub fn guard_start(unit: &str, secs: u64, previous: &str, t: Duration) -> Command {
    Command::new(
        [
            "systemd-run".to_owned(),
            format!("--unit={unit}"),
            "--description=n3x: roll back unless the deploy confirms this generation".to_owned(),
            format!("--on-active={secs}s"),
            "--timer-property=AccuracySec=1s".to_owned(),
            "--collect".to_owned(),
            format!("{SW}/sh"),
            "-c".to_owned(),
            rollback_line(previous),
        ],
        t,
    )
}

/// Confirms: stops the guard before it fires.
pub fn guard_cancel(unit: &str, t: Duration) -> Command {
    Command::new(["systemctl".to_owned(), "stop".to_owned(), format!("{unit}.timer"), format!("{unit}.service")], t)
}

/// Whether the guard is still pending (`active` until it fires or is stopped).
pub fn guard_pending(unit: &str, t: Duration) -> Command {
    Command::new(["systemctl".to_owned(), "is-active".to_owned(), format!("{unit}.timer")], t)
}

/// Puts the host back on `previous` now.
pub fn rollback(previous: &str, t: Duration) -> Command {
    cmd(["sh", "-c", &rollback_line(previous)], t)
}

pub fn is_active(unit: &str, t: Duration) -> Command {
    cmd(["systemctl", "is-active", unit], t)
}

/// Every node with its conditions, from the API (run on a server).
pub fn nodes(t: Duration) -> Command {
    cmd(["k3s", "kubectl", "get", "nodes", "-o", "json"], t)
}

/// k3s's certificate rotation (run with k3s stopped): new certificates from the
/// cluster's CAs for every service, etcd's included; k3s loads them when it starts.
pub fn certificate_rotate(t: Duration) -> Command {
    cmd(["k3s", "certificate", "rotate"], t)
}

/// k3s's server token rotation on a running server: standard input carries the current
/// token (first line, handed to k3s as `K3S_TOKEN`) and the new one (second line).
pub fn token_rotate(t: Duration) -> Command {
    cmd(["sh", "-c", r#"read -r old && read -r new && K3S_TOKEN="$old" exec k3s token rotate --new-token "$new""#], t)
}

/// Whether k3s encrypts Secrets at rest (`Encryption Status: Enabled`), run on a server.
pub fn secrets_encryption(t: Duration) -> Command {
    cmd(["k3s", "secrets-encrypt", "status"], t)
}

pub fn k3s_version(t: Duration) -> Command {
    cmd(["k3s", "--version"], t)
}

/// An etcd snapshot by k3s (under `/var/lib/rancher/k3s/server/db/snapshots`).
pub fn snapshot(name: &str, t: Duration) -> Command {
    cmd(["k3s", "etcd-snapshot", "save", "--name", name], t)
}

/// Where k3s keeps its etcd snapshots, its server token and its TLS certificates.
pub const SNAPSHOT_DIR: &str = "/var/lib/rancher/k3s/server/db/snapshots";
pub const TOKEN_FILE: &str = "/var/lib/rancher/k3s/server/token";
pub const DB_DIR: &str = "/var/lib/rancher/k3s/server/db";
pub const TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls";
/// Where a restore puts the snapshot and the token it needs on the init server (0700),
/// removed when the restore ends.
pub const RESTORE_DIR: &str = "/var/lib/n3x/restore";

/// k3s's snapshots, newest first (`k3s etcd-snapshot save --name N` writes `N-<node>-<time>`).
pub fn snapshot_files(t: Duration) -> Command {
    cmd(["ls", "-1t", SNAPSHOT_DIR], t)
}

/// A file's bytes as one line of base64 (the transport carries text).
pub fn read_base64(path: &str, t: Duration) -> Command {
    cmd(["base64", "-w0", path], t)
}

/// The server token k3s was started with (a restore needs the same one).
pub fn read_token(t: Duration) -> Command {
    cmd(["cat", TOKEN_FILE], t)
}

/// Every k3s server certificate, concatenated (their expiry is read here, not there):
/// those of the API server and kubelet in `tls/`, and etcd's in `tls/etcd/`.
pub fn read_certs(t: Duration) -> Command {
    cmd(["find", TLS_DIR, "-maxdepth", "2", "-name", "*.crt", "-exec", "cat", "{}", "+"], t)
}

/// Writes standard input to `name` in [`RESTORE_DIR`], readable by root only.
pub fn upload(name: &str, t: Duration) -> Command {
    cmd(["sh", "-c", &format!("umask 077 && mkdir -p {RESTORE_DIR} && cat > {RESTORE_DIR}/{name}")], t)
}

pub fn restore_cleanup(t: Duration) -> Command {
    cmd(["rm", "-rf", RESTORE_DIR], t)
}

pub fn k3s_stop(t: Duration) -> Command {
    cmd(["systemctl", "stop", "k3s"], t)
}

pub fn k3s_start(t: Duration) -> Command {
    cmd(["systemctl", "start", "k3s"], t)
}

/// k3s's restore: a cluster of one member from `snapshot`, with the token it was taken
/// with (from a file: a token in an argv is visible to every user of the host). k3s
/// exits when done; the unit then starts normally.
pub fn cluster_reset(snapshot: &str, token_file: &str, t: Duration) -> Command {
    Command::new(
        [
            "k3s".to_owned(),
            "server".to_owned(),
            "--cluster-reset".to_owned(),
            format!("--cluster-reset-restore-path={snapshot}"),
            format!("--token-file={token_file}"),
        ],
        t,
    )
}

/// A server's etcd data (and its local snapshots), removed so it joins the restored
/// cluster as a new member.
pub fn wipe_db(t: Duration) -> Command {
    cmd(["rm", "-rf", DB_DIR], t)
}

/// A call to the host's own etcd member with k3s's client certificate; the body goes on
/// standard input.
pub fn etcd(path: &str, body: &str, t: Duration) -> Command {
    Command::new(
        [
            "curl".to_owned(),
            "-sS".to_owned(),
            "--max-time".to_owned(),
            t.as_secs().max(1).to_string(),
            "--cacert".to_owned(),
            ETCD_CA.to_owned(),
            "--cert".to_owned(),
            ETCD_CERT.to_owned(),
            "--key".to_owned(),
            ETCD_KEY.to_owned(),
            "-X".to_owned(),
            "POST".to_owned(),
            "--data-binary".to_owned(),
            "@-".to_owned(),
            format!("https://127.0.0.1:{}{path}", n3x_etcd::CLIENT_PORT),
        ],
        t + Duration::from_secs(2),
    )
    .stdin(body.as_bytes().to_vec())
}

/// [`etcd`] with the body in the command line, for questions whose body is public (status,
/// member list, alarm list), so several can share one connection (`Remote::run_all`,
/// which takes no standard input).
pub fn etcd_inline(path: &str, body: &str, t: Duration) -> Command {
    let mut c = etcd(path, body, t);
    c.stdin = None;
    if let Some(i) = c.argv.iter().position(|a| a == "@-") {
        c.argv[i] = body.to_owned();
    }
    c
}

/// Takes the deploy lock, writing who holds it (stdin) into it. Fails if it is held.
pub fn lock_take(owner_json: &str, t: Duration) -> Command {
    cmd(["sh", "-c", &format!("mkdir -p /var/lib/n3x && mkdir {LOCK_DIR} && cat > {LOCK_DIR}/owner")], t)
        .stdin(owner_json.as_bytes().to_vec())
}

/// Who holds the lock (fails when nobody does).
pub fn lock_owner(t: Duration) -> Command {
    cmd(["cat", &format!("{LOCK_DIR}/owner")], t)
}

pub fn lock_release(t: Duration) -> Command {
    cmd(["rm", "-rf", LOCK_DIR], t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact command lines a NixOS host receives. A change here changes what runs on
    /// every machine: review it as such.
    #[test]
    fn golden_remote_commands() {
        let t = Duration::from_secs(30);
        let g = "/nix/store/aaaa-nixos-system-n100-1-25.11";
        let p = "/nix/store/bbbb-nixos-system-n100-1-25.11";
        let lines: Vec<String> = [
            current_system(t),
            boot_system(t),
            guard_start("n3x-rollback-guard", 90, p, t),
            profile_set(g, t),
            switch(g, "switch", t),
            guard_cancel("n3x-rollback-guard", t),
            guard_pending("n3x-rollback-guard", t),
            rollback(p, t),
            is_active("k3s", t),
            nodes(t),
            k3s_version(t),
            snapshot("n3x-before-v1-32-abc", t),
            etcd(n3x_etcd::STATUS, "{}", Duration::from_secs(5)),
            lock_take("{}", t),
            lock_owner(t),
            lock_release(t),
            snapshot_files(t),
            read_base64("/var/lib/rancher/k3s/server/db/snapshots/n3x-1-n100-1-1795791447", t),
            read_token(t),
            read_certs(t),
            secrets_encryption(t),
            certificate_rotate(t),
            token_rotate(t),
            upload("snapshot.db", t),
            restore_cleanup(t),
            k3s_stop(t),
            k3s_start(t),
            cluster_reset("/var/lib/n3x/restore/snapshot.db", "/var/lib/n3x/restore/token", t),
            wipe_db(t),
            etcd_inline(n3x_etcd::STATUS, "{}", Duration::from_secs(5)),
        ]
        .iter()
        .map(|c| c.display())
        .collect();
        insta::assert_snapshot!(lines.join("\n"));
    }
}
