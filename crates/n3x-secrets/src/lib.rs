//! n3x-secrets: age identities, `.sops.yaml` and k3s tokens in SOPS files that sops and
//! sops-nix read.
//!
//! - [`sops`]: the SOPS YAML format (encrypt a flat map; decrypt any sops-written YAML,
//!   nested maps and lists included) with age recipients, X25519 or ssh-ed25519.
//! - [`keys`]: age identities, SSH ed25519 host keys, ssh-to-age.
//! - [`plan`]: which file holds which token and who may read it; `.sops.yaml`.
//! - [`inventory`]: comment-preserving edits of `n3x.toml`.
//! - [`scan`]: plaintext secrets and loose key permissions in a tree.
//! - [`atomic`]: atomic file writes.
//! - [`repo`]: the workflows `n3x secrets` runs on a repository (init, add-host, tokens,
//!   decrypt), each returning what it did for the binary to print.
//! - [`audit`]: `n3x secrets check`: every problem with the files, keys and repository.
//! - [`locations`]: where sops looks for keys, and where generated host keys go.
//!
//! No function here prints or logs. Errors never contain a secret: they name paths, keys
//! and recipients (public), never plaintext values or private keys.

pub mod atomic;
pub mod audit;
pub mod inventory;
pub mod keys;
pub mod locations;
pub mod plan;
pub mod repo;
pub mod scan;
pub mod sops;

use std::path::PathBuf;

use rand::RngCore;
pub use zeroize::Zeroizing;

/// A k3s token: 32 random bytes from the OS CSPRNG as 64 hex digits (256 bits). k3s takes any
/// string as `--token`/`--agent-token`; hex needs no quoting in YAML, shells or systemd.
pub fn generate_token() -> Zeroizing<String> {
    let mut b = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut b[..]);
    let mut s = Zeroizing::new(String::with_capacity(64));
    for byte in b.iter() {
        s.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    s
}

/// Which documented outcome an error is; the binary maps it to an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// What was given cannot work: a wrong key, host, path or flag, or a file that cannot
    /// be read or written.
    Usage,
    /// The inventory lacks something, or a secrets file does not decrypt or verify.
    Problem,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not valid YAML: {message}")]
    Yaml { message: String },
    #[error("not a SOPS file: {reason}")]
    NotSops { reason: String },
    #[error("cannot decrypt the value at `{path}`: {reason}")]
    Value { path: String, reason: String },
    #[error("MAC mismatch: {reason}")]
    MacMismatch { reason: String },
    #[error("the file's data key is not encrypted to any age recipient{}", if others.is_empty() { String::new() } else { format!(" (only to: {})", others.join(", ")) })]
    NoAgeRecipients { others: Vec<String> },
    #[error(
        "none of the given identities can decrypt this file (it is encrypted to {}; the key given matches {})",
        list(recipients),
        list(have)
    )]
    NoMatchingIdentity { recipients: Vec<String>, have: Vec<String> },
    #[error("no recipients to encrypt to")]
    NoRecipients,
    #[error("`{recipient}` is not an age recipient (`age1...`) or an SSH public key")]
    Recipient { recipient: String },
    #[error("invalid SSH key: {reason}")]
    SshKey { reason: String },
    #[error("the SSH key is not an ed25519 key")]
    NotEd25519,
    #[error("the SSH private key is passphrase-protected")]
    EncryptedSshKey,
    #[error("that is a private key; `add-host` takes the public key")]
    PrivateKeyGiven,
    #[error("invalid age key file{}: {reason}", if *line > 0 { format!(" (line {line})") } else { String::new() })]
    KeyFile { line: usize, reason: String },
    #[error("n3x.toml is not valid TOML: {message}")]
    Toml { message: String },
    #[error("n3x.toml cannot be edited: {what}")]
    InventoryShape { what: String },
    #[error("`{}` has errors", .path.display())]
    InventoryErrors { path: PathBuf },
    #[error("`n3x secrets` edits the inventory in place and cannot read it from standard input")]
    InventoryFromStdin,
    #[error("there is no `{}` here", .path.display())]
    NoInventory { path: PathBuf },
    #[error("host `{host}` is not in {}", .inventory.display())]
    UnknownHost { host: String, inventory: PathBuf, known: Vec<String> },
    #[error("`[secrets].file` = `{file}` must be a relative path inside the repository")]
    BadSecretsFile { file: String },
    #[error("secret key `{key}` is not a plain key (letters, digits, `_`, `.`, `-`)")]
    InvalidKeyName { key: String },
    #[error("cannot {action} `{}`: {source}", .path.display())]
    Io { action: String, path: PathBuf, source: std::io::Error },
    #[error("cannot tell where {what}: HOME is not set")]
    NoHome { what: String, fix: String },
    #[error("`{}` holds no age X25519 identity", .path.display())]
    NotAnAgeIdentity { path: PathBuf },
    #[error("`{}` exists already", .path.display())]
    HostKeyExists { path: PathBuf, host: String },
    #[error("`[secrets].admins` in {} is empty: nobody could edit the tokens", .inventory.display())]
    NoAdmins { inventory: PathBuf },
    #[error("admin key `{}` does not exist", .path.display())]
    NoAdminKey { path: PathBuf },
    #[error("`{}` has no string value `{key}`", .file.display())]
    MissingToken { file: PathBuf, key: String },
    #[error("`{key}` in `{}` is not a single value", .file.display())]
    NotASingleValue { file: PathBuf, key: String },
    #[error("`{}` has no key `{key}`", .file.display())]
    NoSuchKey { file: PathBuf, key: String },
    /// An error about one file, named first.
    #[error("`{}`: {source}", .file.display())]
    In { file: PathBuf, source: Box<Error> },
    #[error("{step} failed")]
    Crypto { step: &'static str },
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "nothing".into() } else { v.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ") }
}

