//! `n3x secrets ...`: calls the `n3x-secrets` library and prints what it did. The
//! workflows, the audit and the key locations live in the library.
//!
//! No secret is ever printed (except by `decrypt`, whose job it is), taken from the command
//! line, or put in an error message.

use std::path::{Path, PathBuf};

use n3x_secrets::audit::{self, Audit};
use n3x_secrets::inventory::Change;
use n3x_secrets::repo::{self, AddHostOutcome, HostKey, Repo, TokenAction};
use n3x_secrets::{Error as SecretsError, Zeroizing, locations};

use crate::cli::{AddHostArgs, DecryptArgs, InitArgs, InventoryArg, SecretsCommand, TokensArgs};
use crate::error::Error;
use crate::exit;
use crate::inventory::{self, Purpose};
use crate::render::print_stdout;

type Outcome = Result<u8, Error>;

fn env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name)
}

pub fn run(cmd: SecretsCommand) -> Outcome {
    match cmd {
        SecretsCommand::Init(a) => init(&a),
        SecretsCommand::AddHost(a) => add_host(&a),
        SecretsCommand::Tokens(a) => tokens(&a, false),
        SecretsCommand::Rotate(a) => tokens(&a, true),
        SecretsCommand::Check(a) => check(&a),
        SecretsCommand::Decrypt(a) => decrypt(&a),
    }
}

/// The repository of the inventory: `-f FILE` or `./n3x.toml` (never the embedded
/// reference, which cannot be edited).
fn repo(arg: &InventoryArg) -> Result<Repo, Error> {
    let path = arg.file.clone().unwrap_or_else(|| PathBuf::from("n3x.toml"));
    if path == Path::new("-") {
        return Err(SecretsError::InventoryFromStdin.into());
    }
    if arg.file.is_none() && !path.exists() {
        return Err(SecretsError::NoInventory { path }.into());
    }
    let loaded = inventory::resolve(Some(&path), Purpose::Secrets)?;
    Ok(Repo::new(&path, loaded.source.text, &loaded.resolved)?)
}

