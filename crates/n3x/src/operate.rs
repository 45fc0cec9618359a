//! `n3x status` and `n3x backup`: pick the target (the machines or the running lab, as for
//! deploy), the journal, the backup directory and the identity; call `n3x-operate`;
//! render its report.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use n3x_deploy::observe::Ask;
use n3x_operate::backup::{self, RestoreOptions, SnapshotOptions};
use n3x_operate::bundle;
use n3x_operate::certs::{self, RotateOptions};
use n3x_operate::status::{self, Context, Fact, Report, Verdict};
use n3x_operate::throwaway::Tools;
use n3x_secrets::keys::Identities;

use crate::cli::{
    BackupCommand, CertsCommand, CertsRotateArgs, ClusterArgs, LabArg, ListArgs, RestoreArgs, SnapshotArgs, StatusArgs,
    TargetArgs, VerifyArgs,
};
use crate::deploy::{Target, target};
use crate::error::Error;
use crate::exit;
use crate::inventory::Purpose;
use crate::render::print_stdout;

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn env(k: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(k)
}

fn json_line(v: &impl serde::Serialize, pretty: bool) {
    let text = if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
    print_stdout(&format!("{}\n", text.unwrap_or_default()));
}

fn open(t: &ClusterArgs) -> Result<(Target, n3x_model::Resolved), Error> {
    target(&t.inventory, t.lab.lab, t.lab.cluster.as_ref(), Purpose::Operate)
}

/// The backup directory: the flag, the lab's, or the cluster's default.
fn backup_dir(flag: Option<&PathBuf>, t: &Target) -> Result<PathBuf, Error> {
    if let Some(d) = flag {
        return Ok(d.clone());
    }
    if let Some(lab) = &t.lab {
        return Ok(lab.backup_dir());
    }
    backup::default_dir(&env, &t.spec.name).ok_or_else(|| Error::Usage {
        message: "cannot tell where backups go: neither $XDG_STATE_HOME nor $HOME is set".into(),
        help: "pass `--dir DIR`".into(),
    })
}

// ---- status ----

