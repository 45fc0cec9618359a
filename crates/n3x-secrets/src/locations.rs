//! Where keys live. The admin identity is looked up where sops looks for it, so `sops` and
//! `n3x secrets` use the same key without configuration; generated host keys go outside
//! the repository, where neither git nor the Nix store can pick them up.
//!
//! Pure: the environment comes in as a lookup function, so the rules are unit-tested.

use std::ffi::OsString;
use std::path::PathBuf;

/// An environment lookup, `std::env::var_os` in the binary.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

fn non_empty(env: Env<'_>, name: &str) -> Option<PathBuf> {
    env(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// sops' rule for the age key file: `$SOPS_AGE_KEY_FILE`, else
/// `$XDG_CONFIG_HOME/sops/age/keys.txt`, else `~/.config/sops/age/keys.txt`.
pub fn admin_key_file(env: Env<'_>) -> Option<PathBuf> {
    if let Some(p) = non_empty(env, "SOPS_AGE_KEY_FILE") {
        return Some(p);
    }
    let config = non_empty(env, "XDG_CONFIG_HOME").or_else(|| non_empty(env, "HOME").map(|h| h.join(".config")))?;
    Some(config.join("sops/age/keys.txt"))
}

/// Where `add-host --generate` puts a host's key pair: an nixos-anywhere `--extra-files`
/// tree at `$XDG_DATA_HOME/n3x/<cluster>/extra-files/<host>` (default `~/.local/share`).
pub fn extra_files(env: Env<'_>, cluster: &str, host: &str) -> Option<PathBuf> {
    let data = non_empty(env, "XDG_DATA_HOME").or_else(|| non_empty(env, "HOME").map(|h| h.join(".local/share")))?;
    Some(data.join("n3x").join(cluster).join("extra-files").join(host))
}

/// The host's private key inside an extra-files tree.
pub fn host_key_in(extra_files: &std::path::Path) -> PathBuf {
    extra_files.join("etc/ssh/ssh_host_ed25519_key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn admin_key_follows_sops_order() {
        let all = env(&[("SOPS_AGE_KEY_FILE", "/k"), ("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(admin_key_file(&all), Some("/k".into()));
        let xdg = env(&[("SOPS_AGE_KEY_FILE", ""), ("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(admin_key_file(&xdg), Some("/x/sops/age/keys.txt".into()), "an empty variable is unset");
        let home = env(&[("HOME", "/h")]);
        assert_eq!(admin_key_file(&home), Some("/h/.config/sops/age/keys.txt".into()));
        assert_eq!(admin_key_file(&env(&[])), None);
    }

    #[test]
    fn generated_host_keys_live_outside_the_repository() {
        let home = env(&[("HOME", "/h")]);
        let d = extra_files(&home, "n3x", "jetson-1").unwrap();
        assert_eq!(d, PathBuf::from("/h/.local/share/n3x/n3x/extra-files/jetson-1"));
        assert_eq!(host_key_in(&d), d.join("etc/ssh/ssh_host_ed25519_key"));
        let xdg = env(&[("XDG_DATA_HOME", "/d"), ("HOME", "/h")]);
        assert_eq!(extra_files(&xdg, "c", "h"), Some("/d/n3x/c/extra-files/h".into()));
    }
}
