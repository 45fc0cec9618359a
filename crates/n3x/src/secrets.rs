//! `n3x secrets ...`: argument handling and output for the secrets. Formats, crypto and edits
//! live in the `n3x-secrets` crate; this module finds files, decides, prints and maps errors
//! to exit codes: 0 success; 1 the inventory lacks something, `check` found problems, or a
//! SOPS file cannot be decrypted or verified; 2 bad usage or an IO problem.
//!
//! No secret is ever printed (except by `decrypt`, whose job it is), taken from the command
//! line, or put in an error message.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};
use n3x_model::model::Role as ModelRole;
use n3x_secrets::inventory::{Change, InventoryEdit};
use n3x_secrets::keys::{Ed25519KeyPair, Identities, SshPublicKey};
use n3x_secrets::plan::{FileSpec, Host, K3S_AGENT_TOKEN, K3S_TOKEN, Plan, Role};
use n3x_secrets::sops::{SopsFile, Value};
use n3x_secrets::{Error, Zeroizing, atomic, scan};

use crate::cli::InventoryArg;
use crate::{exit, fail, print_stdout};

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create your admin age identity (or reuse yours) and add it to `[secrets].admins`.
    ///
    /// Uses $SOPS_AGE_KEY_FILE, else $XDG_CONFIG_HOME/sops/age/keys.txt, else
    /// ~/.config/sops/age/keys.txt: where sops looks. A new key file is written 0600.
    #[command(after_help = "Examples:\n  n3x secrets init\n  SOPS_AGE_KEY_FILE=~/keys/n3x.txt n3x secrets init")]
    Init(InitArgs),
    /// Record a host's age recipient, derived from its ed25519 SSH host key like ssh-to-age.
    ///
    /// With --generate, creates the host key pair for a machine not yet installed, in
    /// <DIR>/etc/ssh/ssh_host_ed25519_key (0600) and .pub, for nixos-anywhere
    /// `--extra-files <DIR>`. DIR defaults to $XDG_DATA_HOME/n3x/<cluster>/extra-files/<host>
    /// (~/.local/share/...), outside the repository, so the private key can never be
    /// committed or copied into the Nix store with the flake.
    #[command(
        after_help = "Examples:\n  n3x secrets add-host n100-1 \"$(ssh-keyscan -t ed25519 192.168.200.11 2>/dev/null | cut -d' ' -f2-)\"\n  n3x secrets add-host n100-2 ./n100-2.pub\n  n3x secrets add-host jetson-1 --generate\n  nixos-anywhere --extra-files ~/.local/share/n3x/n3x/extra-files/jetson-1 ..."
    )]
    AddHost(AddHostArgs),
    /// Write the k3s token files, encrypted to exactly the hosts that need them.
    ///
    /// [secrets].file (k3s-token, k3s-agent-token) is readable by admins and servers; the
    /// agent file (k3s-agent-token, same path with -agent before the extension) by admins,
    /// servers and agents. Keeps existing tokens (decrypting them with your admin key) and
    /// re-encrypts when recipients changed; also writes .sops.yaml.
    Tokens(TokensArgs),
    /// Replace both k3s tokens with new random ones and re-encrypt both files.
    Rotate(TokensArgs),
    /// Verify recipients, that no plaintext secret is in the repository, and key permissions.
    ///
    /// Prints one line per problem and exits 1 if there is any. With an admin key available
    /// it also decrypts both files (verifying their MACs) and searches the repository for the
    /// token values.
    Check(TokensArgs),
    /// Print one decrypted value, for debugging. Reads files written by sops too.
    #[command(
        after_help = "Examples:\n  n3x secrets decrypt --key ~/.config/sops/age/keys.txt k3s-token\n  n3x secrets decrypt --key /etc/ssh/ssh_host_ed25519_key --file secrets/k3s-agent.yaml k3s-agent-token"
    )]
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Where the admin identity lives (instead of the sops locations).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddHostArgs {
    /// The host, as named in n3x.toml.
    pub host: String,
    /// The host's SSH public key (`ssh-ed25519 AAAA...`) or a file holding it.
    #[arg(required_unless_present = "generate", conflicts_with = "generate")]
    pub public_key: Option<String>,
    /// Generate the host's ed25519 key pair (for a machine not installed yet).
    #[arg(long)]
    pub generate: bool,
    /// The extra-files directory for --generate.
    #[arg(long, value_name = "DIR", requires = "generate")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArg,
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Your admin identity (age key file or SSH private key); default: the sops locations.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// An age identity file or an SSH private key (ed25519 keys also match their ssh-to-age
    /// `age1` recipient, as on sops-nix hosts).
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// The SOPS file; default: `[secrets].file` of the inventory.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The inventory that names the default file (default ./n3x.toml).
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// The value's key; nested keys separated by `/` as in sops-nix (`a/b/c`).
    pub key_path: String,
}

