//! The SOPS file format (YAML store, age key source), as sops 3.x reads and writes it.
//!
//! Facts this follows (getsops/sops): `aes/cipher.go` (value encoding: AES-256-GCM, 32-byte
//! IV, 16-byte tag, AAD = the key path joined with `:` plus a trailing `:`); `sops.go`
//! (`shouldBeEncrypted`, the MAC: SHA-512 over every leaf's plaintext bytes in document order,
//! upper-case hex, stored encrypted with AAD = `lastmodified` in RFC 3339); `age/keysource.go`
//! (the 32-byte data key, armored, one age file per recipient); `stores/yaml/store.go` (the
//! `sops:` block, indent 4).

use std::io::Read;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use aes::Aes256;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use sha2::{Digest, Sha512};
use yaml_rust2::{Yaml, YamlLoader};
use zeroize::Zeroizing;

use crate::Error;
use crate::keys::Identities;

/// AES-256-GCM with the 32-byte nonce sops uses (`cipher.NewGCMWithNonceSize(aes, 32)`).
type SopsCipher = AesGcm<Aes256, U32>;

/// The sops version written into `sops.version`. Readers do not check it; the layout written
/// (no empty `kms: []` lists) is that of sops 3.10+, which older readers also accept.
pub const SOPS_VERSION: &str = "3.10.2";

/// sha256("sops"): the MAC's first input under `mac_only_encrypted` (sops >= 3.9).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// The 32-byte data key; wiped on drop.
struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut k[..]);
        DataKey(k)
    }

    fn cipher(&self) -> SopsCipher {
        SopsCipher::new((&self.0[..]).into())
    }
}

/// Encrypts one value: `ENC[AES256_GCM,data:..,iv:..,tag:..,type:..]`.
fn encrypt_value(key: &DataKey, plaintext: &[u8], aad: &str, kind: &str) -> Result<String, Error> {
    let mut iv = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let sealed = key
        .cipher()
        .encrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: plaintext, aad: aad.as_bytes() })
        .map_err(|_| Error::Crypto { step: "AES-GCM encryption" })?;
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!("ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]", B64.encode(data), B64.encode(iv), B64.encode(tag)))
}

/// Decrypts one `ENC[...]` value; returns the plaintext and its `type`. Errors name the path
/// (the AAD), never the plaintext.
fn decrypt_value(key: &DataKey, value: &str, aad: &str) -> Result<(Zeroizing<Vec<u8>>, String), Error> {
    let path = aad.trim_end_matches(':').replace(':', "/");
    let bad = |reason: &str| Error::Value { path: path.clone(), reason: reason.to_string() };
    let inner = value
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| bad("it is not an `ENC[AES256_GCM,...]` value"))?;
    let mut fields = [None; 4];
    for part in inner.split(',') {
        let (name, val) = part.split_once(':').ok_or_else(|| bad("malformed ENC[] value"))?;
        let slot = match name {
            "data" => 0,
            "iv" => 1,
            "tag" => 2,
            "type" => 3,
            _ => return Err(bad("malformed ENC[] value")),
        };
        if fields[slot].replace(val).is_some() || val.is_empty() {
            return Err(bad("malformed ENC[] value"));
        }
    }
    let [Some(data), Some(iv), Some(tag), Some(kind)] = fields else {
        return Err(bad("malformed ENC[] value"));
    };
    let data = B64.decode(data).map_err(|_| bad("`data` is not base64"))?;
    let iv = B64.decode(iv).map_err(|_| bad("`iv` is not base64"))?;
    let tag = B64.decode(tag).map_err(|_| bad("`tag` is not base64"))?;
    if iv.len() != 32 {
        return Err(bad("the IV is not 32 bytes (sops always uses 32)"));
    }
    if tag.len() != 16 {
        return Err(bad("the tag is not 16 bytes"));
    }
    let mut sealed = data;
    sealed.extend_from_slice(&tag);
    let plain = key
        .cipher()
        .decrypt(Nonce::<U32>::from_slice(&iv), Payload { msg: &sealed, aad: aad.as_bytes() })
        .map_err(|_| bad("authentication failed: wrong key, or the value was modified or moved"))?;
    Ok((Zeroizing::new(plain), kind.to_string()))
}

/// A decrypted leaf or branch. `Debug` never prints scalar contents.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Zeroizing<String>),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Map(m) => f.debug_map().entries(m.iter().map(|(k, v)| (k, v))).finish(),
            Value::Null => f.write_str("null"),
            _ => f.write_str("<redacted>"),
        }
    }
}

