//! `agent-replace`: an agent's board dies and is replaced. Its host is destroyed (k3s
//! state and generations wiped, its workload stopped); the cluster carries on; the new
//! board is installed with `n3x install`'s code over SSH (the nixos-anywhere double, the
//! host's new key pinned); its workload writes again. Passes when the other agents' writes
//! went on while it was gone, `n3x status` called the lost agent a problem and the
//! replaced one healthy, its node is Ready again, and no acknowledged write is lost.
//!
//! The replaced agent is the last one (on the reference cluster a Jetson).

use std::sync::Arc;
use std::time::Duration;

use n3x_deploy::observe::Ask;
use n3x_operate::status::Verdict;

use super::kit::{Ctx, Request, Run, agents, at, first_acks_after, now_ms, operator_status, verify, wait_for, writes};
use crate::error::LabError;
use crate::rehearse::Rehearsal;

pub const NAME: &str = "agent-replace";

pub(super) fn run(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let all = agents(ctx);
    let Some(gone) = all.last().cloned() else {
        run.failures.push("the inventory has no agent to replace".into());
        return Ok(());
    };
    let others: Vec<String> = all.iter().filter(|a| **a != gone).cloned().collect();
    let lab = Rehearsal::open(ctx.dir, None)?;
    let ask = Ask { remote: &lab.ssh, timeout: Duration::from_secs(10) };

    (ctx.on_step)(&format!("{gone}'s board dies: its host is destroyed"));
    let lost_at = at(ctx, Request::Destroy { host: gone.clone() })?;
    // The cluster carries on without it for a while.
    std::thread::sleep(Duration::from_secs(2));
    let during = operator_status(ask, &lab.spec);
    let named = during.problems.iter().any(|p| p.contains(&gone));
    run.require(during.verdict == Verdict::Degraded && named, || {
        format!("status did not name the lost agent: {:?} {:?}", during.verdict, during.problems)
    });
    let ws = writes(ctx)?;
    for a in &others {
        let acked = ws.iter().filter(|w| w.agent == *a && w.sent_ms >= lost_at && w.acked_ms.is_some()).count();
        run.require(acked > 0, || format!("`{a}` had no write acknowledged while `{gone}` was gone"));
    }
    let silent = ws.iter().filter(|w| w.agent == gone && w.sent_ms >= lost_at + 200.0).count();
    run.require(silent == 0, || format!("`{gone}` wrote {silent} time(s) while its host was destroyed"));

    // The new board has a new SSH host key, made as `n3x secrets add-host --generate`
    // makes it, and carried in by the install's extra files.
    let tree = ctx.dir.join("replace").join(&gone);
    let _ = std::fs::remove_dir_all(&tree);
    let key = tree.join(n3x_deploy::install::HOST_KEY);
    let pair = n3x_secrets::keys::Ed25519KeyPair::generate(&format!("root@{gone}"));
    if let Some(d) = key.parent() {
        n3x_fs::create_dir_all(d, 0o755).map_err(|e| LabError::io(format!("create {}", d.display()), e))?;
    }
    n3x_fs::write(&key, pair.to_openssh().as_bytes(), Some(0o600))
        .map_err(|e| LabError::io(format!("write {}", key.display()), e))?;
    let public = key.with_extension("pub");
    n3x_fs::write(&public, format!("{}\n", pair.public.to_line()).as_bytes(), Some(0o644))
        .map_err(|e| LabError::io(format!("write {}", public.display()), e))?;

    (ctx.on_step)(&format!("installing the new {gone} over SSH (n3x install)"));
    let from = now_ms(ctx)?;
    let opts = lab.install_options(".".into(), Arc::new(move |_: &str| Some(tree.clone())));
    let installed = n3x_deploy::install::install(&lab.spec, std::slice::from_ref(&gone), &lab.ssh, &opts, &mut |_| {});
    let to = now_ms(ctx)?;
    run.window("disaster", format!("{gone} lost"), lost_at, from);
    run.window("install", format!("n3x install {gone}"), from, to);
    if let Err(e) = installed {
        run.failures.push(format!("the install failed: {e} ({})", e.help()));
        return Ok(());
    }
    run.metric("install_ms", to - from);

    // Its workload is back: the first acknowledged write after the install.
    let back = wait_for(Duration::from_secs(20), || {
        Ok(first_acks_after(&writes(ctx)?, std::slice::from_ref(&gone), to).first().and_then(|(_, t)| *t))
    })?;
    match back {
        Some(t) => run.metric("back_after_install_ms", t - to),
        None => run.failures.push(format!("`{gone}` did not write again within 20 s of its install")),
    }
    let after = operator_status(ask, &lab.spec);
    run.require(after.verdict == Verdict::Healthy, || {
        format!("not healthy after the replacement: {:?} {:?}", after.verdict, after.problems)
    });
    let ready = lab
        .spec
        .servers()
        .find_map(|s| ask.nodes(s).ok())
        .is_some_and(|ns| ns.iter().any(|n| n.name == gone && n.ready));
    run.require(ready, || format!("node `{gone}` is not Ready after its install"));
    verify(ctx, run)
}
