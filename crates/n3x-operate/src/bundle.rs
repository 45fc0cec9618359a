//! The backup file: an etcd snapshot and the server token it needs, encrypted with age to
//! the admins (`NAME.snap.age`), and beside it a plaintext manifest (`NAME.json`) that
//! says what it is without decrypting it.
//!
//! Inside the age layer (never on disk in plaintext):
//!
//! ```text
//! n3x-etcd-snapshot 1\n
//! {"cluster":...,"token":...,"snapshot_sha256":...}\n     (one line of JSON)
//! <the snapshot: etcd's database with its sha256 at the end, as `etcdctl snapshot save`>
//! ```
//!
//! Three checks, from cheap to thorough: the manifest's size and sha256 of the encrypted
//! file (a truncated or changed copy, without a key); age's authenticated decryption and
//! the inner header's sha256 of the snapshot; etcd's own sha256 at the snapshot's end.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use n3x_secrets::keys::Identities;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::OperateError;

pub const DATA_SUFFIX: &str = ".snap.age";
pub const MANIFEST_SUFFIX: &str = ".json";
const MAGIC: &[u8] = b"n3x-etcd-snapshot 1\n";
pub const FORMAT: u32 = 1;

/// What a backup is, readable without the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub cluster: String,
    /// When it was taken, RFC 3339 UTC, and as seconds since the epoch.
    pub created: String,
    pub created_unix: u64,
    /// The server whose member was snapshotted, and that member's id (hex).
    pub member: String,
    pub member_id: String,
    /// The store's revision just before the snapshot: every write up to it is inside.
    pub revision: u64,
    /// The revision just after: no write after it is inside.
    pub revision_upper: u64,
    pub k3s_version: String,
    /// The encrypted file (in the same directory), its size and sha256.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    /// The snapshot inside, before encryption.
    pub snapshot_size: u64,
    pub snapshot_sha256: String,
    /// Who can decrypt it (public keys).
    pub recipients: Vec<String>,
}

/// What the snapshot was taken from; goes into the manifest and the encrypted header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub cluster: String,
    pub member: String,
    pub member_id: String,
    pub revision: u64,
    pub revision_upper: u64,
    pub k3s_version: String,
    pub created_unix: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    origin: Origin,
    snapshot_size: u64,
    snapshot_sha256: String,
    token: String,
}