impl Value {
    /// The bytes sops' `ToBytes` feeds into the MAC, and the text `decrypt` prints.
    pub fn scalar_text(&self) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(match self {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            // Rust's `Display` for f64 is Go's FormatFloat(v, 'f', -1, 64): shortest round-trip
            // digits, never an exponent.
            Value::Float(x) => format!("{x}"),
            // sops writes booleans Title-case ("Python compat").
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            _ => return None,
        }))
    }

    /// The value as `decrypt` prints it: like `scalar_text`, but booleans as YAML writes them.
    pub fn display_text(&self) -> Option<Zeroizing<String>> {
        match self {
            Value::Bool(b) => Some(Zeroizing::new(b.to_string())),
            _ => self.scalar_text(),
        }
    }

    /// Looks up a `/`-separated path of mapping keys (sops-nix's `key` syntax).
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut v = self;
        for step in path.split('/') {
            let Value::Map(m) = v else { return None };
            v = &m.iter().find(|(k, _)| k == step)?.1;
        }
        Some(v)
    }
}

/// What decides which leaves are encrypted (`shouldBeEncrypted`); at most one is set.
#[derive(Clone, Debug)]
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex::Regex),
    EncryptedRegex(regex::Regex),
}

impl Rule {
    fn encrypted(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => s.is_empty() || !path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|p| r.is_match(p)),
            Rule::EncryptedRegex(r) => path.iter().any(|p| r.is_match(p)),
        }
    }
}

/// One `sops.age` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeEntry {
    pub recipient: String,
    pub enc: String,
}

/// The parts of the `sops:` block n3x uses.
#[derive(Clone, Debug)]
pub struct Metadata {
    pub age: Vec<AgeEntry>,
    pub lastmodified: String,
    pub mac: String,
    rule: Rule,
    mac_only_encrypted: bool,
    /// Key sources n3x cannot use (pgp, kms, ...), by name, for error messages.
    pub other_key_sources: Vec<String>,
}

/// A parsed, still encrypted SOPS YAML file.
#[derive(Debug)]
pub struct SopsFile {
    docs: Vec<Yaml>,
    pub metadata: Metadata,
}

fn yaml_str(y: &Yaml) -> Option<&str> {
    y.as_str()
}

fn map_get<'a>(h: &'a yaml_rust2::yaml::Hash, key: &str) -> Option<&'a Yaml> {
    h.get(&Yaml::String(key.to_string()))
}

