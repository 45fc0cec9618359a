//! From the spanned TOML tree to the typed model. Reports syntax errors, unknown keys,
//! wrong types, missing keys and malformed values, and keeps going: every field that can be
//! read is read, so the semantic checks in `check` see as much of the model as possible.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Code, Diagnostic};
use crate::model::*;
use crate::net::{CidrError, Ipv4Net};
use crate::span::{Sp, Span};
use crate::suggest::did_you_mean;

type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read: where it is, what it is called in messages, and its entries.
#[derive(Clone, Copy)]
struct Table<'a, 'i> {
    /// How the user would write it: `k3s.etcd`, `hosts.n100-1`.
    path: &'a str,
    /// The table's key (start, end), for "missing key" labels. A pair, not a `Span`, so
    /// that `Table` stays `Copy`.
    anchor: (usize, usize),
    map: &'a DeTable<'i>,
}

impl<'a, 'i> Table<'a, 'i> {
    fn anchor(&self) -> Span {
        self.anchor.0..self.anchor.1
    }

    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.map.get(key)
    }

    fn key_span(&self, key: &str) -> Option<Span> {
        self.map.get_key_value(key).map(|(k, _)| k.span())
    }

    fn dotted(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }
}

/// Keys whose names say the user is about to put a secret in the inventory.
const SECRET_KEYS: &[&str] = &["token", "agent_token", "password", "secret", "private_key", "key"];

pub(crate) struct Decoder {
    pub(crate) diags: Vec<Diagnostic>,
    /// Dotted paths of values that are present but could not be read. Checks that would
    /// only repeat the problem ("no init server" after `init = "yes"`) skip them.
    pub(crate) unreadable: BTreeSet<String>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// Looks like something that must never be in n3x.toml: an age secret key, an SSH private
/// key, a k3s token (`K10<hash>::server:<secret>`), or a long random-looking word.
pub(crate) fn looks_like_secret(s: &str) -> bool {
    let s = s.trim();
    if s.starts_with("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY") || s.starts_with("K10") {
        return true;
    }
    let long_random = s.len() >= 24
        && !s.contains('/')
        && !s.contains(' ')
        && s.chars().any(|c| c.is_ascii_digit())
        && s.chars().any(|c| c.is_ascii_alphabetic());
    long_random && !s.starts_with("age1") && !s.starts_with("ssh-")
}

impl Decoder {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn wrong_type(&mut self, path: &str, v: &Value<'_>, expected: &str) {
        self.unreadable.insert(path.to_owned());
        let found = type_name(v.get_ref());
        self.push(
            Diagnostic::new(
                Code::InvalidType,
                v.span(),
                format!("`{path}` must be {expected}, found {found}"),
                format!("this is {found}"),
            )
            .help(format!("write `{path}` as {expected}")),
        );
    }

    fn missing(&mut self, t: Table<'_, '_>, key: &str, help: impl Into<String>) {
        // A misspelt key already got "did you mean `key`?": saying it is missing too is noise.
        if t.map.keys().any(|k| did_you_mean(k.get_ref(), [key]).is_some()) {
            return;
        }
        let what = if t.path.is_empty() { "the file".to_owned() } else { format!("`[{}]`", t.path) };
        self.push(
            Diagnostic::new(
                Code::MissingKey,
                t.anchor(),
                format!("{what} has no `{key}`, which is required"),
                format!("`{key}` is missing here"),
            )
            .help(help),
        );
    }

    fn invalid(&mut self, code: Code, span: Span, message: String, label: &str, help: String) {
        self.push(Diagnostic::new(code, span, message, label).help(help));
    }