impl Error {
    /// `self`, about `file`.
    pub fn in_file(self, file: &std::path::Path) -> Error {
        Error::In { file: file.to_path_buf(), source: Box::new(self) }
    }

    pub fn io(action: impl Into<String>, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io { action: action.into(), path: path.to_path_buf(), source }
    }

    /// The fix, for the CLI's `help:` line.
    pub fn help(&self) -> String {
        match self {
            Error::Yaml { .. } | Error::NotSops { .. } => "check that the file was written by sops or `n3x secrets tokens`".into(),
            Error::Value { .. } | Error::MacMismatch { .. } => {
                "the file was modified outside sops; restore it from version control, or regenerate it with `n3x secrets rotate`".into()
            }
            Error::NoAgeRecipients { .. } => "n3x reads age-encrypted SOPS files only".into(),
            Error::NoMatchingIdentity { .. } => {
                "pass the identity of one of the listed recipients with `--key` (an age key file or an SSH private key)".into()
            }
            Error::NoRecipients => "add an admin with `n3x secrets init`".into(),
            Error::Recipient { .. } => "use the output of `age-keygen -y`, or let `n3x secrets` write it".into(),
            Error::SshKey { .. } | Error::NotEd25519 => {
                "give the host's `/etc/ssh/ssh_host_ed25519_key.pub` (an `ssh-ed25519 AAAA...` line) or its path".into()
            }
            Error::EncryptedSshKey => "use an unencrypted key (host keys are), or an age identity".into(),
            Error::PrivateKeyGiven => "give the `.pub` file (e.g. /etc/ssh/ssh_host_ed25519_key.pub)".into(),
            Error::KeyFile { .. } => "an age key file holds `AGE-SECRET-KEY-1...` lines, as `age-keygen` writes".into(),
            Error::Toml { .. } | Error::InventoryShape { .. } => "run `n3x check` and fix n3x.toml first".into(),
            Error::InventoryErrors { path } => format!("run `n3x check -f {}` and fix them first", path.display()),
            Error::InventoryFromStdin => "give the file with `-f n3x.toml`".into(),
            Error::NoInventory { .. } => {
                "run in the directory holding n3x.toml, or give it with `-f FILE` (the embedded reference cannot be edited)".into()
            }
            Error::UnknownHost { known, .. } => format!("hosts: {}", known.join(", ")),
            Error::BadSecretsFile { .. } => "set `[secrets].file` to a path like `secrets/k3s.yaml`".into(),
            Error::InvalidKeyName { .. } => "name secrets like `k3s-token`".into(),
            Error::Io { .. } => "check the path and its permissions".into(),
            Error::NoHome { fix, .. } => fix.clone(),
            Error::NotAnAgeIdentity { .. } => {
                "admins need an `AGE-SECRET-KEY-1...` identity; point SOPS_AGE_KEY_FILE at one or pass --key-file".into()
            }
            Error::HostKeyExists { path, host } => format!(
                "to record it, run `n3x secrets add-host {host} {}.pub`; to replace it, delete it first",
                path.display()
            ),
            Error::NoAdmins { .. } => "run `n3x secrets init` first".into(),
            Error::NoAdminKey { .. } => "run `n3x secrets init`, set SOPS_AGE_KEY_FILE, or pass --key PATH".into(),
            Error::MissingToken { .. } => "run `n3x secrets rotate` to write fresh tokens".into(),
            Error::NotASingleValue { .. } | Error::NoSuchKey { .. } => {
                "give the path of one value, nested keys separated by `/` (e.g. `k3s-token`)".into()
            }
            Error::In { source, .. } => source.help(),
            Error::Crypto { .. } => "report this as a bug".into(),
        }
    }

    /// Which outcome this is, for the exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownHost { .. }
            | Error::SshKey { .. }
            | Error::NotEd25519
            | Error::Recipient { .. }
            | Error::EncryptedSshKey
            | Error::PrivateKeyGiven
            | Error::KeyFile { .. }
            | Error::InventoryFromStdin
            | Error::NoInventory { .. }
            | Error::Io { .. }
            | Error::NoHome { .. }
            | Error::NotAnAgeIdentity { .. }
            | Error::HostKeyExists { .. }
            | Error::NoAdminKey { .. }
            | Error::NotASingleValue { .. }
            | Error::NoSuchKey { .. } => ErrorKind::Usage,
            Error::In { source, .. } => source.kind(),
            _ => ErrorKind::Problem,
        }
    }
}