impl SopsFile {
    /// Parses a SOPS-encrypted YAML file (no decryption).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let not_sops = |reason: &str| Error::NotSops { reason: reason.to_string() };
        // The scanner's messages quote keys at most, and this text is the encrypted file.
        let mut docs = YamlLoader::load_from_str(text).map_err(|e| Error::Yaml { message: e.to_string() })?;
        if docs.is_empty() {
            return Err(not_sops("the file is empty"));
        }
        let mut sops = None;
        for doc in &mut docs {
            let Yaml::Hash(h) = doc else {
                return Err(not_sops("the top level is not a mapping"));
            };
            // Every document carries a copy of the block; the first one is used, as sops does.
            if let Some(meta) = h.remove(&Yaml::String("sops".into())) {
                sops.get_or_insert(meta);
            }
        }
        let Some(Yaml::Hash(meta)) = sops else {
            return Err(not_sops("there is no `sops:` block (the file is not encrypted)"));
        };
        let metadata = parse_metadata(&meta)?;
        Ok(SopsFile { docs, metadata })
    }

    /// The age recipients the data key is encrypted to, as written in the file.
    pub fn recipients(&self) -> Vec<String> {
        self.metadata.age.iter().map(|e| e.recipient.clone()).collect()
    }

    /// The top-level keys of the first document (for checks that need no key).
    pub fn top_level_keys(&self) -> Vec<String> {
        match self.docs.first() {
            Some(Yaml::Hash(h)) => h.keys().filter_map(yaml_str).map(str::to_string).collect(),
            _ => Vec::new(),
        }
    }

    /// Recovers the data key with any of `identities`, decrypts every value and verifies the
    /// MAC. Returns one `Value::Map` per YAML document.
    pub fn decrypt(&self, identities: &Identities) -> Result<Vec<Value>, Error> {
        let key = self.data_key(identities)?;
        let mut hasher = Sha512::new();
        if self.metadata.mac_only_encrypted {
            hasher.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        let mut out = Vec::new();
        for doc in &self.docs {
            out.push(self.walk(doc, &mut Vec::new(), &key, &mut hasher)?);
        }
        let computed = Zeroizing::new(hex_upper(&hasher.finalize()));
        if self.metadata.mac.is_empty() {
            return Err(Error::MacMismatch { reason: "the file has no MAC".into() });
        }
        let aad = rfc3339_reformat(&self.metadata.lastmodified)
            .ok_or_else(|| Error::NotSops { reason: "`sops.lastmodified` is not an RFC 3339 time".into() })?;
        let (stored, _) = decrypt_value(&key, &self.metadata.mac, &aad).map_err(|_| Error::MacMismatch {
            reason: "the MAC cannot be decrypted (it or `lastmodified` was modified)".into(),
        })?;
        // sops compares the strings, so the hex case matters.
        if stored[..] != *computed.as_bytes() {
            return Err(Error::MacMismatch {
                reason: "the values do not match the MAC (values were changed, added, removed or reordered)".into(),
            });
        }
        Ok(out)
    }

    fn data_key(&self, identities: &Identities) -> Result<DataKey, Error> {
        if self.metadata.age.is_empty() {
            return Err(Error::NoAgeRecipients { others: self.metadata.other_key_sources.clone() });
        }
        for entry in &self.metadata.age {
            let Ok(dec) = age::Decryptor::new(age::armor::ArmoredReader::new(entry.enc.as_bytes())) else {
                continue;
            };
            let Ok(mut reader) = dec.decrypt(identities.iter()) else { continue };
            let mut buf = Zeroizing::new(Vec::new());
            if reader.read_to_end(&mut buf).is_err() || buf.len() != 32 {
                continue;
            }
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&buf);
            return Ok(DataKey(k));
        }
        Err(Error::NoMatchingIdentity { recipients: self.recipients(), have: identities.recipients.clone() })
    }

    fn walk(&self, node: &Yaml, path: &mut Vec<String>, key: &DataKey, mac: &mut Sha512) -> Result<Value, Error> {
        match node {
            Yaml::Hash(h) => {
                let mut out = Vec::with_capacity(h.len());
                for (k, v) in h {
                    let Some(k) = yaml_str(k) else {
                        return Err(Error::NotSops {
                            reason: format!("a mapping key under `{}` is not a string", path.join("/")),
                        });
                    };
                    path.push(k.to_string());
                    let value = self.walk(v, path, key, mac)?;
                    path.pop();
                    out.push((k.to_string(), value));
                }
                Ok(Value::Map(out))
            }
            // List items keep their parent's path: sops' walkSlice adds no index.
            Yaml::Array(a) => a.iter().map(|v| self.walk(v, path, key, mac)).collect::<Result<_, _>>().map(Value::List),
            Yaml::Null => Ok(Value::Null),
            Yaml::Alias(_) | Yaml::BadValue => {
                Err(Error::NotSops { reason: format!("unsupported YAML node at `{}`", path.join("/")) })
            }
            leaf => {
                let encrypted = self.metadata.rule.encrypted(path);
                let value = if encrypted {
                    let Yaml::String(s) = leaf else {
                        return Err(Error::Value {
                            path: path.join("/"),
                            reason: "the value should be encrypted but is not a string".into(),
                        });
                    };
                    if s.is_empty() {
                        // sops leaves empty strings as "" instead of encrypting them.
                        Value::Str(Zeroizing::new(String::new()))
                    } else {
                        let aad = format!("{}:", path.join(":"));
                        let (plain, kind) = decrypt_value(key, s, &aad)?;
                        typed(&plain, &kind, path)?
                    }
                } else {
                    plain_leaf(leaf, path)?
                };
                if !self.metadata.mac_only_encrypted || encrypted {
                    if let Some(bytes) = value.scalar_text() {
                        mac.update(bytes.as_bytes());
                    }
                }
                Ok(value)
            }
        }
    }
}