fn init(a: &InitArgs) -> Outcome {
    let mut r = repo(&a.inventory)?;
    let key_path =
        a.key_file.clone().or_else(|| locations::admin_key_file(&env)).ok_or_else(|| SecretsError::NoHome {
            what: "to keep the admin key".into(),
            fix: "set SOPS_AGE_KEY_FILE or pass --key-file".into(),
        })?;
    let o = r.init(&key_path)?;
    if let Some(mode) = o.loose_mode {
        eprintln!(
            "warning: `{}` has mode {mode:04o}; other users may read it\n  help: chmod 600 {}",
            key_path.display(),
            key_path.display()
        );
    }
    let mut out = format!(
        "admin identity: {} ({})\nrecipient: {}\n{}: {}\n",
        o.key_path.display(),
        if o.created { "created, mode 0600" } else { "existing" },
        o.recipient,
        r.path.display(),
        if o.admin_added { "added to [secrets].admins" } else { "already in [secrets].admins" },
    );
    if o.sops_yaml_written {
        out.push_str(&format!("{}: written\n", r.root.join(".sops.yaml").display()));
    }
    if o.reencrypt {
        out.push_str("next: `n3x secrets tokens` re-encrypts the token files for the new admin\n");
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn add_host(a: &AddHostArgs) -> Outcome {
    let mut r = repo(&a.inventory)?;
    let key = if a.generate {
        match a.out.clone() {
            Some(d) => HostKey::Generate { dir: d, chosen: true },
            None => HostKey::Generate {
                dir: locations::extra_files(&env, &r.cluster, &a.host).ok_or_else(|| SecretsError::NoHome {
                    what: "to put the host key".into(),
                    fix: "pass --out DIR".into(),
                })?,
                chosen: false,
            },
        }
    } else {
        HostKey::Given(a.public_key.clone().unwrap_or_default())
    };
    let o = r.add_host(&a.host, key)?;
    print_stdout(&added(&r, &a.host, &o));
    Ok(exit::OK)
}

fn added(r: &Repo, host: &str, o: &AddHostOutcome) -> String {
    let mut out = format!("host `{host}`: age recipient {}\n", o.recipient);
    let inv = r.path.display();
    out.push_str(&match &o.change {
        Change::Unchanged => format!("{inv}: unchanged\n"),
        Change::Added => format!("{inv}: set hosts.{host}.age\n"),
        Change::Replaced(old) => format!("{inv}: replaced hosts.{host}.age (was {old})\n"),
    });
    if o.sops_yaml_written {
        out.push_str(&format!("{}: written\n", r.root.join(".sops.yaml").display()));
    }
    for n in &o.notes {
        out.push_str(n);
        out.push('\n');
    }
    if o.reencrypt {
        out.push_str(&format!("next: `n3x secrets tokens` re-encrypts the token files for `{host}`\n"));
    }
    out
}

fn tokens(a: &TokensArgs, rotate: bool) -> Outcome {
    let r = repo(&a.inventory)?;
    let default_key = locations::admin_key_file(&env);
    for h in &r.plan.missing_age {
        eprintln!(
            "warning: host `{h}` has no age recipient and cannot read its token\n  help: run `n3x secrets add-host {h} <ssh-host-key.pub>` (or `--generate`), then `n3x secrets tokens`"
        );
    }
    let o = r.tokens(rotate, &mut || repo::admin_identities(a.key.as_deref(), default_key.clone()))?;
    if let TokenAction::Generate { orphan_agent_file: true } = o.action {
        eprintln!(
            "warning: `{}` exists without `{}`; both get new tokens",
            r.abs(&r.plan.agent.path).display(),
            r.abs(&r.plan.server.path).display()
        );
    }
    let mut out = String::new();
    if o.up_to_date {
        out.push_str(&format!("{} and {}: up to date\n", r.plan.server.path, r.plan.agent.path));
    }
    for f in &o.written {
        out.push_str(&format!(
            "{}: {} for {} recipient(s): admins + {}\n",
            f.path,
            f.keys.join(", "),
            f.recipients,
            if f.readers.is_empty() { "no hosts".to_string() } else { f.readers.join(", ") }
        ));
    }
    if o.sops_yaml_written {
        out.push_str(".sops.yaml: written\n");
    }
    if o.rotated {
        out.push_str(
            "note: a running cluster keeps its old server token until `k3s token rotate` runs on a server (see crates/n3x-secrets/README.md)\n",
        );
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn check(a: &TokensArgs) -> Outcome {
    let r = repo(&a.inventory)?;
    let key = a.key.clone().or_else(|| locations::admin_key_file(&env)).filter(|p| p.exists());
    let cluster = r.cluster.clone();
    let Audit { problems, without_key } =
        audit::audit(&r, key.as_deref(), &|host| locations::extra_files(&env, &cluster, host));
    if without_key {
        eprintln!("note: no admin key found; skipped decrypting the files and searching for their values");
    }
    if problems.is_empty() {
        print_stdout(&format!(
            "ok: {} and {} are encrypted to exactly the admins and hosts that need them; no plaintext secrets found\n",
            r.plan.server.path, r.plan.agent.path
        ));
        return Ok(exit::OK);
    }
    print_stdout(&problems.iter().map(|p| format!("{p}\n")).collect::<String>());
    eprintln!(
        "error: {} problem(s) found\n  help: fix each line above, then run `n3x secrets check` again",
        problems.len()
    );
    Ok(exit::INVENTORY)
}

fn decrypt(a: &DecryptArgs) -> Outcome {
    let file = match &a.sops {
        Some(f) => f.clone(),
        None => {
            let r = repo(&a.inventory)?;
            r.abs(&r.plan.server.path)
        }
    };
    let ids = repo::read_identities(&a.key)?;
    let value = repo::decrypt(&file, &ids, &a.key_path)?;
    let mut line = Zeroizing::new(value.to_string());
    line.push('\n');
    print_stdout(&line);
    Ok(exit::OK)
}