pub fn run(cmd: SecretsCommand) -> u8 {
    let result = match cmd {
        SecretsCommand::Init(a) => init(&a),
        SecretsCommand::AddHost(a) => add_host(&a),
        SecretsCommand::Tokens(a) => tokens(&a, false),
        SecretsCommand::Rotate(a) => tokens(&a, true),
        SecretsCommand::Check(a) => check(&a),
        SecretsCommand::Decrypt(a) => decrypt(&a),
    };
    match result {
        Ok(code) => code,
        Err(f) => fail(&f.message, &f.help, f.code),
    }
}

/// A failure ready to print.
struct Failure {
    message: String,
    help: String,
    code: u8,
}

impl Failure {
    fn new(message: impl Into<String>, help: impl Into<String>, code: u8) -> Self {
        Failure { message: message.into(), help: help.into(), code }
    }

    fn io(what: &str, path: &Path, e: &std::io::Error) -> Self {
        Failure::new(
            format!("cannot {what} `{}`: {e}", path.display()),
            "check the path and its permissions",
            exit::USAGE_OR_IO,
        )
    }

    /// A library error about `context` (a file name, usually).
    fn lib(context: &str, e: &Error) -> Self {
        let code = match e {
            Error::UnknownHost { .. } | Error::SshKey { .. } | Error::NotEd25519 | Error::Recipient { .. } => {
                exit::USAGE_OR_IO
            }
            Error::EncryptedSshKey | Error::KeyFile { .. } => exit::USAGE_OR_IO,
            _ => exit::INVENTORY,
        };
        let message = if context.is_empty() { e.to_string() } else { format!("{context}: {e}") };
        Failure::new(message, e.help(), code)
    }
}

type Res<T> = Result<T, Failure>;

/// The inventory file, its directory, and what the secrets need from it.
struct Ctx {
    path: PathBuf,
    root: PathBuf,
    text: String,
    cluster: String,
    plan: Plan,
}

impl Ctx {
    fn load(arg: &InventoryArg) -> Res<Ctx> {
        let path = match &arg.file {
            Some(p) if p == Path::new("-") => {
                return Err(Failure::new(
                    "`n3x secrets` edits the inventory in place and cannot read it from standard input",
                    "give the file with `-f n3x.toml`",
                    exit::USAGE_OR_IO,
                ));
            }
            Some(p) => p.clone(),
            None => PathBuf::from("n3x.toml"),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let mut f = Failure::io("read inventory", &path, &e);
            if e.kind() == std::io::ErrorKind::NotFound {
                f.help = "run in the directory holding n3x.toml, or give it with `-f FILE`".into();
            }
            f
        })?;
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (cluster, plan) = analyze(&path, &text)?;
        Ok(Ctx { path, root, text, cluster, plan })
    }

    /// Writes the edited inventory atomically and re-derives the plan from it.
    fn save(&mut self, edit: &InventoryEdit) -> Res<()> {
        let text = edit.to_string();
        atomic::write(&self.path, text.as_bytes(), None).map_err(|e| Failure::io("write", &self.path, &e))?;
        let (_, plan) = analyze(&self.path, &text)?;
        self.text = text;
        self.plan = plan;
        Ok(())
    }

    fn edit(&self) -> Res<InventoryEdit> {
        InventoryEdit::parse(&self.text).map_err(|e| Failure::lib(&self.path.display().to_string(), &e))
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write_sops_yaml(&self) -> Res<bool> {
        let path = self.root.join(".sops.yaml");
        let text = self.plan.sops_yaml();
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        atomic::write(&path, text.as_bytes(), Some(0o644)).map_err(|e| Failure::io("write", &path, &e))?;
        Ok(true)
    }
}

