//! Keys: age identities, SSH ed25519 keys, and the ssh-to-age conversion.
//!
//! ssh-to-age (Mic92/ssh-to-age `convert.go`), which sops-nix runs on a host's
//! `/etc/ssh/ssh_host_ed25519_key` at activation:
//! - public: the ed25519 point (Edwards y) maps to Curve25519's Montgomery u coordinate,
//!   `u = (1 + y) / (1 - y)`, encoded as classic Bech32 with HRP `age` (`age1...`).
//! - private: the first 32 bytes of SHA-512(ed25519 seed) (the unclamped X25519 scalar; X25519
//!   clamps it on use), Bech32 with HRP `AGE-SECRET-KEY-`, upper case.
//!
//! The OpenSSH private key format (`openssh-key-v1`, OpenSSH's PROTOCOL.key) is written and
//! read here for unencrypted ed25519 keys only: that is what `ssh-keygen -t ed25519 -N ''`
//! produces for host keys.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bech32::{Bech32, Hrp};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use rand::RngCore;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::Error;

const ED25519: &str = "ssh-ed25519";
// Split so that this source file does not itself look like a private key to scanners.
const PEM_BEGIN: &str = concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----");
const PEM_END: &str = concat!("-----END OPENSSH ", "PRIVATE KEY-----");
const AUTH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// An ed25519 SSH public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPublicKey {
    /// The 32-byte Edwards point.
    pub key: [u8; 32],
    pub comment: String,
}

impl SshPublicKey {
    /// Parses one authorized_keys-style line: `ssh-ed25519 AAAA... [comment]`.
    pub fn parse(line: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::SshKey { reason: reason.to_string() };
        let line = line.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
        let mut parts = line.split_whitespace();
        let kind = parts.next().ok_or_else(|| bad("it is empty"))?;
        if kind != ED25519 {
            // Name the type only when it is one: the argument might be a pasted secret.
            let known = ["ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];
            return Err(bad(&match known.iter().find(|k| **k == kind) {
                Some(k) => format!(
                    "the key type is `{k}`, but only `ssh-ed25519` keys can be converted to age (ssh-to-age supports ed25519 only)"
                ),
                None => "expected an `ssh-ed25519 AAAA...` public key line".to_string(),
            }));
        }
        let blob = B64
            .decode(parts.next().ok_or_else(|| bad("the base64 key is missing"))?)
            .map_err(|_| bad("the key is not valid base64"))?;
        let comment = parts.collect::<Vec<_>>().join(" ");
        let mut r = Reader(&blob);
        if r.string()? != ED25519.as_bytes() {
            return Err(bad("the key blob does not hold an ssh-ed25519 key"));
        }
        let key: [u8; 32] = r.string()?.try_into().map_err(|_| bad("the ed25519 key is not 32 bytes"))?;
        if !r.0.is_empty() {
            return Err(bad("trailing bytes after the key"));
        }
        Ok(SshPublicKey { key, comment })
    }

    /// The SSH wire encoding: string "ssh-ed25519", string key.
    pub fn wire(&self) -> Vec<u8> {
        let mut w = Vec::new();
        put_string(&mut w, ED25519.as_bytes());
        put_string(&mut w, &self.key);
        w
    }

    /// `ssh-ed25519 AAAA... comment` (the comment only if non-empty).
    pub fn to_line(&self) -> String {
        let mut s = format!("{ED25519} {}", B64.encode(self.wire()));
        if !self.comment.is_empty() {
            s.push(' ');
            s.push_str(&self.comment);
        }
        s
    }

    /// The age X25519 recipient ssh-to-age derives from this key.
    pub fn to_age_recipient(&self) -> Result<String, Error> {
        ed25519_to_age_recipient(&self.key)
    }
}

/// ssh-to-age, public half: ed25519 public key -> `age1...`.
pub fn ed25519_to_age_recipient(key: &[u8; 32]) -> Result<String, Error> {
    let point = CompressedEdwardsY(*key)
        .decompress()
        .ok_or_else(|| Error::SshKey { reason: "the ed25519 key is not a point on the curve".into() })?;
    let u = point.to_montgomery().to_bytes();
    let hrp = Hrp::parse("age").map_err(|_| Error::Crypto { step: "bech32 prefix `age`" })?;
    bech32::encode::<Bech32>(hrp, &u).map_err(|_| Error::Crypto { step: "bech32 encoding" })
}

/// ssh-to-age, private half: ed25519 seed -> `AGE-SECRET-KEY-1...`.
pub fn ed25519_seed_to_age_identity(seed: &[u8; 32]) -> Result<Zeroizing<String>, Error> {
    let digest = Zeroizing::new(Sha512::digest(seed));
    let hrp = Hrp::parse("AGE-SECRET-KEY-").map_err(|_| Error::Crypto { step: "bech32 prefix" })?;
    bech32::encode_upper::<Bech32>(hrp, &digest[..32])
        .map(Zeroizing::new)
        .map_err(|_| Error::Crypto { step: "bech32 encoding" })
}

/// An ed25519 key pair (an SSH host key). The seed is wiped on drop.
pub struct Ed25519KeyPair {
    seed: Zeroizing<[u8; 32]>,
    pub public: SshPublicKey,
}

impl std::fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519KeyPair").field("public", &self.public).finish_non_exhaustive()
    }
}