    /// Reports every key of `t` not in `known`, with a hint when one is close.
    fn deny_unknown(&mut self, t: Table<'_, '_>, known: &[&str]) {
        for (key, value) in t.map.iter() {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            if SECRET_KEYS.contains(&name) {
                let d = Diagnostic::new(
                    Code::SecretInInventory,
                    key.span(),
                    format!("`{}` would put a secret value in n3x.toml", t.dotted(name)),
                    "secrets never go in the inventory",
                )
                .help(
                    "remove it: `n3x secrets tokens` writes the k3s tokens encrypted, and \
                     `k3s.token_file` / `k3s.agent_token_file` name where hosts find them",
                )
                .secret(value.span());
                self.push(d);
                continue;
            }
            let help = match did_you_mean(name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "the keys allowed here are: {}",
                    known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            let place = if t.path.is_empty() { "at the top level".to_owned() } else { format!("in `[{}]`", t.path) };
            self.push(
                Diagnostic::new(
                    Code::UnknownKey,
                    key.span(),
                    format!("unknown key `{name}` {place}"),
                    "not a key of schema v1",
                )
                .help(help),
            );
        }
    }

    fn table<'a, 'i>(&mut self, path: &'a str, anchor: Span, v: &'a Value<'i>) -> Option<Table<'a, 'i>> {
        match v.get_ref() {
            DeValue::Table(map) => Some(Table { path, anchor: (anchor.start, anchor.end), map }),
            _ => {
                self.wrong_type(path, v, "a table");
                None
            }
        }
    }

    /// A sub-table of `t`; its key is the anchor for "missing key" labels.
    fn sub<'a, 'i>(&mut self, t: Table<'a, 'i>, key: &str, path: &'a str) -> Option<Table<'a, 'i>> {
        let v = t.get(key)?;
        self.table(path, t.key_span(key).unwrap_or_default(), v)
    }

    fn string(&mut self, t: Table<'_, '_>, key: &str) -> Option<Sp<String>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), v.span())),
            _ => {
                self.wrong_type(&t.dotted(key), v, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, t: Table<'_, '_>, key: &str) -> Option<Sp<bool>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, v.span())),
            _ => {
                self.wrong_type(&t.dotted(key), v, "a boolean (`true` or `false`)");
                None
            }
        }
    }

    fn integer(&mut self, t: Table<'_, '_>, key: &str) -> Option<Sp<i64>> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                match i64::from_str_radix(&digits, i.radix()) {
                    Ok(n) => Some(Sp::new(n, v.span())),
                    Err(_) => {
                        self.invalid(
                            Code::OutOfRange,
                            v.span(),
                            format!("`{}` does not fit in a 64-bit integer", t.dotted(key)),
                            "too large",
                            "use a smaller number".into(),
                        );
                        None
                    }
                }
            }
            _ => {
                self.wrong_type(&t.dotted(key), v, "an integer");
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    fn int_in(&mut self, t: Table<'_, '_>, key: &str, lo: i64, hi: i64, why: &str) -> Option<Sp<i64>> {
        let n = self.integer(t, key)?;
        if n.value < lo || n.value > hi {
            self.unreadable.insert(t.dotted(key));
            self.invalid(
                Code::OutOfRange,
                n.span.clone(),
                format!("`{}` is {}, outside {lo}..={hi}", t.dotted(key), n.value),
                "out of range",
                format!("{why}; use a value from {lo} to {hi}"),
            );
            return None;
        }
        Some(n)
    }

    /// A non-negative number, integer or float.
    fn number(&mut self, t: Table<'_, '_>, key: &str) -> Option<Sp<f64>> {
        let v = t.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(_) => self.integer(t, key).map(|n| n.value as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => {
                self.wrong_type(&t.dotted(key), v, "a number");
                return None;
            }
        }?;
        if let Some(p) = profile_value_problem(key, n) {
            self.invalid(
                Code::OutOfRange,
                v.span(),
                p.message(&format!("`{}`", t.dotted(key)), n),
                p.label(),
                p.help().into(),
            );
            return None;
        }
        Some(Sp::new(n, v.span()))
    }

    fn strings(&mut self, t: Table<'_, '_>, key: &str) -> Option<Vec<Sp<String>>> {
        let v = t.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(&t.dotted(key), v, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => out.push(Sp::new(s.to_string(), item.span())),
                _ => self.wrong_type(&format!("{}[..]", t.dotted(key)), item, "a string"),
            }
        }
        Some(out)
    }

    /// A string that must be one of an enum's names.
    fn choice<T>(
        &mut self,
        t: Table<'_, '_>,
        key: &str,
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<Sp<T>> {
        let s = self.string(t, key)?;
        if let Some(v) = parse(&s.value) {
            return Some(Sp::new(v, s.span));
        }
        let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let help = match did_you_mean(&s.value, names.iter().copied()) {
            Some(n) => format!("did you mean `{n}`? `{}` is one of {list}", t.dotted(key)),
            None => format!("`{}` is one of {list}", t.dotted(key)),
        };
        self.unreadable.insert(t.dotted(key));
        self.invalid(
            Code::InvalidValue,
            s.span,
            format!("`{}` is not a known {}", s.value, key.replace('_', " ")),
            "unknown value",
            help,
        );
        None
    }

    /// A string that `check.0` accepts, else `check.1` (absent, or wrong with an
    /// invalid-value diagnostic: "`VALUE` is not WHAT", with `label_help`).
    fn formatted(
        &mut self,
        t: Table<'_, '_>,
        key: &str,
        check: (fn(&str) -> bool, &str),
        what: &str,
        label_help: (&str, &str),
    ) -> Sp<String> {
        let (valid, default) = check;
        match self.string(t, key) {
            Some(v) if valid(&v.value) => v,
            Some(v) => {
                self.invalid(
                    Code::InvalidValue,
                    v.span,
                    format!("`{}` is not {what}", v.value),
                    label_help.0,
                    label_help.1.into(),
                );
                Sp::new(default.to_owned(), t.anchor())
            }
            None => Sp::new(default.to_owned(), t.anchor()),
        }
    }

    fn cidr(&mut self, t: Table<'_, '_>, key: &str) -> Option<Sp<Ipv4Net>> {
        let s = self.string(t, key)?;
        match s.value.parse::<Ipv4Net>() {
            Ok(n) => Some(Sp::new(n, s.span)),
            Err(e) => {
                self.unreadable.insert(t.dotted(key));
                let help = match e {
                    CidrError::HostBits(n) => format!("the network is `{n}`: host bits must be zero"),
                    CidrError::Prefix => "the prefix length after `/` is a number from 0 to 32".into(),
                    CidrError::Syntax => "write an IPv4 network as `a.b.c.d/len`, e.g. `192.168.200.0/24`".into(),
                };
                let message = format!("`{}` is not a valid IPv4 CIDR for `{}`", s.value, t.dotted(key));
                self.invalid(Code::InvalidCidr, s.span, message, "invalid CIDR", help);
                None
            }
        }
    }

    fn ipv4(&mut self, path: &str, v: &Value<'_>) -> Option<Sp<Ipv4Addr>> {
        let DeValue::String(s) = v.get_ref() else {
            self.wrong_type(path, v, "a string holding an IPv4 address");
            return None;
        };
        match s.parse::<Ipv4Addr>() {
            Ok(a) => Some(Sp::new(a, v.span())),
            Err(_) => {
                self.unreadable.insert(path.to_owned());
                let help = if s.contains('/') {
                    "write the address alone: the prefix length comes from the network's `cidr`".to_owned()
                } else {
                    "write a dotted IPv4 address such as `192.168.200.11`".to_owned()
                };
                let message = format!("`{s}` is not an IPv4 address (`{path}`)");
                self.invalid(Code::InvalidAddress, v.span(), message, "invalid address", help);
                None
            }
        }
    }

    /// Checks `[a-z][a-z0-9-]*` and a length limit.
    fn name(&mut self, what: &str, name: &str, span: Span, max: usize) -> bool {
        let mut chars = name.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.len() <= max;
        if !ok {
            let suggestion: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
                .collect();
            let mut help = format!("{what} names match `[a-z][a-z0-9-]*` and have at most {max} characters");
            if suggestion != name && !suggestion.is_empty() && suggestion.starts_with(|c: char| c.is_ascii_lowercase())
            {
                help.push_str(&format!(", e.g. `{}`", &suggestion[..suggestion.len().min(max)]));
            }
            self.invalid(Code::InvalidName, span, format!("`{name}` is not a valid {what} name"), "invalid name", help);
        }
        ok
    }
}

