//! ssh-to-age and the OpenSSH key format, checked against independent implementations:
//! `age-keygen -y` (X25519 public key from the converted private key), the `age` CLI
//! (encrypting to an ssh-ed25519 public key and to the converted `age1`), and `ssh-keygen`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use n3x_secrets::keys::{Ed25519KeyPair, Identities, SshPublicKey, ed25519_seed_to_age_identity};

fn age_encrypt(args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("age").args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn age_decrypt_with(ids: &Identities, ciphertext: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let d = age::Decryptor::new(age::armor::ArmoredReader::new(ciphertext)).unwrap();
    let mut r = d.decrypt(ids.iter()).unwrap();
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn ssh_to_age_matches_age_keygen() {
    if !common::tool_available("age")
        || !common::tool_available("ssh-keygen") && !std::path::Path::new("/usr/bin/ssh-keygen").exists()
    {
        n3x_testkit::skip(
            "ssh_to_age_matches_age_keygen",
            "needs `age` and `ssh-keygen` (apt-get install age openssh-client)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        // A key made by OpenSSH, read by our parser.
        let key = common::ssh_keygen(dir.path(), &format!("k{i}"));
        let pair = Ed25519KeyPair::from_openssh(&std::fs::read_to_string(&key).unwrap()).unwrap();
        let public = SshPublicKey::parse(&std::fs::read_to_string(key.with_extension("pub")).unwrap()).unwrap();
        assert_eq!(pair.public.key, public.key, "the seed does not give OpenSSH's public key");
        let recipient = public.to_age_recipient().unwrap();
        assert!(recipient.starts_with("age1") && recipient.len() == 62);
        // age-keygen computes the X25519 public key of the converted private key on its own.
        let id = pair.to_age_identity().unwrap();
        assert!(id.starts_with("AGE-SECRET-KEY-1") && id.len() == 74 && id.to_uppercase() == *id);
        let idfile = common::write_private(dir.path(), &format!("id{i}"), &format!("{}\n", id.as_str()));
        let out = Command::new("age-keygen").arg("-y").arg(&idfile).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), recipient);
        // age encrypts to the derived recipient; our identities from the SSH private key open it.
        let ids = Identities::parse(&std::fs::read_to_string(&key).unwrap()).unwrap();
        let ct = age_encrypt(&["-e", "-a", "-r", &recipient], b"x25519 path");
        assert_eq!(age_decrypt_with(&ids, &ct), b"x25519 path");
        // age encrypts to the ssh-ed25519 public key (native stanza); the same identities open it.
        let ct = age_encrypt(&["-e", "-a", "-R", key.with_extension("pub").to_str().unwrap()], b"ssh path");
        assert_eq!(age_decrypt_with(&ids, &ct), b"ssh path");
    }
}

#[test]
fn known_vector() {
    // RFC 8032 test 1: seed 9d61b1...7f60 has public key d75a98...511a. The expected age strings
    // were computed with `age-keygen -y` from the converted identity (see
    // ssh_to_age_matches_age_keygen for the live check) and are pinned here.
    let seed: [u8; 32] = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").try_into().unwrap();
    let pk: [u8; 32] = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a").try_into().unwrap();
    let recipient = n3x_secrets::keys::ed25519_to_age_recipient(&pk).unwrap();
    let id = ed25519_seed_to_age_identity(&seed).unwrap();
    let parsed: age::x25519::Identity = id.parse().unwrap();
    assert_eq!(parsed.to_public().to_string(), recipient);
    if common::tool_available("age") {
        let dir = tempfile::tempdir().unwrap();
        let f = common::write_private(dir.path(), "id", &format!("{}\n", id.as_str()));
        let out = Command::new("age-keygen").arg("-y").arg(&f).output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), recipient);
    }
    assert_eq!(recipient, env_vector());
}

/// The pinned recipient for RFC 8032 test 1.
fn env_vector() -> &'static str {
    "age1mp0q0mpzkzkcs9fhct6y6e3drg2re7psc4av5sc9mpw84y8kkchq6r9kjp"
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn generated_host_keys_are_valid_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let pair = Ed25519KeyPair::generate("root@n100-1");
    let pem = pair.to_openssh();
    // Our reader and age's reader both accept it, and agree on the public key.
    let back = Ed25519KeyPair::from_openssh(&pem).unwrap();
    assert_eq!(back.public, pair.public);
    assert_eq!(back.seed(), pair.seed());
    let ids = Identities::parse(&pem).unwrap();
    assert!(ids.recipients.contains(&pair.public.to_age_recipient().unwrap()));
    assert!(ids.recipients.contains(&pair.public.to_line()));
    if common::tool_available("ssh-keygen") || std::path::Path::new("/usr/bin/ssh-keygen").exists() {
        let f = common::write_private(dir.path(), "ssh_host_ed25519_key", &pem);
        let out = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&f).output().unwrap();
        assert!(out.status.success(), "ssh-keygen rejects the key: {}", String::from_utf8_lossy(&out.stderr));
        let theirs = SshPublicKey::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
        assert_eq!(theirs.key, pair.public.key);
    } else {
        n3x_testkit::skip("generated_host_keys_are_valid_openssh (ssh-keygen part)", "apt-get install openssh-client");
    }
}

#[test]
fn rejects_what_it_cannot_convert() {
    assert!(matches!(
        SshPublicKey::parse("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 x"),
        Err(n3x_secrets::Error::SshKey { .. })
    ));
    assert!(SshPublicKey::parse("ssh-ed25519 !!!").is_err());
    assert!(SshPublicKey::parse("").is_err());
    // Something that is not a key type is not echoed (it might be a pasted secret).
    let err = SshPublicKey::parse("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQ").unwrap_err();
    assert!(!err.to_string().contains("QQQQ"), "{err}");
    // A secret key line given where a key file is expected is never echoed in the error.
    let id = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let secret = id.to_string().expose_secret().to_string();
    // The last character (part of the bech32 checksum) changed to another one: never to
    // itself, which one key in 32 would have done with a fixed `X`.
    let other = if secret.ends_with('X') { 'Q' } else { 'X' };
    let broken = format!("{}{other}\n", &secret[..secret.len() - 1]);
    let err = Identities::parse(&broken).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&secret[16..40]), "{err}");
}
