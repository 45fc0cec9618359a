//! Command-line arguments, stage two: what the user typed (`cli.rs`) validated into the
//! plain structs the libraries take. Values are judged by the same rules the inventory
//! uses, so `n3x lab impair` accepts exactly what `n3x check` accepts.

use n3x_lab::fabric::FabricChoice;
use n3x_lab::preflight::{SshChoice, UpRequest};
use n3x_lab::session::SessionOptions;
use n3x_model::model::{Profile, profile_value_problem};

use crate::cli::{FabricArg, ImpairArgs, RunArgs, SshArg, UpArgs};
use crate::error::Error;

pub fn up_request(a: &UpArgs) -> UpRequest {
    UpRequest {
        fabric: match a.fabric {
            FabricArg::Auto => FabricChoice::Auto,
            FabricArg::Kernel => FabricChoice::Kernel,
            FabricArg::Userspace => FabricChoice::Userspace,
        },
        profile: a.profile.clone(),
        etcd: a.etcd.clone(),
        probe_interval_ms: a.probe_interval_ms,
        ssh: match a.ssh {
            SshArg::Auto => SshChoice::Auto,
            SshArg::On => SshChoice::On,
            SshArg::Off => SshChoice::Off,
        },
        empty: a.empty,
    }
}

pub fn session(a: &RunArgs) -> SessionOptions {
    SessionOptions { scenarios: a.scenarios.clone(), report_dir: a.report.clone(), keep: a.keep }
}

/// What `lab impair` applies.
#[derive(Clone, Debug, PartialEq)]
pub enum Impairment {
    /// A named profile, resolved against the inventory.
    Named(String),
    /// Values from the flags.
    Custom(Profile),
}

pub fn impairment(a: &ImpairArgs) -> Result<Impairment, Error> {
    if let Some(p) = &a.profile {
        return Ok(Impairment::Named(p.clone()));
    }
    let p = Profile { delay_ms: a.delay_ms, jitter_ms: a.jitter_ms, loss_pct: a.loss_pct, rate_mbit: a.rate_mbit };
    let fields = [
        ("delay_ms", "--delay-ms", p.delay_ms),
        ("jitter_ms", "--jitter-ms", p.jitter_ms),
        ("loss_pct", "--loss-pct", p.loss_pct),
        ("rate_mbit", "--rate-mbit", p.rate_mbit),
    ];
    for (field, flag, value) in fields {
        let Some(v) = value else { continue };
        if let Some(problem) = profile_value_problem(field, v) {
            return Err(Error::Usage {
                message: problem.message(&format!("`{flag}`"), v),
                help: problem.help().into(),
            });
        }
    }
    Ok(Impairment::Custom(p))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command, LabCommand};

    fn impair(args: &[&str]) -> Result<Impairment, Error> {
        let mut argv = vec!["n3x", "lab", "impair", "h1"];
        argv.extend(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Lab(LabCommand::Impair(a)) => impairment(&a),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn impair_refuses_what_the_inventory_refuses() {
        for (args, want) in [
            (vec!["--rate-mbit", "inf"], "`--rate-mbit` must be a finite number of at least 0"),
            (vec!["--delay-ms", "NaN"], "`--delay-ms` must be a finite number of at least 0"),
            (vec!["--loss-pct", "101"], "`--loss-pct` is 101, more than 100"),
            (vec!["--rate-mbit", "0"], "`--rate-mbit` is 0: nothing would pass"),
            (vec!["--jitter-ms", "-1"], "`--jitter-ms` must be a finite number of at least 0"),
        ] {
            match impair(&args) {
                Err(Error::Usage { message, .. }) => assert_eq!(message, want, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        let ok = impair(&["--delay-ms", "20", "--loss-pct", "1"]).unwrap();
        assert_eq!(ok, Impairment::Custom(Profile { delay_ms: Some(20.0), loss_pct: Some(1.0), ..Profile::default() }));
        assert_eq!(impair(&["--profile", "edge"]).unwrap(), Impairment::Named("edge".into()));
    }

    #[test]
    fn probe_interval_below_the_minimum_is_a_usage_error() {
        let e = Cli::try_parse_from(["n3x", "lab", "up", "--probe-interval-ms", "5"]).unwrap_err();
        assert!(e.to_string().contains("5 is not in 10.."), "{e}");
    }
}
