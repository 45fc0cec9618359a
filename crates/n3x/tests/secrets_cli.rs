//! `n3x secrets` end to end: the real binary in a temp dir holding a copy of n3x.toml, with
//! HOME and the XDG directories pointed at a separate temp dir (never the user's).

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use n3x_secrets::keys::Identities;
use n3x_secrets::sops::{SopsFile, Value};

const REFERENCE: &str = include_str!("../../../n3x.toml");

struct Env {
    repo: PathBuf,
    home: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("secrets-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        let repo = base.join("repo");
        let home = base.join("home");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(repo.join("n3x.toml"), REFERENCE).unwrap();
        Env { repo, home }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_n3x"));
        c.current_dir(&self.repo)
            .env("NO_COLOR", "1")
            .env("HOME", &self.home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("SOPS_AGE_KEY_FILE")
            .arg("secrets")
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}{}", text(&out.stdout), text(&out.stderr));
        text(&out.stdout)
    }

    fn admin_key(&self) -> PathBuf {
        self.home.join(".config/sops/age/keys.txt")
    }

    fn inventory(&self) -> String {
        std::fs::read_to_string(self.repo.join("n3x.toml")).unwrap()
    }

    /// Decrypts a repo file with the admin key, via the library.
    fn values(&self, rel: &str) -> Vec<(String, String)> {
        let ids = Identities::parse(&std::fs::read_to_string(self.admin_key()).unwrap()).unwrap();
        let file = SopsFile::parse(&std::fs::read_to_string(self.repo.join(rel)).unwrap()).unwrap();
        let docs = file.decrypt(&ids).unwrap();
        let Value::Map(m) = &docs[0] else { panic!() };
        m.iter()
            .map(|(k, v)| {
                let Value::Str(s) = v else { panic!() };
                (k.clone(), s.to_string())
            })
            .collect()
    }

