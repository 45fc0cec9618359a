//! `cert-rotation`: the servers' certificates are near expiry; `n3x status` says so; the
//! rotation of `n3x certs rotate` runs over SSH (each host: stop k3s, `k3s certificate
//! rotate`, start k3s; followers first, the leader last after handing over leadership)
//! while the agents write. Passes when status saw the near expiry before and a year ahead
//! after, the cluster is healthy again, every agent had writes acknowledged during the
//! rotation, and no acknowledged write is lost.
//!
//! Near expiry is staged, not waited for: each server's certificate is re-issued by the
//! lab's CA to expire in 20 days (a stand-in for eleven months passing), which etcd picks
//! up on its next connection, as a real certificate's age would be.

use std::time::Duration;

use n3x_deploy::observe::Ask;
use n3x_operate::certs::{self, RotateOptions};
use n3x_operate::status::Verdict;

use super::kit::{Ctx, Run, agents, now_ms, operator_status, unix_now, verify, writes};
use crate::error::LabError;
use crate::rehearse::Rehearsal;

pub const NAME: &str = "cert-rotation";
/// How close to expiry the staged certificates are (status warns under 30 days).
const STAGED_DAYS: i64 = 20;

pub(super) fn run(ctx: &mut Ctx, run: &mut Run) -> Result<(), LabError> {
    let lab = Rehearsal::open(ctx.dir, None)?;
    let ask = Ask { remote: &lab.ssh, timeout: Duration::from_secs(10) };

    (ctx.on_step)("staging certificates that expire in 20 days on every server");
    for &s in &ctx.plan.servers {
        let h = &ctx.plan.hosts[s];
        let dir = crate::generation::host_root(ctx.dir, &h.name).join(crate::tls::ETCD_TLS);
        crate::tls::renew_member(&dir, &h.name, h.cluster_ip, STAGED_DAYS)?;
    }
    let before = operator_status(ask, &lab.spec);
    let days_before = before.certificates.known().map(|c| c.days);
    run.metric("days_before", days_before.unwrap_or(-1));
    run.require(days_before.is_some_and(|d| d <= STAGED_DAYS), || {
        format!("status did not see the staged expiry: {:?}", before.certificates)
    });
    run.require(
        before.verdict == Verdict::Degraded && before.problems.iter().any(|p| p.contains("expires in")),
        || format!("status did not call the near expiry a problem: {:?} {:?}", before.verdict, before.problems),
    );

    (ctx.on_step)("rotating over SSH, one host at a time");
    let from = now_ms(ctx)?;
    let opts = RotateOptions {
        plan_only: false,
        force: false,
        timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(60),
        now_unix: unix_now(),
    };
    let rotated = certs::rotate(ask, &lab.spec, &opts, &mut *ctx.on_step);
    let to = now_ms(ctx)?;
    run.window("rotate", "certs rotate", from, to);
    let rotated = match rotated {
        Ok(r) => r,
        Err(e) => {
            run.failures.push(format!("the rotation failed: {e} ({})", e.help()));
            return Ok(());
        }
    };
    run.metric("rotate_ms", to - from);
    run.metric("hosts", rotated.steps.len() / 3);
    let days_after = rotated.after.as_ref().map(|c| c.days);
    run.metric("days_after", days_after.unwrap_or(-1));
    run.require(days_after.is_some_and(|d| d >= crate::tls::MEMBER_DAYS - 1), || {
        format!("the rotated certificates expire in {days_after:?} days, not about a year")
    });

    let after = operator_status(ask, &lab.spec);
    run.require(after.verdict == Verdict::Healthy, || {
        format!("not healthy after the rotation: {:?} {:?}", after.verdict, after.problems)
    });

    // The agents kept writing through it.
    let ws = writes(ctx)?;
    for a in agents(ctx) {
        let acked =
            ws.iter().filter(|w| w.agent == a && w.sent_ms >= from && w.sent_ms <= to && w.acked_ms.is_some()).count();
        run.require(acked > 0, || format!("`{a}` had no write acknowledged during the rotation"));
    }
    verify(ctx, run)
}