/// A decrypted plaintext, parsed by its `type` as sops' `Decrypt` does.
fn typed(plain: &[u8], kind: &str, path: &[String]) -> Result<Value, Error> {
    let bad = || Error::Value { path: path.join("/"), reason: format!("the plaintext is not a valid `{kind}`") };
    let text = || std::str::from_utf8(plain).map_err(|_| bad());
    Ok(match kind {
        "int" | "int64" => Value::Int(text()?.parse().map_err(|_| bad())?),
        "float" => Value::Float(text()?.parse().map_err(|_| bad())?),
        "bool" => Value::Bool(match text()? {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(bad()),
        }),
        // str, bytes, and types from newer sops (e.g. timestamps) are text to sops-nix.
        _ => Value::Str(Zeroizing::new(text()?.to_string())),
    })
}

fn plain_leaf(leaf: &Yaml, path: &[String]) -> Result<Value, Error> {
    Ok(match leaf {
        Yaml::String(s) => Value::Str(Zeroizing::new(s.clone())),
        Yaml::Integer(i) => Value::Int(*i),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Real(r) => Value::Float(
            leaf.as_f64()
                .or_else(|| r.parse().ok())
                .ok_or_else(|| Error::Value { path: path.join("/"), reason: "unreadable float".into() })?,
        ),
        _ => return Err(Error::Value { path: path.join("/"), reason: "unsupported YAML node".into() }),
    })
}

fn parse_metadata(meta: &yaml_rust2::yaml::Hash) -> Result<Metadata, Error> {
    let not_sops = |reason: String| Error::NotSops { reason };
    let mut age = Vec::new();
    let mut others = Vec::new();
    let entries = |list: &Yaml, out: &mut Vec<AgeEntry>| -> Result<(), Error> {
        for item in list.as_vec().map(Vec::as_slice).unwrap_or_default() {
            let (Some(r), Some(e)) = (item["recipient"].as_str(), item["enc"].as_str()) else {
                return Err(not_sops("a `sops.age` entry lacks `recipient` or `enc`".into()));
            };
            out.push(AgeEntry { recipient: r.trim().to_string(), enc: e.to_string() });
        }
        Ok(())
    };
    if let Some(list) = map_get(meta, "age") {
        entries(list, &mut age)?;
    }
    if let Some(groups) = map_get(meta, "key_groups").and_then(Yaml::as_vec) {
        if groups.len() > 1 {
            return Err(not_sops(
                "the data key is split over several key groups (Shamir), which n3x does not support".into(),
            ));
        }
        for g in groups {
            entries(&g["age"], &mut age)?;
        }
    }
    for source in ["kms", "gcp_kms", "azure_kv", "hc_vault", "pgp"] {
        if map_get(meta, source).and_then(Yaml::as_vec).is_some_and(|v| !v.is_empty()) {
            others.push(source.to_string());
        }
    }
    let lastmodified = map_get(meta, "lastmodified")
        .and_then(yaml_str)
        .ok_or_else(|| not_sops("`sops.lastmodified` is missing".into()))?
        .to_string();
    let mac = map_get(meta, "mac").and_then(yaml_str).unwrap_or_default().to_string();
    let get = |k: &str| map_get(meta, k).and_then(yaml_str).filter(|s| !s.is_empty()).map(str::to_string);
    let regex = |k: &str, s: String| {
        regex::Regex::new(&s).map_err(|_| not_sops(format!("`sops.{k}` is not a valid regular expression")))
    };
    let mut rules = Vec::new();
    if let Some(s) = get("unencrypted_suffix") {
        rules.push(Rule::UnencryptedSuffix(s));
    }
    if let Some(s) = get("encrypted_suffix") {
        rules.push(Rule::EncryptedSuffix(s));
    }
    if let Some(s) = get("unencrypted_regex") {
        rules.push(Rule::UnencryptedRegex(regex("unencrypted_regex", s)?));
    }
    if let Some(s) = get("encrypted_regex") {
        rules.push(Rule::EncryptedRegex(regex("encrypted_regex", s)?));
    }
    for k in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
        if get(k).is_some() {
            return Err(not_sops(format!("`sops.{k}` is not supported by n3x (it needs the YAML comments)")));
        }
    }
    if rules.len() > 1 {
        return Err(not_sops("more than one of the `*_suffix`/`*_regex` rules is set".into()));
    }
    let rule = rules.pop().unwrap_or_else(|| Rule::UnencryptedSuffix("_unencrypted".into()));
    let mac_only_encrypted = matches!(map_get(meta, "mac_only_encrypted"), Some(Yaml::Boolean(true)));
    Ok(Metadata { age, lastmodified, mac, rule, mac_only_encrypted, other_key_sources: others })
}