/// Decodes the whole document; returns `None` only when the text is not TOML at all.
pub(crate) fn decode(source: &str, diags: &mut Vec<Diagnostic>) -> Option<Inventory> {
    let (root, errors) = DeTable::parse_recoverable(source);
    let mut d = Decoder { diags: Vec::new(), unreadable: BTreeSet::new() };
    let lines = crate::span::LineIndex::new(source);
    let mut error_lines = BTreeSet::new();
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        // The parser often reports one slip twice as it resynchronises; one per line is enough.
        if !error_lines.insert(lines.line_col(span.start).line) {
            continue;
        }
        let message = e.message().trim().trim_end_matches('.').to_owned();
        let first = message.lines().next().unwrap_or("invalid TOML").to_owned();
        d.push(
            Diagnostic::new(Code::TomlSyntax, span, format!("invalid TOML: {}", first.to_lowercase()), first)
                .help("fix the TOML syntax here; see https://toml.io for the rules"),
        );
    }
    if !errors.is_empty() {
        // A recovered tree can hold half-parsed tables: schema errors on it would be noise.
        diags.append(&mut d.diags);
        return None;
    }
    let top = Table { path: "", anchor: (0, 0), map: root.get_ref() };
    let mut inv = decode_root(&mut d, top);
    inv.unreadable = std::mem::take(&mut d.unreadable);
    diags.append(&mut d.diags);
    Some(inv)
}

fn decode_root(d: &mut Decoder, top: Table<'_, '_>) -> Inventory {
    d.deny_unknown(
        top,
        &["version", "cluster", "k3s", "networks", "hosts", "addons", "security", "secrets", "access", "lab"],
    );

    let version = d.integer(top, "version");
    match &version {
        None if top.get("version").is_none() => {
            d.missing(top, "version", format!("add `version = {SCHEMA_VERSION}` at the top of the file"))
        }
        Some(v) if v.value != SCHEMA_VERSION => d.invalid(
            Code::UnsupportedVersion,
            v.span.clone(),
            format!("schema version {} is not supported", v.value),
            "unsupported version",
            format!("this n3x reads schema version {SCHEMA_VERSION}; set `version = {SCHEMA_VERSION}`"),
        ),
        _ => {}
    }
    let cluster = match d.sub(top, "cluster", "cluster") {
        Some(t) => decode_cluster(d, t),
        None => {
            if top.get("cluster").is_none() {
                d.missing(top, "cluster", "add a `[cluster]` table with `name = \"...\"`");
            }
            Cluster { name: None, domain: None }
        }
    };
    let k3s_table = d.sub(top, "k3s", "k3s");
    let k3s = decode_k3s(d, k3s_table);
    let networks = match d.sub(top, "networks", "networks") {
        Some(t) => decode_networks(d, t),
        None => {
            if top.get("networks").is_none() {
                d.missing(top, "networks", "add `[networks.cluster]` with `cidr = \"...\"`");
            }
            BTreeMap::new()
        }
    };
    let hosts = match d.sub(top, "hosts", "hosts") {
        Some(t) => decode_hosts(d, t),
        None => {
            if top.get("hosts").is_none() {
                d.missing(top, "hosts", "add at least one `[hosts.<name>]` table");
            }
            BTreeMap::new()
        }
    };
    let addons = match d.sub(top, "addons", "addons") {
        Some(t) => decode_addons(d, t),
        None => Addons::default(),
    };
    let security_table = d.sub(top, "security", "security");
    let security = decode_security(d, security_table);
    let secrets_table = d.sub(top, "secrets", "secrets");
    let secrets = decode_secrets(d, secrets_table);
    let access = match d.sub(top, "access", "access") {
        Some(t) => decode_access(d, t),
        None => Access::default(),
    };
    let lab_table = d.sub(top, "lab", "lab");
    let lab = decode_lab(d, lab_table);

    Inventory {
        version,
        cluster,
        k3s,
        networks,
        hosts,
        addons,
        security,
        secrets,
        access,
        lab,
        unreadable: BTreeSet::new(),
    }
}

fn decode_access(d: &mut Decoder, t: Table<'_, '_>) -> Access {
    d.deny_unknown(t, &["ssh_keys"]);
    let mut keys = Vec::new();
    for (i, k) in d.strings(t, "ssh_keys").unwrap_or_default().into_iter().enumerate() {
        match crate::ssh::parse(&k.value) {
            Ok(_) => keys.push(k),
            Err(problem) => {
                let mut diag = Diagnostic::new(
                    Code::InvalidSshKey,
                    k.span.clone(),
                    format!("`access.ssh_keys[{i}]` is not an SSH public key: {}", problem.message()),
                    "not a public key",
                )
                .help(
                    "paste a whole line of a `.pub` file (`ssh-ed25519 AAAA... you@host`), e.g. the output of `cat ~/.ssh/id_ed25519.pub`",
                );
                if problem == crate::ssh::KeyProblem::PrivateKey {
                    diag = diag
                        .help(
                            "paste the `.pub` file, never the private key; replace this key: it is in your repository",
                        )
                        .secret(k.span.clone());
                }
                d.push(diag);
            }
        }
    }
    Access { span: Some(t.anchor()), ssh_keys: keys }
}

fn decode_cluster(d: &mut Decoder, t: Table<'_, '_>) -> Cluster {
    d.deny_unknown(t, &["name", "domain"]);
    let name = d.string(t, "name");
    if name.is_none() && t.get("name").is_none() {
        d.missing(t, "name", "add `name = \"...\"`, e.g. `name = \"edge\"`");
    }
    let name = name.filter(|n| d.name("cluster", &n.value, n.span.clone(), 24));
    let domain = d.string(t, "domain");
    if let Some(dom) = &domain {
        let ok = !dom.value.is_empty()
            && dom.value.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !ok {
            d.invalid(
                Code::InvalidValue,
                dom.span.clone(),
                format!("`{}` is not a valid DNS domain", dom.value),
                "invalid domain",
                "write dot-separated labels of letters, digits and `-`, e.g. `edge.lan`".into(),
            );
        }
    }
    Cluster { name, domain }
}

