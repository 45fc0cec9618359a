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
//!
//! No function here prints or logs. Errors never contain a secret: they name paths, keys
//! and recipients (public), never plaintext values or private keys.

pub mod atomic;
pub mod inventory;
pub mod keys;
pub mod plan;
pub mod scan;
pub mod sops;

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
    #[error("invalid age key file{}: {reason}", if *line > 0 { format!(" (line {line})") } else { String::new() })]
    KeyFile { line: usize, reason: String },
    #[error("n3x.toml is not valid TOML: {message}")]
    Toml { message: String },
    #[error("n3x.toml cannot be edited: {what}")]
    InventoryShape { what: String },
    #[error("host `{host}` is not in n3x.toml")]
    UnknownHost { host: String },
    #[error("`[secrets].file` = `{file}` must be a relative path inside the repository")]
    BadSecretsFile { file: String },
    #[error("internal error: {0}")]
    Internal(String),
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "nothing".into() } else { v.iter().map(|r| format!("`{r}`")).collect::<Vec<_>>().join(", ") }
}

impl Error {
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
            Error::KeyFile { .. } => "an age key file holds `AGE-SECRET-KEY-1...` lines, as `age-keygen` writes".into(),
            Error::Toml { .. } | Error::InventoryShape { .. } => "run `n3x check` and fix n3x.toml first".into(),
            Error::UnknownHost { .. } => "use a host name from `[hosts]` in n3x.toml (`n3x show` lists them)".into(),
            Error::BadSecretsFile { .. } => "set `[secrets].file` to a path like `secrets/k3s.yaml`".into(),
            Error::Internal(_) => "report this as a bug".into(),
        }
    }
}