impl Ed25519KeyPair {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate(comment: &str) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut seed[..]);
        Self::from_seed(seed, comment)
    }

    fn from_seed(seed: Zeroizing<[u8; 32]>, comment: &str) -> Self {
        // RFC 8032: the secret scalar is the clamped first half of SHA-512(seed); A = s * B.
        let h = Zeroizing::new(Sha512::digest(&seed[..]));
        let mut lo = Zeroizing::new([0u8; 32]);
        lo.copy_from_slice(&h[..32]);
        let key = EdwardsPoint::mul_base_clamped(*lo).compress().to_bytes();
        Ed25519KeyPair { seed, public: SshPublicKey { key, comment: comment.to_string() } }
    }

    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The age identity sops-nix derives from this host key.
    pub fn to_age_identity(&self) -> Result<Zeroizing<String>, Error> {
        ed25519_seed_to_age_identity(&self.seed)
    }

    /// The unencrypted OpenSSH private key file (`ssh-keygen -t ed25519 -N ''` format).
    pub fn to_openssh(&self) -> Zeroizing<String> {
        let mut private = Zeroizing::new(Vec::new());
        let check = rand::rngs::OsRng.next_u32();
        private.extend_from_slice(&check.to_be_bytes());
        private.extend_from_slice(&check.to_be_bytes());
        put_string(&mut private, ED25519.as_bytes());
        put_string(&mut private, &self.public.key);
        let mut sk = Zeroizing::new([0u8; 64]);
        sk[..32].copy_from_slice(&self.seed[..]);
        sk[32..].copy_from_slice(&self.public.key);
        put_string(&mut private, &sk[..]);
        put_string(&mut private, self.public.comment.as_bytes());
        // Cipher "none" has block size 8; pad with 1, 2, 3, ...
        let mut pad = 1u8;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut blob = Zeroizing::new(Vec::new());
        blob.extend_from_slice(AUTH_MAGIC);
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"none");
        put_string(&mut blob, b"");
        blob.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut blob, &self.public.wire());
        put_string(&mut blob, &private);
        let b64 = Zeroizing::new(B64.encode(&blob[..]));
        let mut out = Zeroizing::new(String::new());
        out.push_str(PEM_BEGIN);
        out.push('\n');
        for chunk in b64.as_bytes().chunks(70) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(PEM_END);
        out.push('\n');
        out
    }

    /// Reads an unencrypted OpenSSH ed25519 private key.
    pub fn from_openssh(text: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::SshKey { reason: reason.to_string() };
        let start = text.find(PEM_BEGIN).ok_or_else(|| bad("not an OpenSSH private key"))?;
        let body = &text[start + PEM_BEGIN.len()..];
        let end = body.find(PEM_END).ok_or_else(|| bad("the private key has no END line"))?;
        let b64: Zeroizing<String> = Zeroizing::new(body[..end].chars().filter(|c| !c.is_whitespace()).collect());
        let blob = Zeroizing::new(B64.decode(b64.as_bytes()).map_err(|_| bad("the private key is not valid base64"))?);
        let rest = blob.strip_prefix(AUTH_MAGIC).ok_or_else(|| bad("not an openssh-key-v1 key"))?;
        let mut r = Reader(rest);
        let cipher = r.string()?;
        let _kdf = r.string()?;
        let _kdf_options = r.string()?;
        if cipher != b"none" {
            return Err(Error::EncryptedSshKey);
        }
        if r.u32()? != 1 {
            return Err(bad("the file holds more than one key"));
        }
        let public_blob = r.string()?;
        let mut p = Reader(r.string()?);
        if p.u32()? != p.u32()? {
            return Err(bad("the private key's check bytes differ (corrupt file)"));
        }
        let kind = p.string()?;
        if kind != ED25519.as_bytes() {
            return Err(Error::NotEd25519);
        }
        let pk = p.string()?;
        let sk = p.string()?;
        let comment = String::from_utf8_lossy(p.string()?).into_owned();
        if sk.len() != 64 || pk.len() != 32 || sk[32..] != *pk {
            return Err(bad("malformed ed25519 private key"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&sk[..32]);
        let pair = Self::from_seed(seed, &comment);
        if pair.public.key[..] != *pk || pair.public.wire() != public_blob {
            return Err(bad("the private key does not match its public key"));
        }
        Ok(pair)
    }
}

fn put_string(w: &mut Vec<u8>, s: &[u8]) {
    w.extend_from_slice(&(s.len() as u32).to_be_bytes());
    w.extend_from_slice(s);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, Error> {
        if self.0.len() < 4 {
            return Err(Error::SshKey { reason: "truncated key data".into() });
        }
        let (n, rest) = self.0.split_at(4);
        self.0 = rest;
        Ok(u32::from_be_bytes([n[0], n[1], n[2], n[3]]))
    }

    fn string(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        if self.0.len() < n {
            return Err(Error::SshKey { reason: "truncated key data".into() });
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(s)
    }
}

/// A new admin age identity; returns (file contents in `age-keygen` layout, recipient).
pub fn generate_age_identity(created: &str) -> (Zeroizing<String>, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    use age::secrecy::ExposeSecret;
    let secret = id.to_string();
    let text = Zeroizing::new(format!("# created: {created}\n# public key: {recipient}\n{}\n", secret.expose_secret()));
    (text, recipient)
}

/// Identities that can decrypt SOPS data keys, loaded from one key file.
pub struct Identities {
    list: Vec<Box<dyn age::Identity>>,
    /// The public recipients that match these identities, where they can be computed:
    /// `age1...` for X25519 identities, both forms for an ed25519 SSH key.
    pub recipients: Vec<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities").field("recipients", &self.recipients).finish_non_exhaustive()
    }
}

impl Identities {
    /// Parses an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments) or an
    /// OpenSSH private key. An ed25519 SSH key yields two identities, as in recent sops:
    /// the native `ssh-ed25519` one and its ssh-to-age X25519 conversion (what sops-nix uses).
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.contains(PEM_BEGIN) {
            return Self::from_ssh(text);
        }
        let mut list: Vec<Box<dyn age::Identity>> = Vec::new();
        let mut recipients = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.starts_with("AGE-SECRET-KEY-1") {
                // Never echo the line: it may be a secret in some other format.
                return Err(Error::KeyFile {
                    line: i + 1,
                    reason: "expected `AGE-SECRET-KEY-1...` (plugin and other identities are not supported)".into(),
                });
            }
            let id = age::x25519::Identity::from_str(line)
                .map_err(|_| Error::KeyFile { line: i + 1, reason: "not a valid age X25519 identity".into() })?;
            recipients.push(id.to_public().to_string());
            list.push(Box::new(id));
        }
        if list.is_empty() {
            return Err(Error::KeyFile { line: 0, reason: "the file holds no age identity".into() });
        }
        Ok(Identities { list, recipients })
    }

    fn from_ssh(text: &str) -> Result<Self, Error> {
        let native = age::ssh::Identity::from_buffer(text.as_bytes(), None)
            .map_err(|_| Error::SshKey { reason: "the SSH private key cannot be read".into() })?;
        match native {
            age::ssh::Identity::Unencrypted(_) => {}
            age::ssh::Identity::Encrypted(_) => return Err(Error::EncryptedSshKey),
            age::ssh::Identity::Unsupported(_) => {
                return Err(Error::SshKey { reason: "this SSH key type is not supported by age".into() });
            }
        }
        let mut list: Vec<Box<dyn age::Identity>> = vec![Box::new(native)];
        let mut recipients = Vec::new();
        match Ed25519KeyPair::from_openssh(text) {
            Ok(pair) => {
                let converted = pair.to_age_identity()?;
                let id = age::x25519::Identity::from_str(&converted)
                    .map_err(|_| Error::Crypto { step: "ssh-to-age identity" })?;
                recipients.push(id.to_public().to_string());
                recipients.push(pair.public.to_line());
                list.push(Box::new(id));
            }
            // An RSA key: the native identity alone (ssh-to-age has no RSA conversion).
            Err(Error::NotEd25519) => {}
            Err(e) => return Err(e),
        }
        Ok(Identities { list, recipients })
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.list.iter().map(|b| b.as_ref() as &dyn age::Identity)
    }
}
