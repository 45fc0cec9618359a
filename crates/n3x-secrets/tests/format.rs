//! The SOPS format: round trips, compatibility with an independent implementation of sops'
//! format in both directions, and refusal of every kind of tampering.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::SystemTime;

use n3x_secrets::keys::Identities;
use n3x_secrets::sops::{SopsFile, Value, encrypt_flat};
use serde_json::json;

fn identity(path: &std::path::Path) -> Identities {
    Identities::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn decrypt(text: &str, ids: &Identities) -> Result<Vec<Value>, n3x_secrets::Error> {
    SopsFile::parse(text)?.decrypt(ids)
}

/// A decrypted tree as JSON, for comparison with the reference's plaintext.
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => json!(f),
        Value::Str(s) => json!(s.as_str()),
        Value::List(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        Value::Map(m) => serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

fn get_str(v: &Value, path: &str) -> String {
    match v.get(path) {
        Some(Value::Str(s)) => s.to_string(),
        other => panic!("{path}: {other:?}"),
    }
}

const T1: &str = "1f0c8a9e3b7d4c2a1f0c8a9e3b7d4c2a1f0c8a9e3b7d4c2a1f0c8a9e3b7d4c2a";
const T2: &str = "9d8e7f6a5b4c3d2e1f0a9d8e7f6a5b4c3d2e1f0a9d8e7f6a5b4c3d2e1f0a9d8e";

#[test]
fn round_trip_own_files() {
    let id1 = age::x25519::Identity::generate();
    let id2 = age::x25519::Identity::generate();
    let recipients = vec![id1.to_public().to_string(), id2.to_public().to_string()];
    let text =
        encrypt_flat(&[("k3s-token", T1), ("k3s-agent-token", T2), ("empty", "")], &recipients, SystemTime::now())
            .unwrap();
    assert!(!text.contains(T1) && !text.contains(T2), "plaintext in the file");
    let file = SopsFile::parse(&text).unwrap();
    assert_eq!(file.recipients(), recipients);
    assert_eq!(file.top_level_keys(), ["k3s-token", "k3s-agent-token", "empty"]);
    for id in [&id1, &id2] {
        use age::secrecy::ExposeSecret;
        let ids = Identities::parse(id.to_string().expose_secret()).unwrap();
        let docs = file.decrypt(&ids).unwrap();
        assert_eq!(get_str(&docs[0], "k3s-token"), T1);
        assert_eq!(get_str(&docs[0], "k3s-agent-token"), T2);
        assert_eq!(get_str(&docs[0], "empty"), "");
    }
    // A third identity, not a recipient, is refused.
    use age::secrecy::ExposeSecret;
    let other = Identities::parse(age::x25519::Identity::generate().to_string().expose_secret()).unwrap();
    let err = file.decrypt(&other).unwrap_err();
    assert!(matches!(err, n3x_secrets::Error::NoMatchingIdentity { .. }), "{err}");
    // Two encryptions of the same values differ (fresh data key and IVs).
    let again = encrypt_flat(&[("k3s-token", T1)], &recipients, SystemTime::now()).unwrap();
    let once = encrypt_flat(&[("k3s-token", T1)], &recipients, SystemTime::now()).unwrap();
    assert_ne!(again.lines().next(), once.lines().next());
}

#[test]
fn layout_matches_sops() {
    let id = age::x25519::Identity::generate();
    let r = id.to_public().to_string();
    let text = encrypt_flat(&[("k3s-token", T1)], std::slice::from_ref(&r), SystemTime::now()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let enc = regex::Regex::new(
        r"^k3s-token: ENC\[AES256_GCM,data:[A-Za-z0-9+/]+=*,iv:[A-Za-z0-9+/]{43}=,tag:[A-Za-z0-9+/]{22}==,type:str\]$",
    )
    .unwrap();
    assert!(enc.is_match(lines[0]), "{}", lines[0]);
    assert_eq!(lines[1], "sops:");
    assert_eq!(lines[2], "    age:");
    assert_eq!(lines[3], format!("        - recipient: {r}"));
    assert_eq!(lines[4], "          enc: |");
    assert_eq!(lines[5], "            -----BEGIN AGE ENCRYPTED FILE-----");
    let end = lines.iter().position(|l| *l == "            -----END AGE ENCRYPTED FILE-----").unwrap();
    assert!(lines[6..end].iter().all(|l| l.len() <= 12 + 64));
    assert!(
        regex::Regex::new(r#"^    lastmodified: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"$"#).unwrap().is_match(lines[end + 1])
    );
    assert!(lines[end + 2].starts_with("    mac: ENC[AES256_GCM,data:"));
    // The MAC is 128 upper-case hex digits: 128 bytes of ciphertext -> 172 base64 characters.
    let data = lines[end + 2].split("data:").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(data.len(), 172);
    assert_eq!(lines[end + 3], "    unencrypted_suffix: _unencrypted");
    assert!(lines[end + 4].starts_with("    version: 3."));
    assert_eq!(lines.len(), end + 5);
}

#[test]
fn decrypts_reference_files_x25519_and_ssh_ed25519() {
    if !common::reference_available("decrypts_reference_files_x25519_and_ssh_ed25519") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (age_id, age_r) = common::age_keygen(dir.path(), "admin.txt");
    let rfile = dir.path().join("r-age");
    std::fs::write(&rfile, format!("{age_r}\n")).unwrap();
    let ssh = common::ssh_keygen(dir.path(), "host_key");
    let ssh_pub = ssh.with_extension("pub");
    for layout in ["3.8", "3.13"] {
        let (text, expected) = common::reference_encrypt(layout, &[rfile.clone(), ssh_pub.clone()]);
        assert!(text.contains("recipient: ssh-ed25519 AAAA"), "the file must carry a native ssh-ed25519 recipient");
        // The admin's X25519 identity.
        let docs = decrypt(&text, &identity(&age_id)).unwrap();
        assert_eq!(to_json(&docs[0]), expected, "layout {layout}, x25519");
        // The host's SSH private key, through age's native ssh-ed25519 stanza.
        let docs = decrypt(&text, &identity(&ssh)).unwrap();
        assert_eq!(to_json(&docs[0]), expected, "layout {layout}, ssh-ed25519");
    }
    // Only the ssh recipient: the X25519 admin key must not open it.
    let (text, expected) = common::reference_encrypt("3.13", std::slice::from_ref(&ssh_pub));
    assert_eq!(to_json(&decrypt(&text, &identity(&ssh)).unwrap()[0]), expected);
    assert!(decrypt(&text, &identity(&age_id)).is_err());
}

#[test]
fn reference_decrypts_our_files() {
    if !common::reference_available("reference_decrypts_our_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (age_id, age_r) = common::age_keygen(dir.path(), "admin.txt");
    // A host key converted with ssh-to-age, as sops-nix does at activation.
    let pair = n3x_secrets::keys::Ed25519KeyPair::generate("root@host");
    let host_r = pair.public.to_age_recipient().unwrap();
    let host_id =
        common::write_private(dir.path(), "host.txt", &format!("{}\n", pair.to_age_identity().unwrap().as_str()));
    let text =
        encrypt_flat(&[("k3s-token", T1), ("k3s-agent-token", T2)], &[age_r, host_r], SystemTime::now()).unwrap();
    let want = json!({"k3s-token": T1, "k3s-agent-token": T2});
    assert_eq!(common::reference_decrypt(&text, &age_id).unwrap(), want);
    assert_eq!(common::reference_decrypt(&text, &host_id).unwrap(), want);
    // The reference is strict too: a flipped MAC byte fails there as well.
    let bad = flip_in_field(&text, "    mac: ", 0);
    assert!(common::reference_decrypt(&bad, &age_id).is_err());
}

/// Flips one base64 character of the `data:` of the line starting with `prefix`.
fn flip_in_field(text: &str, prefix: &str, offset: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with(prefix) {
            let at = line.find("data:").unwrap() + 5 + offset;
            let c = line.as_bytes()[at];
            let new = if c == b'A' { 'B' } else { 'A' };
            out.push_str(&line[..at]);
            out.push(new);
            out.push_str(&line[at + 1..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn assert_refused(text: &str, ids: &Identities, secrets: &[&str], what: &str) {
    let err = decrypt(text, ids).expect_err(what);
    let shown = format!("{err} / {err:?} / {}", err.help());
    for s in secrets {
        assert!(!shown.contains(s), "{what}: the error shows a secret: {shown}");
    }
}

#[test]
fn tampering_is_refused() {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let ids = Identities::parse(id.to_string().expose_secret()).unwrap();
    let r = vec![id.to_public().to_string()];
    let text = encrypt_flat(&[("k3s-token", T1), ("k3s-agent-token", T2)], &r, SystemTime::now()).unwrap();
    assert!(decrypt(&text, &ids).is_ok());
    let secrets = [T1, T2];

    // Flip each base64 position of a value's data, iv and tag.
    let first = text.lines().next().unwrap();
    let inner = &first["k3s-token: ENC[AES256_GCM,".len()..first.len() - 1];
    for (i, c) in inner.char_indices() {
        if !c.is_ascii_alphanumeric() || inner[..i].ends_with("type:") || inner[..i].contains("type:") {
            continue;
        }
        let mut line = first.to_string();
        let at = "k3s-token: ENC[AES256_GCM,".len() + i;
        line.replace_range(at..at + 1, if c == 'A' { "B" } else { "A" });
        let bad = text.replacen(first, &line, 1);
        if bad.contains("data:,") {
            continue;
        }
        assert_refused(&bad, &ids, &secrets, &format!("flipped char {i} of the value"));
    }

    // Swap the two values (each was encrypted under its own key path).
    let lines: Vec<&str> = text.lines().collect();
    let v1 = lines[0].split_once(": ").unwrap().1;
    let v2 = lines[1].split_once(": ").unwrap().1;
    let swapped = text.replacen(lines[0], &format!("k3s-token: {v2}"), 1).replacen(
        lines[1],
        &format!("k3s-agent-token: {v1}"),
        1,
    );
    assert_refused(&swapped, &ids, &secrets, "swapped values");

    // Swap the key order (values keep their keys): the MAC covers document order.
    let reordered =
        text.replacen(&format!("{}\n{}\n", lines[0], lines[1]), &format!("{}\n{}\n", lines[1], lines[0]), 1);
    assert_ne!(reordered, *text);
    assert_refused(&reordered, &ids, &secrets, "reordered keys");

    // Drop a value.
    assert_refused(&text.replacen(&format!("{}\n", lines[1]), "", 1), &ids, &secrets, "removed value");

    // Replace a value with plaintext.
    assert_refused(&text.replacen(v1, "plaintext-value", 1), &ids, &secrets, "plaintext value");

    // Edit the MAC, blank it, or change lastmodified (the MAC's AAD).
    for off in [0, 10, 100, 170] {
        assert_refused(&flip_in_field(&text, "    mac: ", off), &ids, &secrets, "flipped MAC");
    }
    let mac_line = lines.iter().find(|l| l.starts_with("    mac: ")).unwrap();
    assert_refused(&text.replacen(mac_line, "    mac: \"\"", 1), &ids, &secrets, "empty MAC");
    let lm = lines.iter().find(|l| l.starts_with("    lastmodified: ")).unwrap();
    assert_refused(&text.replacen(lm, "    lastmodified: \"2001-01-01T00:00:00Z\"", 1), &ids, &secrets, "lastmodified");

    // A value moved in from another file (another data key).
    let other = encrypt_flat(&[("k3s-token", "another-token-value")], &r, SystemTime::now()).unwrap();
    let foreign = other.lines().next().unwrap();
    assert_refused(&text.replacen(lines[0], foreign, 1), &ids, &secrets, "foreign value");
}

#[test]
fn tampering_reference_files_is_refused() {
    if !common::reference_available("tampering_reference_files_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (age_id, age_r) = common::age_keygen(dir.path(), "admin.txt");
    let rfile = dir.path().join("r");
    std::fs::write(&rfile, &age_r).unwrap();
    let (text, _) = common::reference_encrypt("3.8", &[rfile]);
    let ids = identity(&age_id);
    assert!(decrypt(&text, &ids).is_ok());
    let secrets = ["hunter2-correct-horse", "first-item", "second-item", "s3cr3t-server-password"];
    // List items share one AAD (`list:`), so only the MAC notices that they were swapped.
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| *l == "list:").unwrap();
    let swapped = text.replacen(
        &format!("{}\n{}\n", lines[i + 1], lines[i + 2]),
        &format!("{}\n{}\n", lines[i + 2], lines[i + 1]),
        1,
    );
    assert_ne!(swapped, text);
    let err = decrypt(&swapped, &ids).unwrap_err();
    assert!(matches!(err, n3x_secrets::Error::MacMismatch { .. }), "{err}");
    assert_refused(&swapped, &ids, &secrets, "swapped list items");
    // An unencrypted value is covered by the MAC too.
    assert_refused(
        &text.replacen("note_unencrypted: visible", "note_unencrypted: changed", 1),
        &ids,
        &secrets,
        "unencrypted value",
    );
    assert_refused(&text.replacen("    port: 8080", "    port: 8081", 1), &ids, &secrets, "unencrypted int");
    // The nested value moved to another path fails its AAD.
    let pw = lines.iter().find(|l| l.starts_with("    password: ")).unwrap();
    let user = lines.iter().find(|l| l.starts_with("    user: ")).unwrap();
    let moved = text.replacen(user, &format!("    user: {}", pw.split_once(": ").unwrap().1), 1);
    assert_refused(&moved, &ids, &secrets, "moved nested value");
}

#[test]
fn rfc3339_aad_matches_go() {
    use n3x_secrets::sops::rfc3339_reformat as f;
    assert_eq!(f("2024-01-01T00:00:00Z").as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(f("2024-01-01T00:00:00.123456Z").as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(f("2024-01-01T01:00:00+01:00").as_deref(), Some("2024-01-01T01:00:00+01:00"));
    assert_eq!(f("2024-01-01T00:00:00+00:00").as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(f("2024-01-01 00:00:00"), None);
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199); // 2024-02-29T23:59:59Z
    assert_eq!(n3x_secrets::sops::rfc3339_utc(t), "2024-02-29T23:59:59Z");
}