pub fn status(a: &StatusArgs) -> Result<u8, Error> {
    let (t, _) = open(&a.target)?;
    let journal_path = match (&a.journal, &t.lab) {
        (Some(j), _) => Some(j.clone()),
        (None, Some(lab)) => Some(lab.journal()),
        (None, None) => n3x_deploy::journal::default_path(&env, &t.spec.name),
    };
    let dir = backup_dir(a.backups.as_ref(), &t)?;
    let ask = Ask { remote: t.remote.as_ref(), timeout: Duration::from_secs(a.target.timeout) };
    let stop = crate::deploy::cancel_on_signal();
    loop {
        // Read each round: a deploy or a backup may have happened in between.
        let journal = match &journal_path {
            Some(p) => n3x_deploy::journal::load(p).map_err(Error::Deploy)?,
            None => None,
        };
        let newest = bundle::list(&dir)?
            .into_iter()
            .find_map(|e| e.manifest.map(|m| (m.file.clone(), m.created_unix, m.revision)));
        let ctx =
            Context { lab: t.lab.is_some(), journal: journal.as_ref(), newest_backup: newest, now_unix: now_unix() };
        let report = status::collect(ask, &t.spec, &ctx);
        let code = match report.verdict {
            Verdict::Healthy => exit::OK,
            Verdict::Degraded => exit::DEGRADED,
            Verdict::Unreachable => exit::UNREACHABLE,
        };
        let Some(every) = a.watch else {
            if a.json {
                json_line(&report, true);
            } else {
                print_stdout(&status_text(&report));
            }
            return Ok(code);
        };
        if a.json {
            json_line(&report, false);
        } else {
            let clear = if std::io::stdout().is_terminal() { "\x1b[2J\x1b[H" } else { "\n" };
            print_stdout(&format!("{clear}{}", status_text(&report)));
        }
        let until = std::time::Instant::now() + Duration::from_secs(every);
        while std::time::Instant::now() < until {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(code);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn fact<T>(f: &Fact<T>, show: impl Fn(&T) -> String) -> String {
    match f {
        Fact::Known(v) => show(v),
        Fact::NotApplicable { .. } => "n/a".into(),
        Fact::Unknown { .. } => "?".into(),
    }
}

/// `/nix/store/abcdefgh...-nixos-system-x` -> `abcdefgh`.
fn short_gen(p: &str) -> String {
    p.strip_prefix("/nix/store/").unwrap_or(p).chars().take(8).collect()
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{} KiB", n.div_ceil(1024)),
    }
}

fn ago(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

pub fn status_text(r: &Report) -> String {
    let verdict = match r.verdict {
        Verdict::Healthy => "healthy",
        Verdict::Degraded => "DEGRADED",
        Verdict::Unreachable => "UNREACHABLE",
    };
    let mut out = format!(
        "cluster `{}`: {verdict}{} ({} ms)\n",
        r.cluster,
        if r.lab { " (lab: NixOS and k3s are the lab's test doubles)" } else { "" },
        r.took_ms
    );
    out.push_str(&format!(
        "  quorum {}   leader {}   learners {}   newest backup {}   certificates {}   secrets encryption {}\n",
        fact(&r.quorum, |q| format!("{}/{} (needs {})", q.healthy, q.members, q.needed)),
        r.leader.as_deref().unwrap_or("none"),
        if r.learners.is_empty() { "none".into() } else { r.learners.join(",") },
        fact(&r.newest_snapshot, |s| format!("{} (revision {})", ago(s.age_s), s.revision)),
        fact(&r.certificates, |c| format!("{} days", c.days)),
        fact(&r.secrets_encryption, |on| if *on { "on".into() } else { "OFF".into() }),
    ));
    let rows: Vec<[String; 7]> = r
        .hosts
        .iter()
        .map(|h| {
            let g = &h.generation;
            let mut gen_ = fact(&g.current, |p| short_gen(p));
            if g.drift.known() == Some(&true) {
                gen_.push_str(&format!(" (expected {})", fact(&g.expected, |p| short_gen(p))));
            }
            if g.reboot_pending.known() == Some(&true) {
                gen_.push_str(&format!(" (boots {})", fact(&g.booted, |p| short_gen(p))));
            }
            let etcd = fact(&h.etcd, |m| {
                let mut s = if m.leader { "leader".to_string() } else { "follower".to_string() };
                if m.learner {
                    s = "learner".into();
                }
                s.push_str(&format!(", {} behind, {}", fact(&m.behind, u64::to_string), bytes(m.db_size)));
                for a in &m.alarms {
                    s.push_str(&format!(", ALARM {a}"));
                }
                s
            });
            [
                h.name.clone(),
                h.role.to_string(),
                if h.reachable { "ok".into() } else { "DOWN".into() },
                gen_,
                fact(&h.k3s_active, |a| if *a { "active".into() } else { "INACTIVE".into() }),
                fact(&h.node_ready, |a| if *a { "Ready".into() } else { "NotReady".into() }),
                format!(
                    "{}   {}",
                    etcd,
                    h.last_deploy.as_ref().map_or("-".into(), |d| format!("last deploy {}: {}", d.id, d.state))
                ),
            ]
        })
        .collect();
    let head = ["HOST", "ROLE", "SSH", "GENERATION", "K3S", "NODE", "ETCD / LAST DEPLOY"].map(String::from);
    let widths: Vec<usize> =
        (0..7).map(|i| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    for row in std::iter::once(&head).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        out.push_str(&format!("  {}\n", cells.join("  ").trim_end()));
    }
    if !r.problems.is_empty() {
        out.push_str("problems:\n");
        for p in &r.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    let unknown: Vec<String> = r
        .hosts
        .iter()
        .filter_map(|h| match &h.etcd {
            Fact::Unknown { unknown } if h.reachable => Some(format!("  {}: etcd: {unknown}", h.name)),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        out.push_str("unknown (`?`):\n");
        out.push_str(&(unknown.join("\n") + "\n"));
    }
    out
}

// ---- backup ----

pub fn backup(cmd: BackupCommand) -> Result<u8, Error> {
    match cmd {
        BackupCommand::Snapshot(a) => snapshot(&a),
        BackupCommand::List(a) => list(&a),
        BackupCommand::Verify(a) => verify(&a),
        BackupCommand::Restore(a) => restore(&a),
    }
}

pub fn certs(cmd: CertsCommand) -> Result<u8, Error> {
    match cmd {
        CertsCommand::Rotate(a) => rotate(&a),
    }
}

fn rotate(a: &CertsRotateArgs) -> Result<u8, Error> {
    let (t, _) = open(&a.target)?;
    let opts = RotateOptions {
        plan_only: a.plan,
        force: a.force,
        timeout: Duration::from_secs(a.target.timeout),
        start_timeout: Duration::from_secs(a.start_timeout),
        now_unix: now_unix(),
    };
    let ask = Ask { remote: t.remote.as_ref(), timeout: opts.timeout };
    let r = certs::rotate(ask, &t.spec, &opts, &mut progress)?;
    if a.json {
        json_line(&r, true);
        return Ok(exit::OK);
    }
    let mut out = format!("{} of `{}`:\n", if r.ran { "certificates rotated" } else { "the rotation" }, t.spec.name);
    for (i, s) in r.steps.iter().enumerate() {
        let took = s.took_ms.map(|ms| format!("  ({ms} ms)")).unwrap_or_default();
        out.push_str(&format!("  {:>2}. {:<8} {}: {}{took}\n", i + 1, s.host, s.what, s.command));
    }
    if r.ran {
        let days = |c: &Option<status::CertExpiry>| c.as_ref().map_or("?".into(), |c| format!("{} days", c.days));
        out.push_str(&format!(
            "first certificate to expire: {} before, {} after; {} ms in all\n",
            days(&r.before),
            days(&r.after),
            r.took_ms
        ));
    } else {
        out.push_str("nothing was run (--plan)\n");
    }
    print_stdout(&out);
    Ok(exit::OK)
}

fn progress(line: &str) {
    eprintln!("  {line}");
}

fn snapshot(a: &SnapshotArgs) -> Result<u8, Error> {
    let (t, resolved) = open(&a.target)?;
    let mut recipients = resolved.secrets.admins.clone();
    recipients.extend(a.recipient.iter().cloned());
    if let Some(lab) = &t.lab {
        recipients.push(lab.backup_key()?.1);
    }
    recipients.dedup();
    let opts = SnapshotOptions {
        dir: backup_dir(a.dir.as_ref(), &t)?,
        recipients,
        from: a.from.clone(),
        timeout: Duration::from_secs(a.target.timeout),
        now_unix: now_unix(),
    };
    let ask = Ask { remote: t.remote.as_ref(), timeout: opts.timeout };
    let taken = backup::snapshot(ask, &t.spec, &opts, &mut progress)?;
    if a.json {
        json_line(&taken, true);
    } else {
        let m = &taken.manifest;
        print_stdout(&format!(
            "{}\n  cluster {}, from {} (member {}), revision {}..={}, {} encrypted to {} recipient(s), {} ms\n",
            taken.path.display(),
            m.cluster,
            m.member,
            m.member_id,
            m.revision,
            m.revision_upper,
            bytes(m.size),
            m.recipients.len(),
            taken.took_ms
        ));
    }
    Ok(exit::OK)
}

fn list(a: &ListArgs) -> Result<u8, Error> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            let cluster = ClusterArgs { inventory: a.inventory.clone(), lab: a.lab.clone(), timeout: 10 };
            let (t, _) = open(&cluster)?;
            backup_dir(None, &t)?
        }
    };
    let entries = bundle::list(&dir)?;
    if a.json {
        json_line(&serde_json::json!({ "dir": dir, "backups": entries }), true);
        return Ok(exit::OK);
    }
    if entries.is_empty() {
        print_stdout(&format!("no backups in {} (`n3x backup snapshot` takes one)\n", dir.display()));
        return Ok(exit::OK);
    }
    let now = now_unix();
    let mut out = format!("{}:\n", dir.display());
    for e in &entries {
        let name = e.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match (&e.manifest, &e.problem) {
            (Some(m), None) => out.push_str(&format!(
                "  {name}  {}  from {}  revision {}  {}  k3s {}\n",
                ago(now.saturating_sub(m.created_unix)),
                m.member,
                m.revision,
                bytes(m.size),
                m.k3s_version
            )),
            (_, Some(p)) => out.push_str(&format!("  {name}  NOT USABLE: {p}\n")),
            (None, None) => {}
        }
    }
    print_stdout(&out);
    Ok(exit::OK)
}

/// The identity that decrypts: the flag, the lab's, or sops' admin key file.
fn identities(flag: Option<&PathBuf>, lab: &LabArg) -> Result<Identities, Error> {
    let path = match (flag, lab.lab) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let args = TargetArgs { inventory: Default::default(), cluster: lab.cluster.clone(), json: false };
            let (_, dir) = crate::lab::running(&args)?;
            n3x_lab::hostroot::backup_key(&dir)?.0
        }
        (None, false) => n3x_secrets::locations::admin_key_file(&env).ok_or_else(|| Error::Usage {
            message: "cannot find your age identity: neither $SOPS_AGE_KEY_FILE nor $HOME is set".into(),
            help: "pass `--identity FILE`".into(),
        })?,
    };
    if !path.exists() {
        return Err(Error::Usage {
            message: format!("no age identity at {}", path.display()),
            help: "pass `--identity FILE` (one of the keys the backup was encrypted to), or set SOPS_AGE_KEY_FILE"
                .into(),
        });
    }
    Ok(n3x_secrets::repo::read_identities(&path)?)
}