    fn ssh_keygen(&self, name: &str) -> PathBuf {
        let p = self.home.join(name);
        let st = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&p).status().unwrap();
        assert!(st.success());
        p
    }

    /// init + servers from ssh-keygen keys + agents with --generate + tokens.
    fn bootstrap(&self) -> Vec<PathBuf> {
        self.ok(&["init"]);
        let mut keys = Vec::new();
        for h in ["n100-1", "n100-2", "n100-3"] {
            let k = self.ssh_keygen(h);
            self.ok(&["add-host", h, k.with_extension("pub").to_str().unwrap()]);
            keys.push(k);
        }
        for h in ["jetson-1", "jetson-2"] {
            self.ok(&["add-host", h, "--generate"]);
            keys.push(self.home.join(format!(".local/share/n3x/n3x/extra-files/{h}/etc/ssh/ssh_host_ed25519_key")));
        }
        self.ok(&["tokens"]);
        keys
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn have_ssh_keygen() -> bool {
    Command::new("ssh-keygen").arg("-?").stderr(Stdio::null()).status().is_ok()
}

#[test]
fn full_flow_least_privilege_and_sops_nix_decryption() {
    if !have_ssh_keygen() {
        n3x_testkit::skip(
            "full_flow_least_privilege_and_sops_nix_decryption",
            "needs ssh-keygen (apt-get install openssh-client)",
        );
        return;
    }
    let env = Env::new("flow");
    let keys = env.bootstrap();
    assert_eq!(mode(&env.admin_key()), 0o600);
    for k in &keys[3..] {
        assert_eq!(mode(k), 0o600, "{}", k.display());
    }
    // The generated keys live outside the repository by default.
    assert!(!keys[3].starts_with(&env.repo));

    // Files and recipients: servers read both tokens, agents only theirs.
    let server = env.values("secrets/k3s.yaml");
    let agent = env.values("secrets/k3s-agent.yaml");
    assert_eq!(server.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["k3s-token", "k3s-agent-token"]);
    assert_eq!(agent.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["k3s-agent-token"]);
    assert_eq!(server[1].1, agent[0].1);
    assert_ne!(server[0].1, server[1].1);
    for (_, v) in server.iter().chain(&agent) {
        assert!(v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    // Each host decrypts with its SSH host key (ssh-to-age, as sops-nix does).
    let decrypt = |key: &Path, file: &str, path: &str| {
        env.run(&["decrypt", "--key", key.to_str().unwrap(), "--sops", file, path])
    };
    for k in &keys[..3] {
        assert_eq!(text(&decrypt(k, "secrets/k3s.yaml", "k3s-token").stdout), format!("{}\n", server[0].1));
        assert_eq!(text(&decrypt(k, "secrets/k3s-agent.yaml", "k3s-agent-token").stdout), format!("{}\n", agent[0].1));
    }
    for k in &keys[3..] {
        assert_eq!(text(&decrypt(k, "secrets/k3s-agent.yaml", "k3s-agent-token").stdout), format!("{}\n", agent[0].1));
        let denied = decrypt(k, "secrets/k3s.yaml", "k3s-token");
        assert_eq!(denied.status.code(), Some(1));
        let all = text(&denied.stdout) + &text(&denied.stderr);
        assert!(all.starts_with("error: ") && all.contains("\n  help: "), "{all}");
        assert!(!all.contains(&server[0].1) && !all.contains(&server[1].1), "the error shows a token: {all}");
    }

    // .sops.yaml lists exactly the recipients of each file.
    let sops_yaml = std::fs::read_to_string(env.repo.join(".sops.yaml")).unwrap();
    let inv = n3x_model::analyze(&env.inventory()).resolve().unwrap();
    let age_of = |h: &str| inv.hosts.iter().find(|x| x.name == h).unwrap().age.clone().unwrap();
    let rule = |name: &str| {
        let i = sops_yaml.find(&format!("path_regex: (^|/){name}$")).unwrap();
        sops_yaml[i..]
            .lines()
            .nth(1)
            .unwrap()
            .trim_start_matches("    age: ")
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let mut want_server = inv.secrets.admins.clone();
    want_server.extend(["n100-1", "n100-2", "n100-3"].map(age_of));
    let mut want_agent = want_server.clone();
    want_agent.extend(["jetson-1", "jetson-2"].map(age_of));
    assert_eq!(rule(r"secrets/k3s\.yaml"), want_server);
    assert_eq!(rule(r"secrets/k3s\-agent\.yaml"), want_agent);
    let file_recipients =
        |rel: &str| SopsFile::parse(&std::fs::read_to_string(env.repo.join(rel)).unwrap()).unwrap().recipients();
    assert_eq!(file_recipients("secrets/k3s.yaml"), want_server);
    assert_eq!(file_recipients("secrets/k3s-agent.yaml"), want_agent);

    // check passes; tokens again changes nothing; rotate replaces both tokens.
    assert!(env.ok(&["check"]).starts_with("ok: "));
    let before = std::fs::read(env.repo.join("secrets/k3s.yaml")).unwrap();
    assert!(env.ok(&["tokens"]).contains("up to date"));
    assert_eq!(std::fs::read(env.repo.join("secrets/k3s.yaml")).unwrap(), before);
    env.ok(&["rotate"]);
    let rotated = env.values("secrets/k3s.yaml");
    assert_ne!(rotated[0].1, server[0].1);
    assert_ne!(rotated[1].1, server[1].1);
    assert_eq!(env.values("secrets/k3s-agent.yaml")[0].1, rotated[1].1);
    assert!(env.ok(&["check"]).starts_with("ok: "));
}

#[test]
fn inventory_edits_change_only_their_lines() {
    let env = Env::new("edits");
    let out = env.ok(&["init"]);
    let recipient = out.lines().find_map(|l| l.strip_prefix("recipient: ")).unwrap().to_string();
    let pair = n3x_secrets::keys::Ed25519KeyPair::generate("x");
    env.ok(&["add-host", "n100-2", &pair.public.to_line()]);
    let host_r = pair.public.to_age_recipient().unwrap();
    let after = env.inventory();
    let before: Vec<&str> = REFERENCE.lines().collect();
    let after_lines: Vec<&str> = after.lines().collect();
    // Every original line is still there, in order, except `admins = []`, which became the
    // new admins line; the only added line is n100-2's `age`.
    let mut j = 0;
    let mut added = Vec::new();
    for line in &before {
        while after_lines[j] != *line && !(line.starts_with("admins = ") && after_lines[j].starts_with("admins = ")) {
            added.push(after_lines[j]);
            j += 1;
        }
        if line.starts_with("admins = ") {
            assert_eq!(after_lines[j], format!("admins = [\"{recipient}\"]"));
        }
        j += 1;
    }
    added.extend(&after_lines[j..]);
    assert_eq!(added, [format!("age = \"{host_r}\"").as_str()]);
    // Idempotent: the same commands again leave the file byte for byte.
    env.ok(&["init"]);
    env.ok(&["add-host", "n100-2", &pair.public.to_line()]);
    assert_eq!(env.inventory(), after);
}

#[test]
fn check_reports_each_problem_on_one_line() {
    if !have_ssh_keygen() {
        n3x_testkit::skip(
            "check_reports_each_problem_on_one_line",
            "needs ssh-keygen (apt-get install openssh-client)",
        );
        return;
    }
    let env = Env::new("check");
    env.bootstrap();
    let inv = n3x_model::analyze(&env.inventory()).resolve().unwrap();
    let age_of = |h: &str| inv.hosts.iter().find(|x| x.name == h).unwrap().age.clone().unwrap();
    let tokens = env.values("secrets/k3s.yaml");

    // Re-encrypt the server file to the admin, two servers and an agent: n100-3 lost, jetson-1 gained.
    let mut r = inv.secrets.admins.clone();
    r.extend(["n100-1", "n100-2", "jetson-1"].map(age_of));
    let entries: Vec<(&str, &str)> = tokens.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let yaml = n3x_secrets::sops::encrypt_flat(&entries, &r, SystemTime::now()).unwrap();
    std::fs::write(env.repo.join("secrets/k3s.yaml"), yaml.as_bytes()).unwrap();
    // A plaintext copy of the token, a k3s-style token, and a loose admin key.
    std::fs::write(env.repo.join("notes.md"), format!("token is {}\n", tokens[0].1)).unwrap();
    std::fs::write(env.repo.join("join.env"), format!("K3S_TOKEN=K10{}::server:abcdefgh\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(env.admin_key(), std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = env.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let expect = [
        "secrets/k3s.yaml: host `n100-3` needs it but cannot decrypt it",
        "secrets/k3s.yaml: host `jetson-1` (agent) can decrypt it but must not",
        "keys.txt: admin key has mode 0644",
        "join.env:1: a k3s token",
        "join.env:1: `K3S_TOKEN` has an unencrypted value",
        "notes.md:1: the plaintext value of `k3s-token` from secrets/k3s.yaml appears here",
    ];
    for e in expect {
        assert!(lines.iter().any(|l| l.contains(e)), "missing `{e}` in:\n{stdout}");
    }
    assert_eq!(lines.len(), expect.len(), "{stdout}");
    assert!(!stdout.contains(&tokens[0].1) && !text(&out.stderr).contains(&tokens[0].1));
    assert!(text(&out.stderr).starts_with("error: 6 problem(s) found\n  help: "));
}

#[test]
fn usage_errors_exit_2_with_help_and_never_echo_secrets() {
    let env = Env::new("usage");
    let out = env.run(&["add-host", "nope", "ssh-ed25519 AAAA"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error: host `nope` is not in n3x.toml\n  help: hosts: "),
        "{}",
        text(&out.stderr)
    );

    let pair = n3x_secrets::keys::Ed25519KeyPair::generate("x");
    let private = env.home.join("private_key");
    std::fs::write(&private, pair.to_openssh().as_bytes()).unwrap();
    let out = env.run(&["add-host", "n100-1", private.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let body: String = pair.to_openssh().lines().nth(1).unwrap().to_string();
    assert!(!text(&out.stderr).contains(&body));
    assert!(text(&out.stderr).contains("that is a private key"));

    let out = env.run(&["tokens", "-f", "-"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["tokens"]);
    assert_eq!(out.status.code(), Some(1), "no admins yet");
    assert!(text(&out.stderr).contains("`[secrets].admins`"));
    let out = env.run(&["add-host", "n100-1"]);
    assert_eq!(out.status.code(), Some(2), "clap: key or --generate required");
}

/// Tokens are never on any process's command line: trace every exec of `tokens` and `rotate`.
#[test]
fn tokens_never_appear_in_argv() {
    let traced = Command::new("strace").args(["-f", "-qq", "-e", "trace=execve", "-s", "4096", "true"]).output();
    if !traced.is_ok_and(|o| o.status.success()) {
        n3x_testkit::skip("tokens_never_appear_in_argv", "needs strace with ptrace allowed (apt-get install strace)");
        return;
    }
    let env = Env::new("argv");
    env.ok(&["init"]);
    let log = env.home.join("strace.log");
    for cmd in ["tokens", "rotate", "check"] {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-e", "trace=execve", "-s", "4096", "-o"]).arg(&log);
        c.arg(env!("CARGO_BIN_EXE_n3x")).args(["secrets", cmd]);
        c.current_dir(&env.repo).env("HOME", &env.home).env_remove("XDG_CONFIG_HOME").env_remove("SOPS_AGE_KEY_FILE");
        let out = c.output().unwrap();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{cmd}: {}", text(&out.stderr));
        let trace = std::fs::read_to_string(&log).unwrap();
        let execs: Vec<&str> = trace.lines().filter(|l| l.contains("execve(")).collect();
        assert_eq!(execs.len(), 1, "{cmd} started other processes: {execs:#?}");
        for (_, v) in env.values("secrets/k3s.yaml") {
            assert!(!trace.contains(&v), "{cmd}: a token is in an exec's arguments");
            assert!(!text(&out.stdout).contains(&v) && !text(&out.stderr).contains(&v), "{cmd}: a token in the output");
        }
    }
}