fn analyze(path: &Path, text: &str) -> Res<(String, Plan)> {
    let analysis = n3x_model::analyze(text);
    let resolved = analysis.resolve().map_err(|_| {
        Failure::new(
            format!("`{}` has errors", path.display()),
            format!("run `n3x check -f {}` and fix them first", path.display()),
            exit::INVENTORY,
        )
    })?;
    let hosts: Vec<Host> = resolved
        .hosts
        .iter()
        .map(|h| Host {
            name: h.name.clone(),
            role: if h.role == ModelRole::Server { Role::Server } else { Role::Agent },
            age: h.age.clone(),
        })
        .collect();
    let plan = Plan::new(&resolved.secrets.file, &resolved.secrets.admins, &hosts)
        .map_err(|e| Failure::lib(&path.display().to_string(), &e))?;
    Ok((resolved.cluster.name.clone(), plan))
}

/// Where sops looks for age identities: $SOPS_AGE_KEY_FILE, then the XDG config location.
fn default_key_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SOPS_AGE_KEY_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("sops/age/keys.txt"))
}

fn read_identities(path: &Path) -> Res<Identities> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Failure::io("read key file", path, &e))?);
    Identities::parse(&text).map_err(|e| Failure::lib(&format!("`{}`", path.display()), &e))
}

fn init(args: &InitArgs) -> Res<u8> {
    let mut ctx = Ctx::load(&args.inventory)?;
    let key_path = args.key_file.clone().or_else(default_key_file).ok_or_else(|| {
        Failure::new(
            "cannot tell where to keep the admin key: HOME is not set",
            "set SOPS_AGE_KEY_FILE or pass --key-file",
            exit::USAGE_OR_IO,
        )
    })?;
    let (recipient, created) = if key_path.exists() {
        let ids = read_identities(&key_path)?;
        let Some(r) = ids.recipients.first().filter(|r| r.starts_with("age1")) else {
            return Err(Failure::new(
                format!("`{}` holds no age X25519 identity", key_path.display()),
                "admins need an `AGE-SECRET-KEY-1...` identity; point SOPS_AGE_KEY_FILE at one or pass --key-file",
                exit::USAGE_OR_IO,
            ));
        };
        if let Some(mode) = scan::loose_permissions(&key_path) {
            eprintln!(
                "warning: `{}` has mode {mode:04o}; other users may read it\n  help: chmod 600 {}",
                key_path.display(),
                key_path.display()
            );
        }
        (r.clone(), false)
    } else {
        if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            atomic::create_dir_all(dir, 0o700).map_err(|e| Failure::io("create", dir, &e))?;
        }
        let (text, recipient) =
            n3x_secrets::keys::generate_age_identity(&n3x_secrets::sops::rfc3339_utc(SystemTime::now()));
        atomic::write(&key_path, text.as_bytes(), Some(0o600)).map_err(|e| Failure::io("write", &key_path, &e))?;
        (recipient, true)
    };
    let mut edit = ctx.edit()?;
    let change = edit.add_admin(&recipient).map_err(|e| Failure::lib(&ctx.path.display().to_string(), &e))?;
    if change != Change::Unchanged {
        ctx.save(&edit)?;
    }
    let sops_written = ctx.write_sops_yaml()?;
    let mut out = format!(
        "admin identity: {} ({})\nrecipient: {recipient}\n{}: {}\n",
        key_path.display(),
        if created { "created, mode 0600" } else { "existing" },
        ctx.path.display(),
        if change == Change::Unchanged { "already in [secrets].admins" } else { "added to [secrets].admins" },
    );
    if sops_written {
        out.push_str(&format!("{}: written\n", ctx.root.join(".sops.yaml").display()));
    }
    if change != Change::Unchanged && token_files_exist(&ctx) {
        out.push_str("next: `n3x secrets tokens` re-encrypts the token files for the new admin\n");
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn token_files_exist(ctx: &Ctx) -> bool {
    ctx.plan.files().iter().any(|f| ctx.abs(&f.path).exists())
}

fn default_extra_files(cluster: &str, host: &str) -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("n3x").join(cluster).join("extra-files").join(host))
}