fn verify(a: &VerifyArgs) -> Result<u8, Error> {
    let ids = identities(a.identity.as_ref(), &a.lab)?;
    let tools = Tools::find()?;
    let v = backup::verify(&a.backup, &ids, &tools, &mut progress)?;
    if a.json {
        json_line(&v, true);
    } else {
        let rb = &v.readback;
        print_stdout(&format!(
            "{}: good\n  cluster {}, from {}, restored to revision {} (manifest {}..={}): {} keys ({}) read back\n  restore {} ms, etcd up {} ms, read {} ms; {} ms in all\n",
            v.path.display(),
            v.manifest.cluster,
            v.manifest.member,
            rb.revision,
            v.manifest.revision,
            v.manifest.revision_upper,
            rb.keys,
            bytes(rb.bytes),
            rb.restore_ms,
            rb.start_ms,
            rb.read_ms,
            v.took_ms
        ));
    }
    Ok(exit::OK)
}

fn restore(a: &RestoreArgs) -> Result<u8, Error> {
    let (t, _) = open(&a.target)?;
    let ids = identities(a.identity.as_ref(), &a.target.lab)?;
    let opts = RestoreOptions {
        force: a.force,
        plan_only: a.plan,
        timeout: Duration::from_secs(a.target.timeout),
        start_timeout: Duration::from_secs(a.start_timeout),
    };
    let ask = Ask { remote: t.remote.as_ref(), timeout: opts.timeout };
    let r = backup::restore(ask, &t.spec, &a.backup, &ids, &opts, &mut progress)?;
    if a.json {
        json_line(&r, true);
        return Ok(exit::OK);
    }
    let mut out = format!(
        "{} {} (cluster {}, revision {}, taken {}):\n",
        if r.ran { "restored from" } else { "the restore of" },
        r.path.display(),
        r.manifest.cluster,
        r.manifest.revision,
        r.manifest.created
    );
    for (i, s) in r.steps.iter().enumerate() {
        let took = s.took_ms.map(|ms| format!("  ({ms} ms)")).unwrap_or_default();
        out.push_str(&format!("  {:>2}. {:<8} {}: {}{took}\n", i + 1, s.host, s.what, s.command));
    }
    if r.ran {
        out.push_str(&format!(
            "{} member(s) answer; the store is at revision {}; {} ms in all\n",
            r.members,
            r.revision.map_or("?".into(), |v| v.to_string()),
            r.took_ms
        ));
    } else {
        out.push_str("nothing was run (--plan)\n");
    }
    print_stdout(&out);
    Ok(exit::OK)
}
