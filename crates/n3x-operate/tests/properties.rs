//! Every parser of what comes from a host or a file, fed arbitrary input: an error, never a
//! panic; and what the bundle writes, it reads back.

use std::path::Path;

use n3x_operate::bundle::{self, Origin};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn answers_from_hosts_never_panic(s in ".{0,400}") {
        let _ = n3x_etcd::parse_snapshot_stream(&s);
        let _ = n3x_etcd::parse_range_page(&s);
        let _ = n3x_operate::status::earliest_expiry(&s, 0);
        let _ = n3x_operate::backup::newest_named(&s, "n3x-1");
        for n in 0..3 {
            let parts = n3x_remote::split_batch(&s, n);
            prop_assert_eq!(parts.len(), n);
        }
    }

    #[test]
    fn json_shaped_answers_never_panic(blob in "[A-Za-z0-9+/=]{0,60}", rem in any::<i64>(), more in any::<bool>()) {
        let chunk = format!(r#"{{"result":{{"blob":"{blob}","remaining_bytes":"{rem}"}}}}"#);
        let _ = n3x_etcd::parse_snapshot_stream(&format!("{chunk}\n{chunk}"));
        let page = format!(r#"{{"header":{{"revision":"{rem}"}},"kvs":[{{"key":"{blob}","value":"{blob}"}}],"more":{more}}}"#);
        let _ = n3x_etcd::parse_range_page(&page);
    }

    #[test]
    fn files_that_are_not_backups_are_refused_not_panicked_on(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (secret, _) = n3x_secrets::keys::generate_age_identity("t");
        let ids = n3x_secrets::keys::Identities::parse(&secret).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!(bundle::open(Path::new("x"), &bytes, &ids, &[]).is_err());
        let _ = bundle::etcd_trailer_ok(&bytes);
    }

    #[test]
    fn manifests_of_any_text_are_refused_or_read(text in ".{0,300}") {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = d.path().join("m.json");
        std::fs::write(&p, &text).unwrap_or_else(|e| panic!("{e}"));
        let _ = bundle::read_manifest(&p);
    }

    #[test]
    fn what_is_sealed_opens_with_its_key_and_a_cut_anywhere_is_caught(
        db in proptest::collection::vec(any::<u8>(), 1..3000),
        token in "[ -~]{0,80}",
        cut in any::<prop::sample::Index>(),
    ) {
        use sha2::Digest;
        let mut snap = db.clone();
        snap.extend_from_slice(&sha2::Sha256::digest(&db));
        let (secret, public) = n3x_secrets::keys::generate_age_identity("t");
        let ids = n3x_secrets::keys::Identities::parse(&secret).unwrap_or_else(|e| panic!("{e}"));
        let origin = Origin {
            cluster: "c".into(), member: "m".into(), member_id: "1".into(),
            revision: 1, revision_upper: 2, k3s_version: "v".into(), created_unix: 0,
        };
        let (m, data) = bundle::seal(&origin, &token, &snap, &[public], "x").unwrap_or_else(|e| panic!("{e}"));
        let c = bundle::open(Path::new("x"), &data, &ids, &[]).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(c.snapshot.as_slice(), &snap[..]);
        prop_assert_eq!(c.token.as_str(), token.as_str());
        let at = cut.index(data.len());
        prop_assert!(bundle::check(Path::new("x"), &m, &data[..at]).is_err());
        prop_assert!(bundle::open(Path::new("x"), &data[..at], &ids, &[]).is_err());
    }
}
