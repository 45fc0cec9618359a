//! The k3s server token as a deploy step.
//!
//! k3s encrypts its bootstrap data with the server token, so a server started with a
//! token the cluster does not know refuses to start. After `n3x secrets rotate` the new
//! generations carry a new token; before any of them is switched to, the deploy runs k3s's
//! rotation on the leader (`k3s token rotate`), which re-encrypts the bootstrap data with
//! the new token. Then the rollout itself is k3s's "restart every server with the new
//! token": one server at a time, each gated on its etcd member, then the agents (which
//! join with the agent token, changed on the servers first).
//!
//! The comparison is by the token's secret: `/var/lib/rancher/k3s/server/token` holds the
//! full form (`K10<CA hash>::server:<secret>`), the secrets file the short one. Neither
//! token is ever in an argv of n3x's: the old goes to `k3s` as `K3S_TOKEN`, both over
//! standard input (k3s takes the new one only as `--new-token`, so it is in the argv of
//! `k3s token rotate` on the server while that runs).

use crate::observe::{Ask, ClusterView};
use crate::{ClusterSpec, DeployError, HostSpec, commands};

/// A server token held in memory: never printed (its `Debug` is redacted).
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// The secret part of a k3s token, full (`K10...::server:SECRET`) or short.
pub fn secret_of(token: &str) -> &str {
    let t = token.trim();
    t.split_once("::").map_or(t, |(_, creds)| creds.split_once(':').map_or(creds, |(_, secret)| secret))
}

/// Rotates `new` into the cluster unless the cluster already has it: the leader's token
/// file holds it, or any server's does (k3s rewrites the token file of the server the
/// rotation ran on, so a resumed deploy does not rotate twice). Every server must be in
/// `selected` (each must restart with the new token). Returns the server the rotation ran
/// on, if it ran.
pub fn rotate_if_changed(
    ask: Ask<'_>,
    spec: &ClusterSpec,
    selected: &[&HostSpec],
    new: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<String>, DeployError> {
    let view = ClusterView::ask(ask, spec);
    let via = view.leader().ok_or_else(|| DeployError::Refused {
        reasons: vec!["no etcd leader: the server token cannot be checked or rotated".into()],
    })?;
    let current = ask.run(via, "reading the cluster's server token", &commands::read_token(ask.timeout))?;
    let has_new = |t: &str| secret_of(t) == secret_of(new);
    if has_new(&current)
        || spec.servers().filter(|s| s.name != via.name).any(|s| {
            ask.run(s, "reading the server token", &commands::read_token(ask.timeout)).is_ok_and(|t| has_new(&t))
        })
    {
        return Ok(None);
    }
    let missing: Vec<&str> =
        spec.servers().filter(|s| !selected.iter().any(|h| h.name == s.name)).map(|s| s.name.as_str()).collect();
    if !missing.is_empty() {
        return Err(DeployError::Refused {
            reasons: vec![format!(
                "the server token changed (`n3x secrets rotate`), and every server must restart with it: \
                 deploy {} too (or deploy every host)",
                missing.join(", ")
            )],
        });
    }
    progress(&format!("the server token changed: rotating it on {} (k3s token rotate)", via.name));
    let input = format!("{}\n{}\n", current.trim(), secret_of(new));
    ask.remote
        .run_ok(
            &via.target(),
            &commands::token_rotate(ask.timeout.max(std::time::Duration::from_secs(60))).stdin(input.into_bytes()),
        )
        .map_err(|e| DeployError::remote(&via.name, "rotating the server token (k3s token rotate)", e))?;
    Ok(Some(via.name.clone()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use n3x_remote::fake;

    use super::*;
    use crate::testing::{healthy, reference};

    const CURRENT: &str = "K10abcdef0123::server:oldsecret\n";

    #[test]
    fn secrets_of_full_and_short_tokens() {
        assert_eq!(secret_of("K10abc::server:s3cret\n"), "s3cret");
        assert_eq!(secret_of("K10abc::node:s3cret"), "s3cret");
        assert_eq!(secret_of("s3cret"), "s3cret");
        assert_eq!(secret_of("  short \n"), "short");
    }

    fn with_token(f: &fake::Fake) {
        f.on(|_, argv| (argv[0] == "cat" && argv[1].ends_with("/server/token")).then(|| fake::ok(CURRENT)));
        f.on(|_, argv| (argv[0] == "sh" && argv[2].contains("k3s token rotate")).then(|| fake::ok("")));
    }

    #[test]
    fn an_unchanged_token_is_left_alone_and_a_new_one_rotated_on_the_leader() {
        let spec = reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let f = healthy();
        with_token(&f);
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        assert_eq!(rotate_if_changed(ask, &spec, &all, "oldsecret", &mut |_| {}).unwrap(), None);
        assert!(f.calls().iter().all(|(_, argv)| !argv.iter().any(|a| a.contains("token rotate"))));

        let ran = rotate_if_changed(ask, &spec, &all, "newsecret", &mut |_| {}).unwrap();
        assert_eq!(ran.as_deref(), Some("n100-1"));
        let calls = f.calls();
        let (host, argv) = calls.iter().find(|(_, argv)| argv.iter().any(|a| a.contains("token rotate"))).unwrap();
        assert_eq!(host, "n100-1");
        // Neither token is in n3x's argv: they go over standard input.
        assert!(!argv.iter().any(|a| a.contains("oldsecret") || a.contains("newsecret")), "{argv:?}");
    }

    /// A deploy resumed after the rotation ran on a server that is not the leader now: that
    /// server's token file has the new token, so it is not rotated again.
    #[test]
    fn a_rotation_already_done_on_another_server_is_not_repeated() {
        let spec = reference();
        let all: Vec<&HostSpec> = spec.hosts.iter().collect();
        let f = healthy();
        with_token(&f);
        f.on(|t, argv| {
            (t.host == "n100-2" && argv[0] == "cat" && argv[1].ends_with("/server/token"))
                .then(|| fake::ok("K10abcdef0123::server:newsecret\n"))
        });
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        assert_eq!(rotate_if_changed(ask, &spec, &all, "newsecret", &mut |_| {}).unwrap(), None);
        assert!(f.calls().iter().all(|(_, argv)| !argv.iter().any(|a| a.contains("token rotate"))));
        assert_eq!(format!("{:?}", Token::new("newsecret")), "Token(redacted)");
    }

    #[test]
    fn a_changed_token_needs_every_server_in_the_deploy() {
        let spec = reference();
        let some: Vec<&HostSpec> = spec.hosts.iter().filter(|h| h.name != "n100-3").collect();
        let f = healthy();
        with_token(&f);
        let ask = Ask { remote: &f, timeout: Duration::from_secs(1) };
        let e = rotate_if_changed(ask, &spec, &some, "newsecret", &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("n100-3") || format!("{e:?}").contains("n100-3"), "{e:?}");
        assert!(f.calls().iter().all(|(_, argv)| !argv.iter().any(|a| a.contains("token rotate"))));
    }
}