/// `path` relative to `root` when it lies inside it (both made absolute first).
fn inside(root: &Path, path: &Path) -> Option<String> {
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

fn add_host(args: &AddHostArgs) -> Res<u8> {
    let mut ctx = Ctx::load(&args.inventory)?;
    if !ctx.plan.hosts.iter().any(|h| h.name == args.host) {
        let names: Vec<_> = ctx.plan.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Failure::new(
            format!("host `{}` is not in {}", args.host, ctx.path.display()),
            format!("hosts: {}", names.join(", ")),
            exit::USAGE_OR_IO,
        ));
    }
    let mut notes = Vec::new();
    let public = if args.generate {
        let dir = match args.out.clone().or_else(|| default_extra_files(&ctx.cluster, &args.host)) {
            Some(d) => d,
            None => return Err(Failure::new("HOME is not set", "pass --out DIR", exit::USAGE_OR_IO)),
        };
        let ssh_dir = dir.join("etc/ssh");
        let key_path = ssh_dir.join("ssh_host_ed25519_key");
        if key_path.exists() {
            return Err(Failure::new(
                format!("`{}` exists already", key_path.display()),
                format!(
                    "to record it, run `n3x secrets add-host {} {}.pub`; to replace it, delete it first",
                    args.host,
                    key_path.display()
                ),
                exit::USAGE_OR_IO,
            ));
        }
        if let Some(rel) = inside(&ctx.root, &dir) {
            // Inside the repository: ignore it before the key exists. nixos-anywhere copies
            // DIR's contents to `/`, so the ignore file must not go inside DIR.
            let gi = ctx.root.join(".gitignore");
            let old = std::fs::read_to_string(&gi).unwrap_or_default();
            if !scan::ignored_key_dirs(&ctx.root).iter().any(|d| *d == ctx.root.join(rel.trim_matches('/'))) {
                let mut text = old.clone();
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&scan::gitignore_entry(&rel));
                atomic::write(&gi, text.as_bytes(), None).map_err(|e| Failure::io("write", &gi, &e))?;
                notes.push(format!("{}: ignores /{rel}/", gi.display()));
            }
            notes.push(
                "note: the key directory is inside the repository; a flake outside git would copy it into the world-readable Nix store, so prefer the default location".into(),
            );
        } else if args.out.is_none() {
            if let Some(parent) = dir.parent() {
                // The private part of the path: only the owner may list or enter it.
                atomic::create_dir_all(parent, 0o700).map_err(|e| Failure::io("create", parent, &e))?;
            }
        }
        // DIR and etc/ssh become / and /etc/ssh on the host: the usual 0755.
        atomic::create_dir_all(&ssh_dir, 0o755).map_err(|e| Failure::io("create", &ssh_dir, &e))?;
        let pair = Ed25519KeyPair::generate(&format!("root@{}", args.host));
        atomic::write(&key_path, pair.to_openssh().as_bytes(), Some(0o600))
            .map_err(|e| Failure::io("write", &key_path, &e))?;
        let pub_path = ssh_dir.join("ssh_host_ed25519_key.pub");
        atomic::write(&pub_path, format!("{}\n", pair.public.to_line()).as_bytes(), Some(0o644))
            .map_err(|e| Failure::io("write", &pub_path, &e))?;
        notes.push(format!("host key: {} (0600) and .pub", key_path.display()));
        notes.push(format!("install with: nixos-anywhere --extra-files {} ...", dir.display()));
        pair.public.clone()
    } else {
        let arg = args.public_key.as_deref().unwrap_or_default();
        let text = if Path::new(arg).is_file() {
            std::fs::read_to_string(arg).map_err(|e| Failure::io("read", Path::new(arg), &e))?
        } else {
            arg.to_string()
        };
        if text.contains("PRIVATE KEY") {
            return Err(Failure::new(
                "that is a private key; `add-host` takes the public key",
                "give the `.pub` file (e.g. /etc/ssh/ssh_host_ed25519_key.pub)",
                exit::USAGE_OR_IO,
            ));
        }
        SshPublicKey::parse(&text).map_err(|e| Failure::lib("", &e))?
    };
    let recipient = public.to_age_recipient().map_err(|e| Failure::lib("", &e))?;
    let mut edit = ctx.edit()?;
    let change =
        edit.set_host_age(&args.host, &recipient).map_err(|e| Failure::lib(&ctx.path.display().to_string(), &e))?;
    if change != Change::Unchanged {
        ctx.save(&edit)?;
    }
    let sops_written = ctx.write_sops_yaml()?;
    let mut out = format!("host `{}`: age recipient {recipient}\n", args.host);
    out.push_str(&match &change {
        Change::Unchanged => format!("{}: unchanged\n", ctx.path.display()),
        Change::Added => format!("{}: set hosts.{}.age\n", ctx.path.display(), args.host),
        Change::Replaced(old) => format!("{}: replaced hosts.{}.age (was {old})\n", ctx.path.display(), args.host),
    });
    if sops_written {
        out.push_str(&format!("{}: written\n", ctx.root.join(".sops.yaml").display()));
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    if change != Change::Unchanged && token_files_exist(&ctx) {
        out.push_str(&format!("next: `n3x secrets tokens` re-encrypts the token files for `{}`\n", args.host));
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn admin_identities(key: Option<&Path>) -> Res<Identities> {
    let path = match key.map(Path::to_path_buf).or_else(default_key_file) {
        Some(p) => p,
        None => return Err(Failure::new("no admin key", "pass --key PATH", exit::USAGE_OR_IO)),
    };
    if !path.exists() {
        return Err(Failure::new(
            format!("admin key `{}` does not exist", path.display()),
            "run `n3x secrets init`, set SOPS_AGE_KEY_FILE, or pass --key PATH",
            exit::USAGE_OR_IO,
        ));
    }
    read_identities(&path)
}

/// Decrypts `spec`'s file and returns its values for `spec.keys` (all must be strings).
fn read_tokens(ctx: &Ctx, spec: &FileSpec, ids: &Identities) -> Res<Vec<(&'static str, Zeroizing<String>)>> {
    let path = ctx.abs(&spec.path);
    let text = std::fs::read_to_string(&path).map_err(|e| Failure::io("read", &path, &e))?;
    let context = format!("`{}`", path.display());
    let file = SopsFile::parse(&text).map_err(|e| Failure::lib(&context, &e))?;
    let docs = file.decrypt(ids).map_err(|e| Failure::lib(&context, &e))?;
    let doc = docs.first().cloned().unwrap_or(Value::Map(Vec::new()));
    let mut out = Vec::new();
    for k in &spec.keys {
        match doc.get(k) {
            Some(Value::Str(s)) if !s.is_empty() => out.push((*k, s.clone())),
            _ => {
                return Err(Failure::new(
                    format!("{context} has no string value `{k}`"),
                    "run `n3x secrets rotate` to write fresh tokens",
                    exit::INVENTORY,
                ));
            }
        }
    }
    Ok(out)
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn tokens(args: &TokensArgs, rotate: bool) -> Res<u8> {
    let ctx = Ctx::load(&args.inventory)?;
    let plan = &ctx.plan;
    if plan.admins.is_empty() {
        return Err(Failure::new(
            format!("`[secrets].admins` in {} is empty: nobody could edit the tokens", ctx.path.display()),
            "run `n3x secrets init` first",
            exit::INVENTORY,
        ));
    }
    for h in &plan.missing_age {
        eprintln!(
            "warning: host `{h}` has no age recipient and cannot read its token\n  help: run `n3x secrets add-host {h} <ssh-host-key.pub>` (or `--generate`), then `n3x secrets tokens`"
        );
    }
    let server_path = ctx.abs(&plan.server.path);
    let agent_path = ctx.abs(&plan.agent.path);
    let mut up_to_date = false;
    let (token, agent_token) = if rotate || !server_path.exists() {
        if !rotate && agent_path.exists() {
            eprintln!(
                "warning: `{}` exists without `{}`; both get new tokens",
                agent_path.display(),
                server_path.display()
            );
        }
        (n3x_secrets::generate_token(), n3x_secrets::generate_token())
    } else {
        let ids = admin_identities(args.key.as_deref())?;
        let mut values = read_tokens(&ctx, &plan.server, &ids)?.into_iter();
        let (Some((_, t)), Some((_, a))) = (values.next(), values.next()) else {
            return Err(Failure::new("internal: token keys", "report this as a bug", exit::INVENTORY));
        };
        up_to_date = file_recipients(&server_path).is_some_and(|r| same_set(&r, &plan.server.recipients))
            && file_recipients(&agent_path).is_some_and(|r| same_set(&r, &plan.agent.recipients))
            && read_tokens(&ctx, &plan.agent, &ids).is_ok_and(|v| v.first().is_some_and(|(_, x)| *x == a));
        (t, a)
    };
    let mut out = String::new();
    if up_to_date {
        out.push_str(&format!("{} and {}: up to date\n", plan.server.path, plan.agent.path));
    } else {
        let now = SystemTime::now();
        for (spec, entries) in [
            (&plan.server, vec![(K3S_TOKEN, token.as_str()), (K3S_AGENT_TOKEN, agent_token.as_str())]),
            (&plan.agent, vec![(K3S_AGENT_TOKEN, agent_token.as_str())]),
        ] {
            let path = ctx.abs(&spec.path);
            let text = n3x_secrets::sops::encrypt_flat(&entries, &spec.recipients, now)
                .map_err(|e| Failure::lib(&format!("`{}`", path.display()), &e))?;
            if let Some(dir) = path.parent() {
                atomic::create_dir_all(dir, 0o755).map_err(|e| Failure::io("create", dir, &e))?;
            }
            atomic::write(&path, text.as_bytes(), Some(0o644)).map_err(|e| Failure::io("write", &path, &e))?;
            out.push_str(&format!(
                "{}: {} for {} recipient(s): admins + {}\n",
                spec.path,
                spec.keys.join(", "),
                spec.recipients.len(),
                if spec.readers.is_empty() { "no hosts".to_string() } else { spec.readers.join(", ") }
            ));
        }
    }
    if ctx.write_sops_yaml()? {
        out.push_str(".sops.yaml: written\n");
    }
    if rotate {
        out.push_str(
            "note: a running cluster keeps its old server token until `k3s token rotate` runs on a server (see crates/n3x-secrets/README.md)\n",
        );
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn file_recipients(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    SopsFile::parse(&text).ok().map(|f| f.recipients())
}

/// A recipient as a comparable principal: ssh-ed25519 keys become their ssh-to-age `age1`.
fn principal(r: &str) -> String {
    if r.starts_with("ssh-ed25519 ") {
        if let Ok(k) = SshPublicKey::parse(r) {
            if let Ok(a) = k.to_age_recipient() {
                return a;
            }
        }
    }
    r.to_string()
}

fn check(args: &TokensArgs) -> Res<u8> {
    let ctx = Ctx::load(&args.inventory)?;
    let plan = &ctx.plan;
    let inv = ctx.path.display().to_string();
    let mut problems: Vec<String> = Vec::new();
    if plan.admins.is_empty() {
        problems.push(format!("{inv}: `[secrets].admins` is empty; run `n3x secrets init`"));
    }
    for h in &plan.missing_age {
        problems.push(format!("{inv}: host `{h}` has no `age` recipient; run `n3x secrets add-host {h} ...`"));
    }
    let role_of = |age: &str| plan.hosts.iter().find(|h| h.age.as_deref() == Some(age));
    for spec in plan.files() {
        let path = ctx.abs(&spec.path);
        let Ok(text) = std::fs::read_to_string(&path) else {
            problems.push(format!("{}: missing; run `n3x secrets tokens`", spec.path));
            continue;
        };
        let file = match SopsFile::parse(&text) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{}: {e}", spec.path));
                continue;
            }
        };
        let have: Vec<String> = file.recipients().iter().map(|r| principal(r)).collect();
        for a in &plan.admins {
            if !have.contains(a) {
                problems.push(format!("{}: admin `{a}` cannot decrypt it; run `n3x secrets tokens`", spec.path));
            }
        }
        for h in plan.hosts.iter().filter(|h| spec.readers.contains(&h.name)) {
            if let Some(age) = &h.age {
                if !have.contains(age) {
                    problems.push(format!(
                        "{}: host `{}` needs it but cannot decrypt it; run `n3x secrets tokens`",
                        spec.path, h.name
                    ));
                }
            }
        }
        for r in &have {
            if spec.recipients.contains(r) {
                continue;
            }
            match role_of(r) {
                Some(h) => problems.push(format!(
                    "{}: host `{}` ({}) can decrypt it but must not; run `n3x secrets rotate` (it may have seen the tokens)",
                    spec.path,
                    h.name,
                    if h.role == Role::Server { "server" } else { "agent" }
                )),
                None => problems.push(format!(
                    "{}: unknown recipient `{r}` can decrypt it; run `n3x secrets rotate`",
                    spec.path
                )),
            }
        }
        let keys = file.top_level_keys();
        for k in &keys {
            if !spec.keys.contains(&k.as_str()) {
                problems.push(format!("{}: holds `{k}`, which does not belong in this file", spec.path));
            }
        }
        for k in &spec.keys {
            if !keys.iter().any(|x| x == k) {
                problems.push(format!("{}: `{k}` is missing; run `n3x secrets rotate`", spec.path));
            }
        }
    }
    let sops_yaml = ctx.root.join(".sops.yaml");
    match std::fs::read_to_string(&sops_yaml) {
        Ok(t) if t == plan.sops_yaml() => {}
        Ok(_) => problems.push(".sops.yaml: out of date with n3x.toml; run `n3x secrets tokens`".into()),
        Err(_) => problems.push(".sops.yaml: missing; run `n3x secrets tokens`".into()),
    }
    // With an admin key: verify both files fully (MAC) and look for the values themselves.
    let mut known: Vec<(String, Zeroizing<String>)> = Vec::new();
    let key_path = args.key.clone().or_else(default_key_file);
    match key_path.as_deref().filter(|p| p.exists()) {
        Some(kp) => {
            if let Some(mode) = scan::loose_permissions(kp) {
                problems.push(format!(
                    "{}: admin key has mode {mode:04o}; run `chmod 600 {}`",
                    kp.display(),
                    kp.display()
                ));
            }
            match read_identities(kp) {
                Ok(ids) => {
                    let mut agent_tokens = Vec::new();
                    for spec in plan.files() {
                        if !ctx.abs(&spec.path).exists() {
                            continue;
                        }
                        match read_tokens(&ctx, spec, &ids) {
                            Ok(values) => {
                                for (k, v) in values {
                                    if k == K3S_AGENT_TOKEN {
                                        agent_tokens.push(v.clone());
                                    }
                                    known.push((format!("`{k}` from {}", spec.path), v));
                                }
                            }
                            Err(f) => problems.push(f.message),
                        }
                    }
                    if agent_tokens.len() == 2 && agent_tokens[0] != agent_tokens[1] {
                        problems.push(format!(
                            "{} and {}: the agent tokens differ; run `n3x secrets tokens`",
                            plan.server.path, plan.agent.path
                        ));
                    }
                }
                Err(f) => problems.push(f.message),
            }
        }
        None => eprintln!("note: no admin key found; skipped decrypting the files and searching for their values"),
    }
    let known_refs: Vec<scan::Known<'_>> =
        known.iter().map(|(label, v)| scan::Known { label: label.clone(), value: v.as_str() }).collect();
    let allowed = scan::ignored_key_dirs(&ctx.root);
    for f in scan::scan_tree(&ctx.root, &allowed, &known_refs) {
        let shown = f.path.strip_prefix(&ctx.root).unwrap_or(&f.path).display().to_string();
        if f.line > 0 {
            problems.push(format!("{shown}:{}: {}", f.line, f.message));
        } else {
            problems.push(format!("{shown}: {}", f.message));
        }
    }
    // Generated host keys outside the repository: permissions, and that they match n3x.toml.
    for h in &plan.hosts {
        let Some(dir) = default_extra_files(&ctx.cluster, &h.name) else { continue };
        let key = dir.join("etc/ssh/ssh_host_ed25519_key");
        if !key.exists() {
            continue;
        }
        if let Some(mode) = scan::loose_permissions(&key) {
            problems.push(format!(
                "{}: host key has mode {mode:04o}; run `chmod 600 {}`",
                key.display(),
                key.display()
            ));
        }
        let derived = std::fs::read_to_string(key.with_extension("pub"))
            .ok()
            .and_then(|t| SshPublicKey::parse(&t).ok())
            .and_then(|k| k.to_age_recipient().ok());
        if derived.is_some() && derived != h.age {
            problems.push(format!(
                "{}: does not match hosts.{}.age; run `n3x secrets add-host {} {}.pub`",
                key.display(),
                h.name,
                h.name,
                key.display()
            ));
        }
    }
    if problems.is_empty() {
        print_stdout(&format!(
            "ok: {} and {} are encrypted to exactly the admins and hosts that need them; no plaintext secrets found\n",
            plan.server.path, plan.agent.path
        ));
        Ok(exit::OK)
    } else {
        let mut out = String::new();
        for p in &problems {
            out.push_str(p);
            out.push('\n');
        }
        print_stdout(&out);
        eprintln!(
            "error: {} problem(s) found\n  help: fix each line above, then run `n3x secrets check` again",
            problems.len()
        );
        Ok(exit::INVENTORY)
    }
}

fn decrypt(args: &DecryptArgs) -> Res<u8> {
    let file = match &args.file {
        Some(f) => f.clone(),
        None => {
            let ctx = Ctx::load(&InventoryArg { file: args.inventory.clone() })?;
            ctx.abs(&ctx.plan.server.path)
        }
    };
    let ids = read_identities(&args.key)?;
    let text = std::fs::read_to_string(&file).map_err(|e| Failure::io("read", &file, &e))?;
    let context = format!("`{}`", file.display());
    let sops = SopsFile::parse(&text).map_err(|e| Failure::lib(&context, &e))?;
    let docs = sops.decrypt(&ids).map_err(|e| Failure::lib(&context, &e))?;
    let value = docs.iter().find_map(|d| d.get(&args.key_path));
    match value.and_then(Value::display_text) {
        Some(v) => {
            let mut line = Zeroizing::new(v.to_string());
            line.push('\n');
            print_stdout(&line);
            Ok(exit::OK)
        }
        None => Err(Failure::new(
            match value {
                Some(_) => format!("`{}` in {context} is not a single value", args.key_path),
                None => format!("{context} has no key `{}`", args.key_path),
            },
            "give the path of one value, nested keys separated by `/` (e.g. `k3s-token`)",
            exit::USAGE_OR_IO,
        )),
    }
}
