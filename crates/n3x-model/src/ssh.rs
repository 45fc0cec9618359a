//! OpenSSH public keys as `authorized_keys` holds them: `<type> <base64 blob> [comment]`.
//! The blob must decode, and must name the same key type it is written under, which is
//! what sshd checks too: a truncated paste or a private key is caught here, not at login.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The key types OpenSSH's sshd accepts by default (ssh-rsa with SHA-2 signatures).
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
];

/// Why a line is not a usable public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    PrivateKey,
    /// The first word is not a key type (`from="..."` options are not supported either).
    UnknownType(String),
    MissingBlob,
    NotBase64,
    /// The blob is cut short, or names another type than the line does.
    Mismatch,
}

impl KeyProblem {
    pub fn message(&self) -> String {
        match self {
            KeyProblem::PrivateKey => "this is a private key".into(),
            KeyProblem::UnknownType(t) => format!("`{t}` is not an SSH key type"),
            KeyProblem::MissingBlob => "the key's base64 part is missing".into(),
            KeyProblem::NotBase64 => "the key's base64 part does not decode".into(),
            KeyProblem::Mismatch => "the key data is cut short or of another type than the line says".into(),
        }
    }
}

/// A parsed public key: its type and comment (the blob is only validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub key_type: String,
    pub comment: Option<String>,
}

fn read_string(blob: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(len)?;
    Some((blob.get(4..end)?, &blob[end..]))
}

/// Parses one `authorized_keys`-style line.
pub fn parse(line: &str) -> Result<PublicKey, KeyProblem> {
    let line = line.trim();
    if line.contains("PRIVATE KEY") {
        return Err(KeyProblem::PrivateKey);
    }
    let mut words = line.split_whitespace();
    let key_type = words.next().unwrap_or_default();
    if !KEY_TYPES.contains(&key_type) {
        return Err(KeyProblem::UnknownType(key_type.to_owned()));
    }
    let blob = words.next().ok_or(KeyProblem::MissingBlob)?;
    let bytes = STANDARD.decode(blob).map_err(|_| KeyProblem::NotBase64)?;
    let (named, rest) = read_string(&bytes).ok_or(KeyProblem::Mismatch)?;
    if named != key_type.as_bytes() || rest.is_empty() {
        return Err(KeyProblem::Mismatch);
    }
    // Each type's remaining fields: one string (ed25519), curve + point (ecdsa), e + n (rsa),
    // plus the application for security keys. All must be whole.
    let fields = match key_type {
        "ssh-ed25519" => 1,
        "sk-ssh-ed25519@openssh.com" => 2,
        "sk-ecdsa-sha2-nistp256@openssh.com" => 3,
        _ => 2,
    };
    let mut rest = rest;
    for _ in 0..fields {
        let (field, after) = read_string(rest).ok_or(KeyProblem::Mismatch)?;
        if field.is_empty() {
            return Err(KeyProblem::Mismatch);
        }
        rest = after;
    }
    if key_type == "ssh-ed25519" && bytes.len() != 4 + 11 + 4 + 32 {
        return Err(KeyProblem::Mismatch);
    }
    let comment: Vec<&str> = words.collect();
    Ok(PublicKey { key_type: key_type.to_owned(), comment: (!comment.is_empty()).then(|| comment.join(" ")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ed25519 public key (of a throwaway pair).
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIg1tSeDbaCxo+Nd4dkyEITHaA5kYOGLbWiTHXUzfDMO alice@laptop";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAvSwoLeFp+jPugqjUPYJH7cVrEJ7H2qNcaedRLJZ306I+b/CFUlRTxwejClv5+NrfZkNV9/JEIAIeLq13uG04w= ops";

    #[test]
    fn real_keys_parse() {
        let k = parse(ED).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.comment.as_deref(), Some("alice@laptop"));
        assert!(parse(ED.rsplit_once(' ').map_or(ED, |(k, _)| k)).is_ok_and(|k| k.comment.is_none()));
        assert_eq!(parse(ECDSA).map(|k| k.key_type), Ok("ecdsa-sha2-nistp256".to_owned()));
    }

    #[test]
    fn broken_keys_say_why() {
        assert_eq!(parse("-----BEGIN OPENSSH PRIVATE KEY-----"), Err(KeyProblem::PrivateKey));
        assert_eq!(
            parse("from=\"10.0.0.1\" ssh-ed25519 AAAA"),
            Err(KeyProblem::UnknownType("from=\"10.0.0.1\"".into()))
        );
        assert_eq!(parse("ssh-ed25519"), Err(KeyProblem::MissingBlob));
        assert_eq!(parse("ssh-ed25519 not*base64"), Err(KeyProblem::NotBase64));
        // Cut short: a paste that lost its end.
        let short = &ED[..60];
        assert!(matches!(parse(short), Err(KeyProblem::NotBase64 | KeyProblem::Mismatch)));
        // An ed25519 blob under another type's name.
        let relabelled = ED.replacen("ssh-ed25519", "ssh-rsa", 1);
        assert_eq!(parse(&relabelled), Err(KeyProblem::Mismatch));
        assert_eq!(parse(""), Err(KeyProblem::UnknownType(String::new())));
    }
}
