//! `n3x.toml` edits keep everything but the changed lines byte for byte.
#![allow(clippy::unwrap_used)]

use n3x_secrets::inventory::{Change, InventoryEdit};

const REFERENCE: &str = include_str!("../../../n3x.toml");
const R1: &str = "age1mp0q0mpzkzkcs9fhct6y6e3drg2re7psc4av5sc9mpw84y8kkchq6r9kjp";
const R2: &str = "age1h5aatap8cqkhjhr9pwp8ueplrkc23w7ys6mvt7n577pl2ul6tcrsad5c8m";

/// The lines of `after` that are not in `before`, and vice versa (a line diff that assumes
/// only changed or inserted lines, which is what the edits do).
fn diff(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    // Longest common subsequence, small inputs.
    let mut l = vec![vec![0usize; a.len() + 1]; b.len() + 1];
    for i in (0..b.len()).rev() {
        for j in (0..a.len()).rev() {
            l[i][j] = if b[i] == a[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut removed, mut added) = (0, 0, Vec::new(), Vec::new());
    while i < b.len() || j < a.len() {
        if i < b.len() && j < a.len() && b[i] == a[j] {
            i += 1;
            j += 1;
        } else if j < a.len() && (i == b.len() || l[i][j + 1] >= l[i + 1][j]) {
            added.push(a[j].to_string());
            j += 1;
        } else {
            removed.push(b[i].to_string());
            i += 1;
        }
    }
    (removed, added)
}

#[test]
fn edits_keep_comments_and_layout() {
    let mut e = InventoryEdit::parse(REFERENCE).unwrap();
    assert_eq!(e.add_admin(R1).unwrap(), Change::Added);
    assert_eq!(e.add_admin(R1).unwrap(), Change::Unchanged);
    assert_eq!(e.set_host_age("n100-3", R2).unwrap(), Change::Added);
    assert_eq!(e.set_host_age("jetson-2", R1).unwrap(), Change::Added);
    let after = e.to_string();
    let (removed, added) = diff(REFERENCE, &after);
    assert_eq!(removed, ["admins = []"]);
    assert_eq!(added, [format!("age = \"{R2}\""), format!("age = \"{R1}\""), format!("admins = [\"{R1}\"]")]);
    // The age lines land inside their host's table, before the next section's comment.
    let n3 = after.find("[hosts.n100-3]").unwrap();
    let next = after.find("# --- Jetson").unwrap();
    assert!(after[n3..next].contains(R2));
    // The model reads the result.
    let analysis = n3x_model::analyze(&after);
    assert!(!analysis.has_errors(), "{:?}", analysis.diagnostics);
    let resolved = analysis.resolve().unwrap();
    assert_eq!(resolved.secrets.admins, [R1]);
    assert_eq!(resolved.hosts.iter().find(|h| h.name == "n100-3").unwrap().age.as_deref(), Some(R2));
}

#[test]
fn replacing_keeps_trailing_comment_and_missing_tables_are_created() {
    let text = "version = 1\n\n[hosts.a]\nrole = \"server\"\nage = \"old\" # from ssh-keyscan\n\n# tail comment\n";
    let mut e = InventoryEdit::parse(text).unwrap();
    assert_eq!(e.set_host_age("a", R1).unwrap(), Change::Replaced("old".into()));
    assert_eq!(e.add_admin(R2).unwrap(), Change::Added);
    let after = e.to_string();
    assert!(after.contains(&format!("age = \"{R1}\" # from ssh-keyscan\n")), "{after}");
    assert!(after.contains("# tail comment\n"));
    assert!(after.contains(&format!("[secrets]\nadmins = [\"{R2}\"]")), "{after}");
    assert!(matches!(e.set_host_age("nope", R1), Err(n3x_secrets::Error::UnknownHost { .. })));
}
