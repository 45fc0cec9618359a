//! Which lab a command is about. Several labs can be up at once (one per cluster name),
//! and a user who started one from `-f gen.toml` expects `n3x lab down` to find it.
//!
//! In order: `--cluster NAME`; else the cluster of the inventory given with `-f`; else,
//! when exactly one lab is up, that one; when several are up, an error listing them; when
//! none is, the default inventory's cluster (so `down` still finds what a crash left).

use crate::error::LabError;
use crate::plan::LabPlan;

/// The lab a command acts on, and its plan when the inventory describes it.
#[derive(Clone, Debug)]
pub struct Target {
    pub cluster: String,
    pub plan: Option<LabPlan>,
}

/// What the command line said about the inventory.
#[derive(Clone, Debug)]
pub enum Inventory {
    /// `-f FILE`, resolved.
    Given(LabPlan),
    /// No `-f`: `./n3x.toml` or the embedded reference, resolved if it could be.
    Default(Option<LabPlan>),
}

/// Picks the lab. `up` lists the clusters that have a lab record (see `lifecycle::labs`).
pub fn choose(cluster: Option<&str>, inventory: Inventory, up: &[String]) -> Result<Target, LabError> {
    let plan_of = |c: &str, p: Option<LabPlan>| p.filter(|p| p.cluster == c);
    match (cluster, inventory) {
        (Some(c), Inventory::Given(p)) => Ok(Target { cluster: c.to_owned(), plan: plan_of(c, Some(p)) }),
        (Some(c), Inventory::Default(p)) => Ok(Target { cluster: c.to_owned(), plan: plan_of(c, p) }),
        (None, Inventory::Given(p)) => Ok(Target { cluster: p.cluster.clone(), plan: Some(p) }),
        (None, Inventory::Default(p)) => match up {
            [one] => Ok(Target { cluster: one.clone(), plan: plan_of(one, p) }),
            [] => match p {
                Some(p) => Ok(Target { cluster: p.cluster.clone(), plan: Some(p) }),
                None => Err(LabError::NoLab),
            },
            several => Err(LabError::WhichLab { labs: several.to_vec() }),
        },
    }
}

/// The state directory of `cluster`'s running lab (its supervisor's socket answers there),
/// or why there is none, naming the labs that are up.
pub fn running(root: &std::path::Path, cluster: &str) -> Result<std::path::PathBuf, LabError> {
    let dir = root.join(cluster);
    if dir.join(crate::control::SOCKET).exists() {
        return Ok(dir);
    }
    let others = crate::lifecycle::labs(root).into_iter().filter(|c| c != cluster).collect();
    Err(LabError::NotUp { cluster: cluster.to_owned(), others })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plan(cluster: &str) -> LabPlan {
        let text = n3x_gen::inventory(cluster, 3, 1);
        crate::plan::plan(&n3x_model::analyze(&text).resolve().unwrap(), None)
    }

    fn up(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_one_lab_that_is_up_is_meant_whatever_the_default_inventory_says() {
        // `n3x lab up -f gen.toml`, then `n3x lab down` in a directory whose n3x.toml is `n3x`.
        let t = choose(None, Inventory::Default(Some(plan("n3x"))), &up(&["gen"])).unwrap();
        assert_eq!(t.cluster, "gen");
        assert!(t.plan.is_none(), "the default inventory describes another cluster");
        let t = choose(None, Inventory::Default(Some(plan("gen"))), &up(&["gen"])).unwrap();
        assert_eq!(t.plan.unwrap().cluster, "gen");
    }

    #[test]
    fn several_labs_are_listed_with_the_commands_that_work() {
        let e = choose(None, Inventory::Default(Some(plan("n3x"))), &up(&["gen", "n3x"])).unwrap_err();
        assert!(matches!(&e, LabError::WhichLab { labs } if labs == &up(&["gen", "n3x"])));
        assert!(e.help().contains("`n3x lab down --cluster gen` or `n3x lab down --cluster n3x`"));
    }

    #[test]
    fn explicit_choices_win() {
        let t = choose(Some("n3x"), Inventory::Default(None), &up(&["gen", "n3x"])).unwrap();
        assert_eq!(t.cluster, "n3x");
        let t = choose(None, Inventory::Given(plan("gen")), &up(&["gen", "n3x"])).unwrap();
        assert_eq!(t.cluster, "gen");
        let t = choose(Some("other"), Inventory::Given(plan("gen")), &up(&[])).unwrap();
        assert_eq!((t.cluster.as_str(), t.plan.is_none()), ("other", true));
    }

    #[test]
    fn with_no_lab_up_the_default_inventory_names_it() {
        let t = choose(None, Inventory::Default(Some(plan("n3x"))), &[]).unwrap();
        assert_eq!(t.cluster, "n3x");
        assert!(matches!(choose(None, Inventory::Default(None), &[]), Err(LabError::NoLab)));
    }
}