fn decode_k3s(d: &mut Decoder, t: Option<Table<'_, '_>>) -> K3s {
    let span = t.map_or(0..0, |t| t.anchor());
    let def = |v: &str| Sp::new(v.to_owned(), span.clone());
    let mut k = K3s {
        span: span.clone(),
        version: def("v1.31"),
        cluster_cidr: Sp::new(Ipv4Net::DEFAULT_CLUSTER_CIDR, span.clone()),
        service_cidr: Sp::new(Ipv4Net::DEFAULT_SERVICE_CIDR, span.clone()),
        cluster_dns: Sp::new(Ipv4Addr::new(10, 43, 0, 10), span.clone()),
        disable: Vec::new(),
        token_file: def("/run/secrets/k3s-token"),
        agent_token_file: def("/run/secrets/k3s-agent-token"),
        etcd: Etcd {
            heartbeat_ms: Sp::new(100, span.clone()),
            election_ms: Sp::new(1000, span.clone()),
            snapshot_schedule: def("0 */6 * * *"),
            snapshot_retention: Sp::new(10, span.clone()),
        },
    };
    let Some(t) = t else { return k };
    d.deny_unknown(
        t,
        &[
            "version",
            "cluster_cidr",
            "service_cidr",
            "cluster_dns",
            "disable",
            "token_file",
            "agent_token_file",
            "etcd",
        ],
    );
    if let Some(v) = d.string(t, "version") {
        let ok = v.value.strip_prefix('v').is_some_and(|r| {
            let parts: Vec<&str> = r.split('.').collect();
            parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if ok && k3s_package(&v.value).is_none() {
            let tracks = K3S_TRACKS.iter().map(|(t, _)| format!("`{t}`")).collect::<Vec<_>>().join(", ");
            d.invalid(
                Code::UnsupportedK3sVersion,
                v.span.clone(),
                format!("k3s `{}` is not in the pinned nixpkgs (nixos-25.11)", v.value),
                "no such k3s package",
                format!("nixos-25.11 carries {tracks}; pick one (a minor upgrade is one step at a time)"),
            );
            d.unreadable.insert("k3s.version".into());
        } else if ok {
            k.version = v;
        } else {
            d.invalid(
                Code::InvalidValue,
                v.span,
                format!("`{}` is not a k3s minor track", v.value),
                "expected `vMAJOR.MINOR`",
                "write the track as `v1.31`: n3x pins the patch release".into(),
            );
        }
    }
    if let Some(c) = d.cidr(t, "cluster_cidr") {
        k.cluster_cidr = c;
    }
    if let Some(c) = d.cidr(t, "service_cidr") {
        k.service_cidr = c;
    }
    if let Some(v) = t.get("cluster_dns") {
        if let Some(a) = d.ipv4("k3s.cluster_dns", v) {
            k.cluster_dns = a;
        }
    }
    if let Some(list) = d.strings(t, "disable") {
        for item in list {
            if DISABLEABLE.contains(&item.value.as_str()) {
                k.disable.push(item);
            } else {
                let names = DISABLEABLE.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                let help = match did_you_mean(&item.value, DISABLEABLE.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? k3s can disable {names}"),
                    None => format!("k3s can disable {names}"),
                };
                let message = format!("`{}` is not a k3s packaged component", item.value);
                d.invalid(Code::InvalidValue, item.span, message, "unknown component", help);
            }
        }
    }
    for key in ["token_file", "agent_token_file"] {
        let Some(p) = d.string(t, key) else { continue };
        if p.value.starts_with('/') && !p.value.contains(char::is_whitespace) {
            if key == "token_file" {
                k.token_file = p;
            } else {
                k.agent_token_file = p;
            }
        } else if looks_like_secret(&p.value) {
            d.push(
                Diagnostic::new(
                    Code::SecretInInventory,
                    p.span.clone(),
                    format!("`k3s.{key}` holds what looks like a token value, not a path"),
                    "a secret must never be written here",
                )
                .help(format!(
                    "set `k3s.{key}` to an absolute path on the hosts such as `/run/secrets/k3s-token`, \
                     run `n3x secrets tokens` to store tokens encrypted, and rotate this token: it is in your repository"
                ))
                .secret(p.span),
            );
        } else {
            d.push(
                Diagnostic::new(
                    Code::SecretInInventory,
                    p.span.clone(),
                    format!("`k3s.{key}` must be an absolute path on the hosts"),
                    "not an absolute path",
                )
                .help(format!("set `k3s.{key}` to where sops-nix puts the token, e.g. `/run/secrets/k3s-token`")),
            );
        }
    }
    if let Some(e) = d.sub(t, "etcd", "k3s.etcd") {
        d.deny_unknown(e, &["heartbeat_ms", "election_ms", "snapshot_schedule", "snapshot_retention"]);
        if let Some(v) = d.int_in(e, "heartbeat_ms", 1, 50_000, "etcd's heartbeat is a positive number of milliseconds")
        {
            k.etcd.heartbeat_ms = v.map(|n| n as u64);
        }
        if let Some(v) =
            d.int_in(e, "election_ms", 1, i64::MAX, "etcd's election timeout is a positive number of milliseconds")
        {
            k.etcd.election_ms = v.map(|n| n as u64);
        }
        if let Some(s) = d.string(e, "snapshot_schedule") {
            if s.value.split_whitespace().count() == 5 {
                k.etcd.snapshot_schedule = s;
            } else {
                d.invalid(
                    Code::InvalidValue,
                    s.span,
                    format!("`{}` is not a five-field cron schedule", s.value),
                    "expected `min hour day month weekday`",
                    "write a cron schedule such as `0 */6 * * *` (every six hours)".into(),
                );
            }
        }
        if let Some(v) = d.int_in(e, "snapshot_retention", 1, 10_000, "k3s keeps at least one snapshot") {
            k.etcd.snapshot_retention = v.map(|n| n as u64);
        }
    }
    k
}

fn decode_networks(d: &mut Decoder, t: Table<'_, '_>) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    for (key, value) in t.map.iter() {
        let name = key.get_ref().to_string();
        let path = format!("networks.{name}");
        let anchor = key.span();
        let Some(n) = d.table(&path, anchor.clone(), value) else { continue };
        d.name("network", key.get_ref(), key.span(), 15);
        d.deny_unknown(n, &["cidr", "vlan", "mtu", "gateway", "dns"]);
        let cidr = d.cidr(n, "cidr");
        if n.get("cidr").is_none() {
            d.missing(n, "cidr", "add `cidr = \"a.b.c.d/len\"`, the IPv4 network of this segment");
        }
        let vlan = d.int_in(n, "vlan", 1, 4094, "802.1Q VLAN ids run from 1 to 4094").map(|v| v.map(|n| n as u16));
        let mtu = d
            .int_in(n, "mtu", 576, 9216, "the MTU must fit the NICs: 576 (IPv4 minimum) to 9216 (jumbo frames)")
            .map_or(Sp::new(1500, anchor.clone()), |v| v.map(|n| n as u16));
        let gateway = n.get("gateway").and_then(|v| d.ipv4(&format!("{path}.gateway"), v));
        let dns = match n.get("dns") {
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => {
                    items.iter().filter_map(|item| d.ipv4(&format!("{path}.dns[..]"), item)).collect()
                }
                _ => {
                    d.wrong_type(&format!("{path}.dns"), v, "an array of IPv4 addresses");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let name = Sp::new(name, key.span());
        out.insert(name.value.clone(), Network { name, cidr, vlan, mtu, gateway, dns });
    }
    if t.map.is_empty() {
        d.missing(t, "cluster", "add `[networks.cluster]` with `cidr = \"...\"`");
    }
    out
}

const HOST_KEYS: &[&str] = &[
    "hardware",
    "role",
    "init",
    "ssh",
    "disk",
    "layout",
    "firmware",
    "console",
    "labels",
    "taints",
    "interfaces",
    "addresses",
    "age",
];

fn decode_hosts(d: &mut Decoder, t: Table<'_, '_>) -> BTreeMap<String, Host> {
    let mut out = BTreeMap::new();
    if t.map.is_empty() {
        d.missing(t, "<name>", "add at least one `[hosts.<name>]` table");
    }
    for (key, value) in t.map.iter() {
        let name = Sp::new(key.get_ref().to_string(), key.span());
        let path = format!("hosts.{}", name.value);
        let anchor = key.span();
        let Some(h) = d.table(&path, anchor.clone(), value) else { continue };
        d.name("host", &name.value, name.span.clone(), 63);
        out.insert(name.value.clone(), decode_host(d, h, name));
    }
    out
}

fn decode_host(d: &mut Decoder, h: Table<'_, '_>, name: Sp<String>) -> Host {
    d.deny_unknown(h, HOST_KEYS);
    let hardware = d.choice(h, "hardware", Hardware::NAMES, Hardware::parse);
    if h.get("hardware").is_none() {
        d.missing(h, "hardware", format!("add `hardware = \"...\"`, one of {}", quoted(Hardware::NAMES)));
    }
    let role = d.choice(h, "role", Role::NAMES, Role::parse);
    if h.get("role").is_none() {
        d.missing(h, "role", "add `role = \"server\"` (control plane + etcd) or `role = \"agent\"`");
    }
    let init = d.boolean(h, "init");
    let ssh = d.string(h, "ssh").filter(|s| {
        let ok = valid_ssh_target(&s.value);
        if !ok {
            d.invalid(
                Code::InvalidValue,
                s.span.clone(),
                format!("`{}` is not an SSH target", s.value),
                "expected `user@host[:port]`",
                "write the deploy target as `user@host` or `user@host:port`, e.g. `root@192.168.200.11`".into(),
            );
        }
        ok
    });
    let disk = d.string(h, "disk").filter(|s| {
        let ok = s.value.starts_with("/dev/") && s.value.len() > 5 && !s.value.contains(char::is_whitespace);
        if !ok {
            d.invalid(
                Code::InvalidValue,
                s.span.clone(),
                format!("`{}` is not a disk device path", s.value),
                "expected `/dev/...`",
                "name the install disk by its absolute path, e.g. `/dev/nvme0n1` or `/dev/disk/by-id/...`".into(),
            );
        }
        ok
    });
    let layout = d.choice(h, "layout", Layout::NAMES, Layout::parse);
    let firmware = d.string(h, "firmware");
    let console = d.string(h, "console");

    let mut labels = Vec::new();
    let lpath = format!("{}.labels", h.path);
    if let Some(l) = d.sub(h, "labels", &lpath) {
        for (k, v) in l.map.iter() {
            let key = Sp::new(k.get_ref().to_string(), k.span());
            match v.get_ref() {
                DeValue::String(s) => {
                    if valid_label_key(&key.value) {
                        labels.push((key, Sp::new(s.to_string(), v.span())));
                    } else {
                        d.invalid(
                            Code::InvalidValue,
                            key.span.clone(),
                            format!("`{}` is not a valid Kubernetes label key", key.value),
                            "invalid label key",
                            "a label key is `[prefix/]name`: name up to 63 characters of letters, digits, `-`, `_`, `.`; prefix a DNS subdomain".into(),
                        );
                    }
                }
                _ => d.wrong_type(&format!("{lpath}.\"{}\"", key.value), v, "a string"),
            }
        }
    }
    let taints = d
        .strings(h, "taints")
        .unwrap_or_default()
        .into_iter()
        .filter(|t| {
            let ok = valid_taint(&t.value);
            if !ok {
                d.invalid(
                    Code::InvalidValue,
                    t.span.clone(),
                    format!("`{}` is not a Kubernetes taint", t.value),
                    "expected `key=value:Effect`",
                    "write a taint as `key=value:Effect` with Effect `NoSchedule`, `PreferNoSchedule` or `NoExecute`"
                        .into(),
                );
            }
            ok
        })
        .collect();

    let mut interfaces = Vec::new();
    let ipath = format!("{}.interfaces", h.path);
    if let Some(it) = d.sub(h, "interfaces", &ipath) {
        for (k, v) in it.map.iter() {
            let ifname = Sp::new(k.get_ref().to_string(), k.span());
            let path = format!("{ipath}.{}", ifname.value);
            let anchor = k.span();
            let Some(i) = d.table(&path, anchor.clone(), v) else { continue };
            check_ifname(d, &ifname);
            interfaces.push(decode_interface(d, i, ifname));
        }
    }

    let mut addresses = Vec::new();
    let apath = format!("{}.addresses", h.path);
    if let Some(at) = d.sub(h, "addresses", &apath) {
        for (k, v) in at.map.iter() {
            let net = Sp::new(k.get_ref().to_string(), k.span());
            if let Some(addr) = d.ipv4(&format!("{apath}.{}", net.value), v) {
                addresses.push((net, addr));
            }
        }
    }
    addresses.sort_by_key(|(n, _)| n.span.start);

    let age = d.string(h, "age").filter(|s| check_recipient(d, s, &format!("{}.age", h.path)));
    Host {
        name,
        hardware,
        role,
        init,
        ssh,
        disk,
        layout,
        firmware,
        console,
        labels,
        taints,
        interfaces,
        addresses,
        age,
    }
}

fn decode_interface(d: &mut Decoder, i: Table<'_, '_>, name: Sp<String>) -> Interface {
    d.deny_unknown(i, &["bond", "networks", "mac"]);
    let mac = d.string(i, "mac").and_then(|m| match normalise_mac(&m.value) {
        Some(v) => Some(Sp::new(v, m.span)),
        None => {
            d.invalid(
                Code::InvalidValue,
                m.span,
                format!("`{}` is not a MAC address (`{}.mac`)", m.value, i.path),
                "expected `aa:bb:cc:dd:ee:ff`",
                "write the NIC's MAC as six hex pairs separated by `:` (`ip link` shows it as `link/ether`)".into(),
            );
            None
        }
    });
    let networks = d.strings(i, "networks").unwrap_or_default();
    if i.get("networks").is_none() {
        d.missing(i, "networks", "list the networks this interface carries, e.g. `networks = [\"cluster\"]`");
    }
    let mut bond = None;
    let bpath = format!("{}.bond", i.path);
    if let Some(b) = d.sub(i, "bond", &bpath) {
        d.deny_unknown(b, &["members", "mode"]);
        let members = d.strings(b, "members").unwrap_or_default();
        if b.get("members").is_none() {
            d.missing(b, "members", "list the NICs of the bond, e.g. `members = [\"enp1s0\", \"enp2s0\"]`");
        } else if members.is_empty() {
            d.invalid(
                Code::InvalidValue,
                b.get("members").map_or(b.anchor(), |v| v.span()),
                format!("bond `{}` has no members", name.value),
                "empty",
                "list at least one NIC, e.g. `members = [\"enp1s0\", \"enp2s0\"]`".into(),
            );
        }
        for m in &members {
            check_ifname(d, m);
        }
        let mode = d
            .choice(b, "mode", BondMode::NAMES, BondMode::parse)
            .unwrap_or_else(|| Sp::new(BondMode::ActiveBackup, b.anchor()));
        bond = Some(Bond { members, mode });
    }
    let mac = match (mac, &bond) {
        (Some(m), Some(_)) => {
            d.invalid(
                Code::InvalidValue,
                m.span,
                format!("`{}` is a bond: it has no MAC of its own to be found by", name.value),
                "a bond takes its members' MAC",
                "remove `mac`; name the bond's members by their predictable names (`ip link`, e.g. `enp1s0`)".into(),
            );
            None
        }
        (m, _) => m,
    };
    Interface { name, bond, networks, mac }
}

/// `AA-BB-CC-DD-EE-FF` or `aa:bb:...` as lowercase `aa:bb:cc:dd:ee:ff`; None if not a MAC.
fn normalise_mac(s: &str) -> Option<String> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    let ok = parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

fn check_ifname(d: &mut Decoder, n: &Sp<String>) {
    let ok = !n.value.is_empty()
        && n.value.len() <= 15
        && n.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        && n.value != "."
        && n.value != "..";
    if !ok {
        d.invalid(
            Code::InvalidName,
            n.span.clone(),
            format!("`{}` is not a valid Linux interface name", n.value),
            "invalid interface name",
            "interface names have 1 to 15 characters: letters, digits, `-`, `_`, `.`".into(),
        );
    }
}

fn check_recipient(d: &mut Decoder, s: &Sp<String>, path: &str) -> bool {
    if s.value.starts_with("AGE-SECRET-KEY-") || looks_like_secret(&s.value) && !s.value.starts_with("age1") {
        d.push(
            Diagnostic::new(
                Code::SecretInInventory,
                s.span.clone(),
                format!("`{path}` holds what looks like a secret key, not a public age recipient"),
                "a secret must never be written here",
            )
            .help("write the public recipient (`age1...`, from `age-keygen -y`), and replace this key: it is in your repository")
            .secret(s.span.clone()),
        );
        return false;
    }
    let ok = s.value.starts_with("age1")
        && s.value.len() == 62
        && s.value[4..].bytes().all(|b| b"qpzry9x8gf2tvdw0s3jn54khce6mua7l".contains(&b));
    if !ok {
        d.invalid(
            Code::InvalidValue,
            s.span.clone(),
            format!("`{path}` is not an age recipient"),
            "expected `age1` and 58 bech32 characters",
            "let `n3x secrets` write it, or paste the output of `age-keygen -y` / `ssh-to-age`".into(),
        );
    }
    ok
}

fn decode_addons(d: &mut Decoder, t: Table<'_, '_>) -> Addons {
    d.deny_unknown(t, &["kyverno", "multus", "longhorn", "monitoring"]);
    let mut out = Addons::default();
    let enable =
        |d: &mut Decoder, t: Table<'_, '_>| d.boolean(t, "enable").unwrap_or_else(|| Sp::new(true, t.anchor()));
    if let Some(k) = d.sub(t, "kyverno", "addons.kyverno") {
        d.deny_unknown(k, &["enable"]);
        out.kyverno = Some(Kyverno { enable: enable(d, k) });
    }
    if let Some(m) = d.sub(t, "multus", "addons.multus") {
        d.deny_unknown(m, &["enable", "networks"]);
        out.multus = Some(Multus { enable: enable(d, m), networks: d.strings(m, "networks").unwrap_or_default() });
    }
    if let Some(l) = d.sub(t, "longhorn", "addons.longhorn") {
        d.deny_unknown(l, &["enable", "network", "replicas", "data_path"]);
        let replicas = d
            .int_in(l, "replicas", 1, 100, "Longhorn keeps at least one replica of each volume")
            .map_or(Sp::new(3, l.anchor()), |v| v.map(|n| n as u64));
        let data_path = match d.string(l, "data_path") {
            Some(p) if p.value.starts_with('/') => p,
            Some(p) => {
                d.invalid(
                    Code::InvalidValue,
                    p.span.clone(),
                    "`addons.longhorn.data_path` must be an absolute path".into(),
                    "not absolute",
                    "use an absolute path on the hosts, e.g. `/var/lib/longhorn`".into(),
                );
                p
            }
            None => Sp::new("/var/lib/longhorn".to_owned(), l.anchor()),
        };
        out.longhorn = Some(Longhorn { enable: enable(d, l), network: d.string(l, "network"), replicas, data_path });
    }
    if let Some(m) = d.sub(t, "monitoring", "addons.monitoring") {
        d.deny_unknown(m, &["enable", "retention", "storage", "size"]);
        let retention = d.formatted(
            m,
            "retention",
            (valid_duration, DEFAULT_RETENTION),
            "a Prometheus retention",
            ("expected a number and a unit", "write a duration such as `15d` or `12h` (units ms, s, m, h, d, w, y)"),
        );
        let size = d.formatted(
            m,
            "size",
            (valid_quantity, DEFAULT_MONITORING_SIZE),
            "a volume size",
            ("expected a number and `Mi`, `Gi` or `Ti`", "write a Kubernetes quantity such as `20Gi`"),
        );
        let storage = d.choice(m, "storage", MonitoringStorage::NAMES, MonitoringStorage::parse);
        out.monitoring = Some(Monitoring { enable: enable(d, m), retention, storage, size });
    }
    out
}

/// `[security]`: every default is the hardened choice, so an absent table is a hardened cluster.
fn decode_security(d: &mut Decoder, t: Option<Table<'_, '_>>) -> Security {
    let span = t.map_or(0..0, |t| t.anchor());
    let on = Sp::new(true, span.clone());
    let mut s = Security {
        span: span.clone(),
        secrets_encryption: on.clone(),
        protect_kernel_defaults: on.clone(),
        pod_security: Sp::new(PodSecurity::Restricted, span.clone()),
        tls_san: Vec::new(),
        audit: Audit {
            enable: on,
            policy_file: None,
            log_path: Sp::new(DEFAULT_AUDIT_LOG.into(), span.clone()),
            max_age_days: Sp::new(30, span.clone()),
            max_backups: Sp::new(10, span.clone()),
            max_size_mb: Sp::new(100, span),
        },
    };
    let Some(t) = t else { return s };
    d.deny_unknown(t, &["secrets_encryption", "protect_kernel_defaults", "pod_security", "tls_san", "audit"]);
    if let Some(b) = d.boolean(t, "secrets_encryption") {
        s.secrets_encryption = b;
    }
    if let Some(b) = d.boolean(t, "protect_kernel_defaults") {
        s.protect_kernel_defaults = b;
    }
    if let Some(p) = d.choice(t, "pod_security", PodSecurity::NAMES, PodSecurity::parse) {
        s.pod_security = p;
    }
    for san in d.strings(t, "tls_san").unwrap_or_default() {
        if valid_san(&san.value) {
            s.tls_san.push(san);
        } else {
            d.invalid(
                Code::InvalidTlsSan,
                san.span,
                format!("`{}` cannot be a name in the API server's certificate", san.value),
                "not a DNS name or IPv4 address",
                "give a DNS name (`k3s.example.lan`, at most 253 characters of letters, digits, `-` and `.`) \
                 or an IPv4 address such as a VIP (`192.168.200.10`)"
                    .into(),
            );
        }
    }
    if let Some(a) = d.sub(t, "audit", "security.audit") {
        d.deny_unknown(a, &["enable", "policy_file", "log_path", "max_age_days", "max_backups", "max_size_mb"]);
        if let Some(b) = d.boolean(a, "enable") {
            s.audit.enable = b;
        }
        if let Some(f) = d.string(a, "policy_file") {
            if f.value.is_empty() || f.value.starts_with('/') || f.value.split('/').any(|c| c == "..") {
                d.invalid(
                    Code::InvalidValue,
                    f.span.clone(),
                    format!("`security.audit.policy_file` `{}` must be a path inside the repository", f.value),
                    "not a relative path",
                    "give a path relative to n3x.toml without `..` (the flake can only read its own files), \
                     e.g. `security/audit-policy.yaml`"
                        .into(),
                );
            } else {
                s.audit.policy_file = Some(f);
            }
        }
        if let Some(p) = d.string(a, "log_path") {
            if p.value.starts_with('/') && !p.value.ends_with('/') && !p.value.contains(char::is_whitespace) {
                s.audit.log_path = p;
            } else {
                d.invalid(
                    Code::InvalidValue,
                    p.span.clone(),
                    format!("`security.audit.log_path` `{}` must be an absolute file path on the servers", p.value),
                    "not an absolute file path",
                    format!("use an absolute path without spaces, e.g. `{DEFAULT_AUDIT_LOG}`"),
                );
            }
        }
        if let Some(v) = d.int_in(a, "max_age_days", 1, 3650, "the API server keeps rotated audit logs for whole days")
        {
            s.audit.max_age_days = v.map(|n| n as u64);
        }
        if let Some(v) = d.int_in(a, "max_backups", 1, 1000, "at least one rotated audit log is kept") {
            s.audit.max_backups = v.map(|n| n as u64);
        }
        if let Some(v) = d.int_in(a, "max_size_mb", 1, 10_000, "an audit log is rotated at this many megabytes") {
            s.audit.max_size_mb = v.map(|n| n as u64);
        }
    }
    s
}

/// A DNS name or a dotted IPv4 address (what k3s puts in the certificate's SANs).
fn valid_san(s: &str) -> bool {
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    // All digits and dots but not an address: a typo of one, not a name.
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    !name.is_empty()
        && s.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Prometheus' duration: digits and a unit, e.g. `15d`, `12h`.
fn valid_duration(s: &str) -> bool {
    let unit = ["ms", "s", "m", "h", "d", "w", "y"].into_iter().find(|u| s.ends_with(u));
    unit.is_some_and(|u| {
        let n = &s[..s.len() - u.len()];
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.bytes().any(|b| b != b'0')
    })
}

/// A Kubernetes quantity in binary units, e.g. `20Gi`.
fn valid_quantity(s: &str) -> bool {
    ["Mi", "Gi", "Ti"].iter().any(|u| {
        s.strip_suffix(u)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.bytes().any(|b| b != b'0'))
    })
}

fn decode_secrets(d: &mut Decoder, t: Option<Table<'_, '_>>) -> Secrets {
    let span = t.map_or(0..0, |t| t.anchor());
    let mut s = Secrets { file: Sp::new("secrets/k3s.yaml".into(), span), admins: Vec::new() };
    let Some(t) = t else { return s };
    d.deny_unknown(t, &["file", "admins"]);
    if let Some(f) = d.string(t, "file") {
        if f.value.is_empty() || f.value.starts_with('/') || f.value.split('/').any(|c| c == "..") {
            d.invalid(
                Code::InvalidValue,
                f.span.clone(),
                format!("`secrets.file` `{}` must be a path inside the repository", f.value),
                "not a relative path",
                "give a path relative to n3x.toml without `..`, e.g. `secrets/k3s.yaml`".into(),
            );
        } else {
            s.file = f;
        }
    }
    for a in d.strings(t, "admins").unwrap_or_default() {
        if check_recipient(d, &a, "secrets.admins") {
            s.admins.push(a);
        }
    }
    s
}

fn decode_lab(d: &mut Decoder, t: Option<Table<'_, '_>>) -> Lab {
    let span = t.map_or(0..0, |t| t.anchor());
    let mut lab = Lab {
        seed: Sp::new(1, span.clone()),
        profile: Sp::new("default".into(), span),
        profiles: BTreeMap::new(),
        hosts: Vec::new(),
    };
    let Some(t) = t else { return lab };
    d.deny_unknown(t, &["seed", "profile", "profiles", "hosts"]);
    if let Some(s) = d.int_in(t, "seed", 0, i64::MAX, "the seed is a non-negative integer") {
        lab.seed = s.map(|n| n as u64);
    }
    if let Some(p) = d.string(t, "profile") {
        lab.profile = p;
    }
    if let Some(ps) = d.sub(t, "profiles", "lab.profiles") {
        for (k, v) in ps.map.iter() {
            let name = Sp::new(k.get_ref().to_string(), k.span());
            let path = format!("lab.profiles.{}", name.value);
            let anchor = k.span();
            let Some(p) = d.table(&path, anchor.clone(), v) else { continue };
            d.deny_unknown(p, &PROFILE_FIELDS);
            let prof = Profile {
                delay_ms: d.number(p, "delay_ms").map(|n| n.value),
                jitter_ms: d.number(p, "jitter_ms").map(|n| n.value),
                loss_pct: d.number(p, "loss_pct").map(|n| n.value),
                rate_mbit: d.number(p, "rate_mbit").map(|n| n.value),
            };
            lab.profiles.insert(name.value.clone(), (name, prof));
        }
    }
    if let Some(hs) = d.sub(t, "hosts", "lab.hosts") {
        for (k, v) in hs.map.iter() {
            let host = Sp::new(k.get_ref().to_string(), k.span());
            let path = format!("lab.hosts.{}", host.value);
            let anchor = k.span();
            let Some(h) = d.table(&path, anchor.clone(), v) else { continue };
            d.deny_unknown(h, &["profile"]);
            let profile = d.string(h, "profile");
            lab.hosts.push((host, profile));
        }
    }
    lab
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn valid_ssh_target(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else { return false };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let name_ok = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    name_ok(user) && name_ok(host) && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

fn valid_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
    });
    name_ok && prefix_ok
}

fn valid_taint(t: &str) -> bool {
    let Some((kv, effect)) = t.rsplit_once(':') else { return false };
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) && valid_label_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_validators() {
        assert!(valid_ssh_target("root@192.168.200.11"));
        assert!(valid_ssh_target("deploy@n100-1.lan:2222"));
        assert!(!valid_ssh_target("192.168.200.11"));
        assert!(!valid_ssh_target("root@host:0"));
        assert!(valid_taint("gpu=true:NoSchedule"));
        assert!(valid_taint("dedicated:NoExecute"));
        assert!(!valid_taint("gpu=true:Sometimes"));
        assert!(valid_label_key("node.n3x.io/class"));
        assert!(!valid_label_key("-bad"));
        assert!(looks_like_secret("K10abc::server:deadbeef"));
        assert!(looks_like_secret("AGE-SECRET-KEY-1QQQ"));
        assert!(!looks_like_secret("/run/secrets/k3s-token"));
        assert!(!looks_like_secret("k3s-token"));
        for ok in ["k3s.home.arpa", "*.k3s.lan", "192.168.200.10", "vip", "a-b.c"] {
            assert!(valid_san(ok), "{ok}");
        }
        for bad in ["", "1.2.3", "10.0.0.300", "a..b", "-a.lan", "a-.lan", "https://x", "*", "*.", "a_b"] {
            assert!(!valid_san(bad), "{bad}");
        }
        assert!(!valid_san(&format!("{}.lan", "a".repeat(64))));
        for ok in ["15d", "12h", "500ms", "1y", "30m"] {
            assert!(valid_duration(ok), "{ok}");
        }
        for bad in ["", "d", "0d", "15", "15 d", "1.5d", "-1d", "15days"] {
            assert!(!valid_duration(bad), "{bad}");
        }
        for ok in ["20Gi", "512Mi", "1Ti"] {
            assert!(valid_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "0Gi", "20GB", "20G", "1.5Gi", "20gi"] {
            assert!(!valid_quantity(bad), "{bad}");
        }
    }
}
