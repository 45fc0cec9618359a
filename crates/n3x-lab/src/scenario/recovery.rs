//! `disaster-recovery`: the agents write; a backup is taken with `n3x backup snapshot`'s
//! code over SSH; they write more; every server is killed and its data wiped; the cluster
//! is restored with `n3x backup restore`'s code (k3s's cluster-reset procedure, answered by
//! the lab's doubles). Passes when every write acknowledged up to the snapshot's revision is
//! read back with its value, every write acknowledged after the snapshot's last possible
//! revision is gone (the restore really went back to the snapshot), and the agents write
//! again. Reports the recovery point (what was acknowledged after the snapshot and lost by
//! design) and the recovery time.

use std::collections::BTreeSet;
use std::time::Duration;

use n3x_deploy::observe::Ask;
use n3x_operate::OperateError;
use n3x_operate::backup::{self, RestoreOptions, SnapshotOptions};

use super::kit::{
    Ctx, Request, Run, agents, at, first_acks_after, now_ms, server_names, unix_now, verify_result, wait_for, writes,
};
use crate::error::LabError;
use crate::rehearse::Rehearsal;

pub const NAME: &str = "disaster-recovery";

/// Waits until every agent has had `n` more writes acknowledged after lab time `t`.
fn writes_after(ctx: &Ctx, t: f64, n: usize) -> Result<bool, LabError> {
    let agents = agents(ctx);
    Ok(wait_for(Duration::from_secs(20), || {
        let ws = writes(ctx)?;
        Ok(agents
            .iter()
            .all(|a| ws.iter().filter(|w| w.agent == *a && w.sent_ms >= t && w.acked_ms.is_some()).count() >= n)
            .then_some(()))
    })?
    .is_some())
}

fn failed(run: &mut Run, what: &str, e: &OperateError) {
    run.failures.push(format!("{what}: {e} ({})", e.help()));
}

pub(super) fn run(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let lab = Rehearsal::open(ctx.dir, None)?;
    let (key, recipient) = lab.backup_key()?;
    let ids = n3x_secrets::repo::read_identities(&key)
        .map_err(|e| LabError::io(format!("read {}", key.display()), std::io::Error::other(e.to_string())))?;
    let ask = Ask { remote: &lab.ssh, timeout: Duration::from_secs(10) };
    let start = now_ms(ctx)?;
    run.require(writes_after(ctx, start, 5)?, || "the agents did not write before the snapshot".into());

    (ctx.on_step)("taking a backup over SSH (k3s etcd-snapshot save on the leader)");
    let snap_from = now_ms(ctx)?;
    let opts = SnapshotOptions {
        dir: lab.backup_dir(),
        recipients: vec![recipient],
        from: None,
        timeout: Duration::from_secs(10),
        now_unix: unix_now(),
    };
    let taken = match backup::snapshot(ask, &lab.spec, &opts, &mut |_| {}) {
        Ok(t) => t,
        Err(e) => {
            failed(run, "the snapshot failed", &e);
            return Ok(());
        }
    };
    let snap_to = now_ms(ctx)?;
    run.window("snapshot", "backup snapshot", snap_from, snap_to);
    run.metric("snapshot_ms", snap_to - snap_from);
    run.metric("snapshot_revision", taken.manifest.revision);
    run.metric("snapshot_bytes", taken.manifest.snapshot_size);

    (ctx.on_step)("the agents write on after the snapshot");
    run.require(writes_after(ctx, snap_to, 10)?, || "the agents did not write after the snapshot".into());

    (ctx.on_step)("disaster: every server killed, its etcd data wiped");
    let servers = server_names(ctx);
    let disaster = now_ms(ctx)?;
    for s in &servers {
        at(ctx, Request::Destroy { host: s.clone() })?;
    }
    // Whatever was in flight settles (fails) before the restore starts.
    std::thread::sleep(Duration::from_millis(500));

    (ctx.on_step)("restoring over SSH (k3s cluster-reset on the init server, the others rejoin)");
    let restore_from = now_ms(ctx)?;
    let ropts = RestoreOptions {
        force: false,
        plan_only: false,
        timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(60),
    };
    let restored = backup::restore(ask, &lab.spec, &taken.path, &ids, &ropts, &mut |_| {});
    let restore_to = now_ms(ctx)?;
    run.window("disaster", "every server destroyed", disaster, restore_from);
    run.window("restore", "backup restore", restore_from, restore_to);
    let restored = match restored {
        Ok(r) => r,
        Err(e) => {
            failed(run, "the restore failed", &e);
            return Ok(());
        }
    };
    run.metric("restore_ms", restore_to - restore_from);
    run.metric("members_after", restored.members);
    run.require(restored.members == servers.len(), || {
        format!("{} of {} members answer after the restore", restored.members, servers.len())
    });

    // Recovery time: from the start of the restore until every agent's writes are
    // acknowledged again.
    let agents = agents(ctx);
    let back = wait_for(Duration::from_secs(30), || {
        let acks = first_acks_after(&writes(ctx)?, &agents, restore_to);
        Ok(acks.iter().all(|(_, t)| t.is_some()).then(|| acks.iter().filter_map(|(_, t)| *t).fold(0.0, f64::max)))
    })?;
    match back {
        Some(t) => run.metric("recovery_ms", t - restore_from),
        None => run.failures.push("the agents did not write again within 30 s of the restore".into()),
    }

    // Judge every write acknowledged before the disaster by its revision.
    let ws = writes(ctx)?;
    let v = verify_result(ctx)?;
    let lost: BTreeSet<&String> = v.lost.iter().collect();
    let mismatched: BTreeSet<&String> = v.mismatched.iter().collect();
    let before: Vec<_> = ws.iter().filter(|w| w.acked_ms.is_some_and(|t| t < disaster)).collect();
    let kept: Vec<_> = before.iter().filter(|w| w.revision <= taken.manifest.revision).collect();
    let after: Vec<_> = before.iter().filter(|w| w.revision > taken.manifest.revision_upper).collect();
    let kept_lost = kept.iter().filter(|w| lost.contains(&w.key()) || mismatched.contains(&w.key())).count();
    let after_kept = after.iter().filter(|w| !lost.contains(&w.key())).count();
    run.metric("acked_before_snapshot", kept.len());
    run.metric("acked_after_snapshot", after.len());
    run.metric("lost_by_design", after.len() - after_kept);
    let point = after.iter().filter_map(|w| w.acked_ms).fold(snap_to, f64::max) - snap_to;
    run.metric("recovery_point_ms", point);
    run.require(kept_lost == 0, || {
        format!("{kept_lost} of {} writes acknowledged up to the snapshot's revision were not read back", kept.len())
    });
    run.require(after_kept == 0, || {
        format!("{after_kept} writes acknowledged after the snapshot survived: the restore did not go back to it")
    });
    // Writes acknowledged after the restore are all there too.
    let late_lost = ws
        .iter()
        .filter(|w| {
            w.acked_ms.is_some_and(|t| t > restore_from) && (lost.contains(&w.key()) || mismatched.contains(&w.key()))
        })
        .count();
    run.require(late_lost == 0, || format!("{late_lost} writes acknowledged after the restore were lost"));
    // What was lost by design stays lost: scenarios after this one read back only what the
    // restored cluster acknowledged.
    at(ctx, Request::Settle { before_ms: restore_from })?;
    Ok(())
}