/// A decrypted backup.
pub struct Contents {
    pub origin: Origin,
    pub token: Zeroizing<String>,
    pub snapshot: Zeroizing<Vec<u8>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The file names of a backup taken at `created_unix` of `cluster` from `member`.
pub fn stem(cluster: &str, member: &str, created_unix: u64) -> String {
    format!("{cluster}-{}-{member}", compact_utc(created_unix))
}

/// `20261127T145747Z`.
fn compact_utc(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    n3x_secrets::sops::rfc3339_utc(t).replace(['-', ':'], "")
}

/// Checks etcd's own integrity trailer: the last 32 bytes are the sha256 of the rest.
pub fn etcd_trailer_ok(snapshot: &[u8]) -> bool {
    snapshot.len() > 32 && {
        let (db, sum) = snapshot.split_at(snapshot.len() - 32);
        Sha256::digest(db).as_slice() == sum
    }
}

/// Parses recipients (`age1...`, `ssh-ed25519 ...`), each checked.
pub fn recipients(values: &[String]) -> Result<Vec<Box<dyn age::Recipient + Send>>, OperateError> {
    values
        .iter()
        .map(|r| {
            let bad = || OperateError::BadRecipient { value: r.clone() };
            if r.starts_with("age1") {
                r.parse::<age::x25519::Recipient>().map(|x| Box::new(x) as _).map_err(|_| bad())
            } else if r.starts_with("ssh-") {
                r.parse::<age::ssh::Recipient>().map(|x| Box::new(x) as _).map_err(|_| bad())
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Encrypts `snapshot` and `token` to `to`; returns the manifest (its `file` named by
/// `name`) and the encrypted bytes. Nothing is written here.
pub fn seal(
    origin: &Origin,
    token: &str,
    snapshot: &[u8],
    to: &[String],
    name: &str,
) -> Result<(Manifest, Vec<u8>), OperateError> {
    if to.is_empty() {
        return Err(OperateError::NoRecipients { cluster: origin.cluster.clone() });
    }
    let parsed = recipients(to)?;
    let snapshot_sha256 = sha256_hex(snapshot);
    let header = Header {
        origin: origin.clone(),
        snapshot_size: snapshot.len() as u64,
        snapshot_sha256: snapshot_sha256.clone(),
        token: token.to_owned(),
    };
    let header_line = Zeroizing::new(serde_json::to_vec(&header).unwrap_or_default());
    drop(header);
    let crypto =
        |e: &dyn std::fmt::Display| OperateError::Tool { command: "age encryption".into(), detail: e.to_string() };
    let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
        .map_err(|e| crypto(&e))?;
    let mut out = Vec::with_capacity(snapshot.len() + 1024);
    let mut w = enc.wrap_output(&mut out).map_err(|e| crypto(&e))?;
    w.write_all(MAGIC)
        .and_then(|_| w.write_all(&header_line))
        .and_then(|_| w.write_all(b"\n"))
        .and_then(|_| w.write_all(snapshot))
        .map_err(|e| crypto(&e))?;
    w.finish().map_err(|e| crypto(&e))?;
    let manifest = Manifest {
        format: FORMAT,
        cluster: origin.cluster.clone(),
        created: n3x_secrets::sops::rfc3339_utc(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(origin.created_unix),
        ),
        created_unix: origin.created_unix,
        member: origin.member.clone(),
        member_id: origin.member_id.clone(),
        revision: origin.revision,
        revision_upper: origin.revision_upper,
        k3s_version: origin.k3s_version.clone(),
        file: format!("{name}{DATA_SUFFIX}"),
        size: out.len() as u64,
        sha256: sha256_hex(&out),
        snapshot_size: snapshot.len() as u64,
        snapshot_sha256,
        recipients: to.to_vec(),
    };
    Ok((manifest, out))
}

/// The data file and the manifest of a backup named by either.
pub fn paths(file: &Path) -> (PathBuf, PathBuf) {
    let s = file.display().to_string();
    let stem = s.strip_suffix(DATA_SUFFIX).or_else(|| s.strip_suffix(MANIFEST_SUFFIX)).unwrap_or(&s).to_owned();
    (PathBuf::from(format!("{stem}{DATA_SUFFIX}")), PathBuf::from(format!("{stem}{MANIFEST_SUFFIX}")))
}

pub fn read_manifest(path: &Path) -> Result<Manifest, OperateError> {
    let text = std::fs::read_to_string(path).map_err(|e| OperateError::io("read", path, e))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| OperateError::BadManifest { path: path.to_path_buf(), detail: e.to_string() })?;
    if m.format != FORMAT {
        return Err(OperateError::BadManifest {
            path: path.to_path_buf(),
            detail: format!("format {} (this n3x reads format {FORMAT})", m.format),
        });
    }
    Ok(m)
}

/// Writes a backup: the encrypted file first, then its manifest, each atomically (a
/// crash leaves no file, or a complete one; a data file without a manifest is one whose
/// snapshot was interrupted, and `list` says so).
pub fn save(dir: &Path, manifest: &Manifest, data: &[u8]) -> Result<PathBuf, OperateError> {
    n3x_fs::create_dir_all(dir, 0o700).map_err(|e| OperateError::io("create", dir, e))?;
    // What an earlier snapshot killed mid-write left (never under a final name).
    n3x_fs::remove_stale_temps(dir).map_err(|e| OperateError::io("clean", dir, e))?;
    let data_path = dir.join(&manifest.file);
    n3x_fs::write(&data_path, data, Some(0o600)).map_err(|e| OperateError::io("write", &data_path, e))?;
    let (_, manifest_path) = paths(&data_path);
    let text = serde_json::to_string_pretty(manifest).unwrap_or_default() + "\n";
    n3x_fs::write(&manifest_path, text.as_bytes(), Some(0o644))
        .map_err(|e| OperateError::io("write", &manifest_path, e))?;
    Ok(data_path)
}

/// Checks `data` against its manifest: the size first (a truncated copy says so), then
/// the sha256.
pub fn check(path: &Path, manifest: &Manifest, data: &[u8]) -> Result<(), OperateError> {
    let have = data.len() as u64;
    if have < manifest.size {
        return Err(OperateError::Truncated { path: path.to_path_buf(), have, want: manifest.size });
    }
    let sum = sha256_hex(data);
    if have != manifest.size || sum != manifest.sha256 {
        return Err(OperateError::Changed { path: path.to_path_buf(), have: sum, want: manifest.sha256.clone() });
    }
    Ok(())
}

/// Decrypts and checks a backup's contents.
pub fn open(path: &Path, data: &[u8], ids: &Identities, recipients: &[String]) -> Result<Contents, OperateError> {
    let corrupt = |detail: String| OperateError::Corrupt { path: path.to_path_buf(), detail };
    let dec = age::Decryptor::new(data).map_err(|e| corrupt(format!("not an age file ({e})")))?;
    let mut reader = match dec.decrypt(ids.iter()) {
        Ok(r) => r,
        Err(age::DecryptError::NoMatchingKeys) => {
            return Err(OperateError::NotForYou {
                path: path.to_path_buf(),
                recipients: recipients.to_vec(),
                identity: ids.recipients.join(", "),
            });
        }
        Err(e) => return Err(corrupt(format!("age: {e}"))),
    };
    let mut plain = Zeroizing::new(Vec::with_capacity(data.len()));
    reader.read_to_end(&mut plain).map_err(|e| corrupt(format!("age: {e} (the file was changed or cut)")))?;
    let rest = plain.strip_prefix(MAGIC).ok_or_else(|| corrupt("not an n3x etcd snapshot inside".into()))?;
    let nl = rest.iter().position(|&b| b == b'\n').ok_or_else(|| corrupt("no header inside".into()))?;
    let header: Header =
        serde_json::from_slice(&rest[..nl]).map_err(|e| corrupt(format!("its header does not parse: {e}")))?;
    let snapshot = Zeroizing::new(rest[nl + 1..].to_vec());
    drop(plain);
    if snapshot.len() as u64 != header.snapshot_size || sha256_hex(&snapshot) != header.snapshot_sha256 {
        return Err(corrupt("the snapshot inside does not match its header's sha256".into()));
    }
    if !etcd_trailer_ok(&snapshot) {
        return Err(corrupt("the snapshot inside fails etcd's own sha256 check".into()));
    }
    Ok(Contents { origin: header.origin, token: Zeroizing::new(header.token), snapshot })
}

/// One backup in a directory, as `list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub file: PathBuf,
    pub manifest: Option<Manifest>,
    /// Why it is not usable as it stands (no manifest, unreadable manifest, missing data).
    pub problem: Option<String>,
}

/// Every backup in `dir`, newest first; leftovers of interrupted writes are skipped.
pub fn list(dir: &Path) -> Result<Vec<Entry>, OperateError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(OperateError::io("read", dir, e)),
    };
    let mut stems: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(DATA_SUFFIX).or_else(|| n.strip_suffix(MANIFEST_SUFFIX)).map(str::to_owned))
        .collect();
    stems.sort();
    stems.dedup();
    let mut out: Vec<Entry> = stems
        .iter()
        .map(|s| {
            let (data, manifest) = paths(&dir.join(s));
            let m = if manifest.exists() { Some(read_manifest(&manifest)) } else { None };
            let (manifest, problem) = match (m, data.exists()) {
                (Some(Ok(m)), true) => (Some(m), None),
                (Some(Ok(m)), false) => (Some(m), Some("its data file is missing".to_owned())),
                (Some(Err(e)), _) => (None, Some(e.to_string())),
                (None, _) => (None, Some("no manifest: the snapshot was interrupted, or the manifest moved".into())),
            };
            Entry { file: data, manifest, problem }
        })
        .collect();
    out.sort_by(|a, b| {
        let t = |e: &Entry| e.manifest.as_ref().map_or(0, |m| m.created_unix);
        t(b).cmp(&t(a)).then(a.file.cmp(&b.file))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn snapshot_bytes(db: &[u8]) -> Vec<u8> {
        let mut v = db.to_vec();
        v.extend_from_slice(&Sha256::digest(db));
        v
    }

    fn origin() -> Origin {
        Origin {
            cluster: "n3x".into(),
            member: "n100-1".into(),
            member_id: "ab".into(),
            revision: 10,
            revision_upper: 12,
            k3s_version: "v1.31".into(),
            created_unix: 1_795_791_447,
        }
    }

    fn identity() -> (Identities, String) {
        let (secret, public) = n3x_secrets::keys::generate_age_identity("test");
        (Identities::parse(&secret).unwrap(), public)
    }

    #[test]
    fn sealed_backups_open_with_the_key_and_say_why_they_do_not_without() {
        let (ids, public) = identity();
        let snap = snapshot_bytes(&[1u8; 5000]);
        let (m, data) = seal(&origin(), "K10abc::server:secret", &snap, std::slice::from_ref(&public), "x").unwrap();
        assert_eq!((m.file.as_str(), m.size, m.snapshot_size), ("x.snap.age", data.len() as u64, 5032));
        assert!(!data.windows(6).any(|w| w == b"secret"), "the token is encrypted");
        let p = Path::new("x.snap.age");
        check(p, &m, &data).unwrap();
        let c = open(p, &data, &ids, &m.recipients).unwrap();
        assert_eq!(
            (c.token.as_str(), c.snapshot.as_slice(), c.origin.revision),
            ("K10abc::server:secret", &snap[..], 10)
        );

        let e = check(p, &m, &data[..data.len() - 10]).unwrap_err();
        assert!(matches!(e, OperateError::Truncated { have, want, .. } if want - have == 10), "{e}");
        let mut flipped = data.clone();
        flipped[data.len() / 2] ^= 1;
        assert!(matches!(check(p, &m, &flipped), Err(OperateError::Changed { .. })));
        // Past the manifest (it was changed too), age's authentication catches it.
        assert!(matches!(open(p, &flipped, &ids, &m.recipients), Err(OperateError::Corrupt { .. })));
        let (other, _) = identity();
        let e = open(p, &data, &other, &m.recipients).err().unwrap();
        assert!(matches!(e, OperateError::NotForYou { .. }), "{e}");
        assert!(e.to_string().contains(&public));
        assert!(matches!(open(p, b"plain text", &ids, &[]), Err(OperateError::Corrupt { .. })));
    }

    #[test]
    fn a_snapshot_failing_etcds_own_check_is_refused_before_encryption_matters() {
        let (ids, public) = identity();
        let mut snap = snapshot_bytes(&[2u8; 100]);
        snap[3] ^= 1;
        let (m, data) = seal(&origin(), "t", &snap, &[public], "x").unwrap();
        let e = open(Path::new("x"), &data, &ids, &m.recipients).err().unwrap();
        assert!(e.to_string().contains("etcd's own sha256"), "{e}");
    }

    #[test]
    fn no_recipients_or_a_bad_one_is_refused() {
        assert!(matches!(seal(&origin(), "t", b"x", &[], "x"), Err(OperateError::NoRecipients { .. })));
        let e = seal(&origin(), "t", b"x", &["age1nope".into()], "x").err().unwrap();
        assert!(matches!(e, OperateError::BadRecipient { .. }));
    }

    #[test]
    fn saved_backups_are_listed_newest_first_and_interrupted_ones_named() {
        let d = tempfile::tempdir().unwrap();
        let (_, public) = identity();
        let snap = snapshot_bytes(b"db");
        for (t, name) in [(100, "a"), (300, "b")] {
            let mut o = origin();
            o.created_unix = t;
            let (m, data) = seal(&o, "t", &snap, std::slice::from_ref(&public), name).unwrap();
            let p = save(d.path(), &m, &data).unwrap();
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(d.path().join("c.snap.age"), b"x").unwrap();
        std::fs::write(d.path().join(".b.snap.age.n3x-tmp-1-0"), b"x").unwrap();
        let l = list(d.path()).unwrap();
        let names: Vec<String> = l.iter().map(|e| e.file.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["b.snap.age", "a.snap.age", "c.snap.age"]);
        assert!(l[2].problem.as_deref().unwrap().contains("no manifest"));
        assert!(list(&d.path().join("none")).unwrap().is_empty());
        assert_eq!(paths(Path::new("/x/a.json")).0, Path::new("/x/a.snap.age"));
    }

    #[test]
    fn names_sort_by_time() {
        assert_eq!(stem("n3x", "n100-1", 1_795_791_447), "n3x-20261127T145727Z-n100-1");
    }
}