/// A parsed recipient: X25519 (`age1...`) or SSH (`ssh-ed25519 ...`, `ssh-rsa ...`).
pub fn parse_recipient(r: &str) -> Result<Box<dyn age::Recipient>, Error> {
    let bad = || Error::Recipient { recipient: r.to_string() };
    if r.starts_with("age1") {
        return age::x25519::Recipient::from_str(r).map(|x| Box::new(x) as _).map_err(|_| bad());
    }
    if r.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(r).map(|x| Box::new(x) as _).map_err(|_| bad());
    }
    Err(bad())
}

/// Encrypts a flat map of string secrets to `recipients`; returns the SOPS YAML text.
///
/// Keys must be plain `[A-Za-z0-9_.-]+` (they are written unquoted); values are strings.
/// Each call makes a fresh data key and fresh IVs.
pub fn encrypt_flat(
    entries: &[(&str, &str)],
    recipients: &[String],
    now: SystemTime,
) -> Result<Zeroizing<String>, Error> {
    if recipients.is_empty() {
        return Err(Error::NoRecipients);
    }
    let key = DataKey::generate();
    let mut out = Zeroizing::new(String::new());
    let mut mac = Sha512::new();
    for (k, v) in entries {
        let ok = !k.is_empty()
            && *k != "sops"
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !k.ends_with("_unencrypted");
        if !ok {
            return Err(Error::InvalidKeyName { key: k.to_string() });
        }
        mac.update(v.as_bytes());
        let enc =
            if v.is_empty() { "\"\"".to_string() } else { encrypt_value(&key, v.as_bytes(), &format!("{k}:"), "str")? };
        out.push_str(&format!("{k}: {enc}\n"));
    }
    let lastmodified = rfc3339_utc(now);
    let mac_hex = Zeroizing::new(hex_upper(&mac.finalize()));
    let mac_enc = encrypt_value(&key, mac_hex.as_bytes(), &lastmodified, "str")?;
    out.push_str("sops:\n    age:\n");
    for r in recipients {
        let recipient = parse_recipient(r)?;
        let armored = encrypt_armored(recipient.as_ref(), &key.0[..])?;
        out.push_str(&format!("        - recipient: {r}\n          enc: |\n"));
        for line in armored.lines() {
            out.push_str(&format!("            {line}\n"));
        }
    }
    out.push_str(&format!(
        "    lastmodified: \"{lastmodified}\"\n    mac: {mac_enc}\n    unencrypted_suffix: _unencrypted\n    version: {SOPS_VERSION}\n"
    ));
    Ok(out)
}

fn encrypt_armored(recipient: &dyn age::Recipient, data: &[u8]) -> Result<String, Error> {
    use std::io::Write;
    let fail = |_| Error::Crypto { step: "age encryption" };
    let encryptor = age::Encryptor::with_recipients(std::iter::once(recipient))
        .map_err(|_| Error::Crypto { step: "age encryptor setup" })?;
    let mut buf = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut buf, age::armor::Format::AsciiArmor).map_err(fail)?;
    let mut w = encryptor.wrap_output(armor).map_err(fail)?;
    w.write_all(data).map_err(fail)?;
    w.finish().and_then(|a| a.finish()).map_err(fail)?;
    String::from_utf8(buf).map_err(|_| Error::Crypto { step: "age armor (not UTF-8)" })
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a UTC instant: Go's `time.Now().UTC().Format(time.RFC3339)`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses an RFC 3339 time and formats it back as Go's `Format(time.RFC3339)` would: the MAC's
/// AAD. Fractional seconds are dropped; a zero offset becomes `Z`; other offsets stay `±hh:mm`.
pub fn rfc3339_reformat(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r.clone()).filter(|d| d.iter().all(u8::is_ascii_digit)).map(|_| &s[r]);
    let date = digits(0..4)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (mo, d, h, mi, se) = (digits(5..7)?, digits(8..10)?, digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let zone = match rest {
        "Z" | "z" => "Z".to_string(),
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6
                || !matches!(rb[0], b'+' | b'-')
                || rb[3] != b':'
                || !rest[1..3].bytes().chain(rest[4..6].bytes()).all(|c| c.is_ascii_digit())
            {
                return None;
            }
            if &rest[1..3] == "00" && &rest[4..6] == "00" { "Z".to_string() } else { rest.to_string() }
        }
    };
    Some(format!("{date}-{mo}-{d}T{h}:{mi}:{se}{zone}"))
}
