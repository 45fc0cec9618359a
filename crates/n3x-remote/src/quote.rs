//! Quoting for the remote shell: ssh joins its arguments with spaces and the remote user's
//! shell parses the result, so every argument is quoted once, here.

/// One argument, single-quoted unless it is plainly safe.
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe { arg.to_owned() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// An argv as one shell line.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_remote_shell() {
        assert_eq!(quote("/nix/store/abc-nixos-system"), "/nix/store/abc-nixos-system");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("{.status}"), "'{.status}'");
        // The shell gives back exactly what went in.
        let args = ["x y", "it's", "$HOME", "a\"b", ""].map(String::from);
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf '%s\\n' {}", shell_line(&args))])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert_eq!(out, "x y\nit's\n$HOME\na\"b\n\n");
    }
}
