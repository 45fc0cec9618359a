//! Command-line arguments, stage one: what the user typed, parsed by clap. Every clap type
//! of n3x is here, and nothing else is; `config.rs` validates them into plain structs.
//! Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// n3x defines, tests and ships a k3s edge cluster of NixOS machines from one file, n3x.toml.
///
/// Without -f, n3x reads ./n3x.toml, or the embedded reference cluster (three N100
/// servers, two Jetson agents) when there is none.
///
/// Exit status: 0 success; 1 the inventory has errors (or `secrets check` found
/// problems); 2 bad usage or an unreadable file; 3 this machine lacks what the lab needs
/// (nothing was created); 4 a lab scenario failed; 5 the lab is not in the state the
/// command needs, or failed; 6 a deploy was refused before any host changed (preflight, the
/// lock, an unfinished deploy); 7 a host failed its gates, went back to its previous
/// generation, and the rollout halted; 8 a deploy or install stopped half-way (interrupted,
/// a host lost): `--resume` continues; 9 `status`: degraded; 10 `status`/`backup`: no
/// server answers; 11 `backup`: the snapshot file is truncated, changed, corrupt or not
/// encrypted to you; 130/143 interrupted by SIGINT/SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "n3x", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check n3x.toml and report every problem with its place and fix.
    ///
    /// Reports all errors and warnings in one run, each with a code, file:line:col and a
    /// help line. Exit status: 0 no errors (warnings allowed unless --deny-warnings),
    /// 1 errors, 2 bad usage or an unreadable file.
    #[command(
        after_help = "Examples:\n  n3x check\n  n3x check -f site-b.toml --deny-warnings\n  n3x check --format json | jq '.diagnostics[].code'"
    )]
    Check(CheckArgs),
    /// Print the resolved cluster: every host with defaults filled in and derived facts.
    ///
    /// Per host: role, init, hardware, arch, addresses, interfaces with VLAN devices, the
    /// k3s server URL it joins, its etcd peer URL (servers), labels and taints.
    #[command(after_help = "Examples:\n  n3x show\n  n3x show --json | jq '.hosts[] | {name, arch, node_ip}'")]
    Show(ShowArgs),
    /// Emulate the cluster on this machine: namespaces, real etcd, scenarios (needs root).
    #[command(subcommand)]
    Lab(LabCommand),
    /// Age identities, .sops.yaml and k3s tokens in SOPS files (sops-nix reads them).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Roll a changed n3x.toml (or flake) out to the running cluster, never dropping etcd quorum.
    ///
    /// Preflight (every etcd member healthy, no alarm, no learner, every node Ready, no
    /// other deploy: a lock on the init server), then build every host's system and copy it
    /// to its host, then activate one server at a time (followers first; the leader last,
    /// after etcd leadership moved to an updated follower), then the agents N at a time.
    /// Before each switch a transient systemd timer on the host (the guard) is started: it
    /// puts the host back on its previous generation by itself unless the deploy confirms in
    /// time. After the switch, gates over a new SSH connection: sshd answers, k3s is active,
    /// the node is Ready, and on servers the etcd member is healthy and caught up with quorum
    /// intact. All pass: confirm. Any fails: back to the previous generation, and stop.
    /// Every step goes to a journal (`--resume` continues after a crash).
    ///
    /// SSH goes through the system `ssh`, so ~/.ssh/config, agents and jump hosts work;
    /// host keys are always checked. Exit status: 0 done; 2 bad usage; 6 refused, nothing
    /// changed; 7 a host rolled back and the rollout halted; 8 stopped half-way, resumable.
    #[command(after_help = "Examples:
  n3x deploy --plan
  n3x deploy
  n3x deploy n100-2 jetson-1 --agents-at-once 2
  n3x deploy --resume
  sudo n3x deploy --lab -f changed.toml          # rehearse against the running lab
  sudo n3x deploy --lab --lab-fault n100-2=break-services")]
    Deploy(DeployArgs),
    /// Install NixOS on new machines with nixos-anywhere, in an order etcd can grow in.
    ///
    /// The init server first (waited for until its etcd and API answer), then the other
    /// servers one at a time (a stale etcd member of the same host is removed first), then
    /// the agents. Each host gets its SSH host key from `n3x secrets add-host --generate`
    /// through `--extra-files`, so sops-nix can decrypt its k3s token on first boot; the key
    /// is then pinned in known_hosts. Jetsons skip kexec (`--phases disko,install,reboot`):
    /// flash them with jetpack-nixos and boot its installer first (docs/nixos.md).
    #[command(after_help = "Examples:
  n3x install n100-1 n100-2 n100-3 jetson-1 jetson-2 --dry-run
  n3x install n100-1
  sudo n3x install --lab n100-1 n100-2 n100-3     # rehearse in a lab started with --empty")]
    Install(InstallArgs),
    /// Is the cluster healthy, and does every host run what n3x.toml says?
    ///
    /// Per host, over SSH: reachable; the NixOS generation running, booting, and expected
    /// (what the last deploy put there: drift, reboot pending); k3s active; node Ready; for
    /// servers the etcd member (leader, raft entries behind the leader, db size, alarms);
    /// the last deploy. Per cluster: quorum, leader, learners, the newest backup's age, days
    /// until the first k3s certificate expires, secrets encryption. A fact is shown, or
    /// `n/a` (an agent's etcd member; secrets encryption in the lab, which has no API
    /// server), or `?` with why it is unknown: never guessed.
    ///
    /// Exit status: 0 healthy; 9 degraded (every problem listed); 10 no server answers over
    /// SSH; 2 bad usage.
    #[command(after_help = "Examples:
  n3x status
  n3x status --json | jq '.hosts[] | {name, reachable, etcd}'
  n3x status --watch 5
  sudo n3x status --lab          # the running lab, over its sshd, through the same code")]
    Status(StatusArgs),
    /// etcd snapshots encrypted to the admins, proven by restoring them.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// k3s certificates: renew them before they expire.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Draw the cluster's topology: hosts by role, NICs, bonds, VLANs, networks, addresses.
    ///
    /// `svg` for people (one box per host, a line per network, each address on it), `dot`
    /// for graphviz (`dot -Tpng`), `mermaid` for wikis and GitHub (a ```mermaid block).
    #[command(after_help = "Examples:
  n3x graph -o topology.svg
  n3x graph --format dot | dot -Tpng -o topology.png
  n3x graph --format mermaid >> docs/cluster.md")]
    Graph(GraphArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The directory `n3x lab run --report` wrote.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[arg(long, value_enum, default_value_t = GraphFormat::Svg)]
    pub format: GraphFormat,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Svg,
    Dot,
    Mermaid,
}

/// The running lab instead of the machines.
#[derive(Debug, Clone, Default, Args)]
pub struct LabArg {
    /// The running lab of this inventory instead of the machines (root; `n3x lab up` first).
    #[arg(long)]
    pub lab: bool,
    /// With --lab: which lab, when several are up.
    #[arg(long, value_name = "NAME", requires = "lab")]
    pub cluster: Option<String>,
}

/// Which cluster: the inventory's machines, or with --lab its running lab.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[command(flatten)]
    pub lab: LabArg,
    /// Seconds one remote command may take (connecting included).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: ClusterArgs,
    /// Print JSON on stdout (one object per line with --watch).
    #[arg(long)]
    pub json: bool,
    /// Ask again every SECS seconds (default 2) until Ctrl-C; the exit status is the last
    /// verdict's.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch: Option<u64>,
    /// The deploy journal that says what each host should run (default: the deployer's).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Where backups are kept, for the newest one's age (default: `n3x backup`'s).
    #[arg(long, value_name = "DIR")]
    pub backups: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take an etcd snapshot on a server and keep it here, encrypted to the admins.
    ///
    /// On the leader (or --from): `k3s etcd-snapshot save`, then the file and the server
    /// token (a restore needs it) are fetched over SSH, encrypted with age to every
    /// `[secrets].admins` recipient (and --recipient), and written atomically as
    /// NAME.snap.age with a plaintext manifest NAME.json (cluster, time, member, revision,
    /// k3s version, size, sha256). Nothing is written in plaintext, and no secret is put
    /// in a command line. Exit status: 0 written; 2 bad usage or no recipient; 10 no server
    /// answers.
    #[command(after_help = "Examples:
  n3x backup snapshot
  n3x backup snapshot --dir /srv/backups/site-a --recipient age1...
  sudo n3x backup snapshot --lab")]
    Snapshot(SnapshotArgs),
    /// List the backups in the backup directory, newest first.
    #[command(after_help = "Examples:
  n3x backup list
  n3x backup list --dir /srv/backups/site-a --json")]
    List(ListArgs),
    /// Prove a backup: check it, decrypt it, restore it into a throwaway etcd, read every key.
    ///
    /// Checks the file's size and sha256 against its manifest, decrypts it (age
    /// authenticates every byte), checks the snapshot's own sha256, restores it with
    /// `etcdctl snapshot restore` into a scratch directory (in memory where /dev/shm is),
    /// starts a real etcd on it on loopback ports and reads every key back. Needs `etcd` and
    /// `etcdctl`, not root. Exit status: 0 good; 11 truncated, changed, corrupt or not
    /// encrypted to your identity; 3 etcd or etcdctl missing.
    #[command(after_help = "Examples:
  n3x backup verify ~/.local/state/n3x/n3x/backups/n3x-20261127T145727Z-n100-1.snap.age
  n3x backup verify FILE --identity ~/.config/sops/age/keys.txt --json")]
    Verify(VerifyArgs),
    /// Restore the cluster from a backup with k3s's cluster-reset procedure.
    ///
    /// Stops k3s on every server; on the init server puts the snapshot and the token (over
    /// SSH standard input, mode 0600) in place and runs `k3s server --cluster-reset
    /// --cluster-reset-restore-path=...`; wipes the other servers' etcd data; starts the
    /// init server, then the others one at a time, each waited for until its member has
    /// joined. Every write after the snapshot is lost by design. Refused for another
    /// cluster's snapshot, and while the cluster has quorum unless --force. Exit status: 0
    /// restored; 6 refused; 11 the backup is bad; 8 stopped part-way (rerun it).
    #[command(after_help = "Examples:
  n3x backup restore FILE --plan
  n3x backup restore FILE
  sudo n3x backup restore FILE --lab --force")]
    Restore(RestoreArgs),
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Rotate every host's k3s certificates, one host at a time.
    ///
    /// k3s's procedure per host: `systemctl stop k3s`, `k3s certificate rotate` (new
    /// certificates from the cluster's CAs, etcd's included), `systemctl start k3s`, then
    /// wait until it is back (a server's etcd member votes and has a leader; an agent's
    /// node is Ready). Followers first, then the leader (its etcd leadership handed to a
    /// rotated server first), then the agents: quorum is kept and writes go on. `n3x
    /// status` shows the days left before and after. Refused while an etcd member is down
    /// (unless --force). Exit status: 0 rotated; 6 refused; 8 stopped part-way (run it
    /// again: every step is safe to repeat); 10 no server answers.
    #[command(after_help = "Examples:
  n3x certs rotate --plan
  n3x certs rotate
  sudo n3x certs rotate --lab        # rehearsed by `n3x lab run --scenario cert-rotation`")]
    Rotate(CertsRotateArgs),
}

#[derive(Debug, Args)]
pub struct CertsRotateArgs {
    #[command(flatten)]
    pub target: ClusterArgs,
    /// Print the steps (host and command); run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Rotate even though not every etcd member answers.
    #[arg(long)]
    pub force: bool,
    /// Seconds a restarted host may take to be back.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub target: ClusterArgs,
    /// Where backups go (default: $XDG_STATE_HOME/n3x/<cluster>/backups; with --lab, inside
    /// the lab).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also encrypt to this age recipient (`age1...` or `ssh-ed25519 ...`); repeatable.
    #[arg(long, value_name = "RECIPIENT")]
    pub recipient: Vec<String>,
    /// The server to snapshot (default: the etcd leader).
    #[arg(long, value_name = "HOST")]
    pub from: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The backup directory (default: the cluster's, as for `snapshot`).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub lab: LabArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup: NAME.snap.age or its manifest NAME.json.
    #[arg(value_name = "FILE")]
    pub backup: PathBuf,
    /// The age identity to decrypt with (default: sops' key file, $SOPS_AGE_KEY_FILE or
    /// ~/.config/sops/age/keys.txt; with --lab, the lab's backup identity).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub lab: LabArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup: NAME.snap.age or its manifest NAME.json.
    #[arg(value_name = "FILE")]
    pub backup: PathBuf,
    #[command(flatten)]
    pub target: ClusterArgs,
    /// Print the steps (host and command); run nothing.
    #[arg(long)]
    pub plan: bool,
    /// Restore even though the cluster has quorum (every write since the snapshot is lost).
    #[arg(long)]
    pub force: bool,
    /// The age identity to decrypt with (default as for `verify`).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Seconds a restarted member may take to join.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub start_timeout: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct InventoryArg {
    /// The inventory to read; `-` reads standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Output format: `human` (labelled source snippets) or `json` (for scripts).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Exit with status 1 when there are warnings, not only errors.
    #[arg(long)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Print JSON (hosts sorted by name) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

// ---- n3x lab ----

const LAB_TARGET_HELP: &str = "Which lab: --cluster NAME, else the cluster of -f FILE, else the one lab that is up.";

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build the lab and return; a supervisor process keeps it running.
    ///
    /// Each host becomes a network namespace (n3x-<cluster>-<host>), each network an L2
    /// segment, each server runs a real etcd member with the inventory's timings, and each
    /// agent runs a probe writing through any server. With SSH (on by default up to 100
    /// hosts) every host also runs Debian's sshd in its own root, reachable from an
    /// `operator` namespace on the cluster network, for `n3x deploy --lab` and `n3x install
    /// --lab`. Returns once etcd has quorum and every agent's first write is acknowledged.
    #[command(
        after_help = "Examples:\n  sudo n3x lab up\n  sudo n3x lab up -f site.toml --fabric userspace --profile constrained"
    )]
    Up(UpArgs),
    /// Show the running lab: hosts, etcd members, the leader.
    #[command(after_help = LAB_TARGET_HELP)]
    Status(TargetArgs),
    /// Run a command inside a lab host's network namespace.
    #[command(after_help = "Example:\n  sudo n3x lab exec n100-1 -- ip -br addr")]
    Exec(ExecArgs),
    /// Print a host's log: etcd's for servers, the probe's recent writes for agents.
    #[command(after_help = "Example:\n  sudo n3x lab logs jetson-1 -n 20")]
    Logs(LogsArgs),
    /// Change the impairment of hosts' links (what each host sends) in the running lab.
    #[command(
        after_help = "Examples:\n  sudo n3x lab impair jetson-1 --profile lossy\n  sudo n3x lab impair n100-2 --delay-ms 20 --loss-pct 1"
    )]
    Impair(ImpairArgs),
    /// Cut hosts off from others (both directions, every network) until `heal`.
    #[command(
        after_help = "Examples:\n  sudo n3x lab partition n100-1                 # from every other host\n  sudo n3x lab partition n100-1 --from n100-2,n100-3"
    )]
    Partition(PartitionArgs),
    /// Remove every partition (impairments stay).
    #[command(after_help = LAB_TARGET_HELP)]
    Heal(TargetArgs),
    /// Remove everything the lab created. Idempotent; works after a crash.
    #[command(
        after_help = "Which lab: --cluster NAME, else the cluster of -f FILE, else the one lab that is up.\n\nExamples:\n  sudo n3x lab down\n  sudo n3x lab down --cluster gen"
    )]
    Down(TargetArgs),
    /// Up, run scenarios, write the report, down. Exit 0 only if every scenario passed.
    ///
    /// Scenarios: formation, server-loss, quorum-loss, partition (the default set) and
    /// profiles; and deploys rehearsed over SSH while the agents write: rolling-deploy (no
    /// acknowledged write lost, quorum held, the longest write gap reported), bad-deploy (a
    /// generation that breaks etcd: that host back, the rollout halted, nobody else
    /// changed), deploy-cut (the deployer's link cut during the gates: the host's guard rolls
    /// it back by itself), all-at-once and rolling-no-transfer (measured baselines); and
    /// disaster-recovery (a backup, every server destroyed, the cluster restored). Writes
    /// report.json, junit.xml and report.html (a timeline per scenario; opens from disk)
    /// into --report. Exit status: 0 every scenario passed; 4 one
    /// failed; 2 the report could not be written; 5 the lab could not be removed completely
    /// (run `n3x lab down`).
    #[command(
        after_help = "Examples:\n  sudo n3x lab run\n  sudo n3x lab run --scenario partition --report out/\n  sudo n3x lab run --scenario rolling-deploy --scenario bad-deploy --scenario deploy-cut"
    )]
    Run(RunArgs),
    /// Draw report.html again from a report directory's report.json.
    #[command(after_help = "Example:\n  n3x lab report n3x-lab-report/ && xdg-open n3x-lab-report/report.html")]
    Report(ReportArgs),
    /// Internal: the lab's supervisor process.
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Internal: a lab host's init (its own root, then sshd).
    #[command(hide = true)]
    HostInit {
        #[arg(long)]
        lab_dir: PathBuf,
        #[arg(long)]
        host: String,
    },
    /// Internal: the lab's test doubles of the NixOS side (nix-env, switch-to-configuration,
    /// systemd-run, systemctl, k3s, curl, nixos-anywhere).
    #[command(hide = true)]
    Double {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FabricArg {
    /// kernel when it can do every impairment asked for, else userspace
    Auto,
    /// bridges + veth; netem (if present), tbf, nftables
    Kernel,
    /// TAP devices + the n3x switch: seeded delay, jitter, loss, rate
    Userspace,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    #[arg(long, value_enum, default_value_t = FabricArg::Auto)]
    pub fabric: FabricArg,
    /// Apply this profile to every host's links, instead of the inventory's.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long, value_name = "PATH")]
    pub etcd: Option<PathBuf>,
    /// Milliseconds between two writes of one agent's probe (at least 10). Default: 100,
    /// or one per agent above 100 agents, so a big lab writes about 1000 times a second.
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(n3x_lab::preflight::MIN_PROBE_INTERVAL_MS..))]
    pub probe_interval_ms: Option<u64>,
    /// Run Debian's sshd on every host (keys made for the lab) and an operator namespace on
    /// the cluster network, so `n3x deploy --lab` and `n3x install --lab` reach the hosts as
    /// from an operator's machine. `auto`: on up to 100 hosts when sshd is installed.
    #[arg(long, value_enum, default_value_t = SshArg::Auto)]
    pub ssh: SshArg,
    /// Start with no host installed (no etcd, no probes), for `n3x install --lab`.
    #[arg(long)]
    pub empty: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SshArg {
    Auto,
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The lab's cluster name.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Print JSON (status).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    pub host: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub host: String,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Lines to print from the end.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

#[derive(Debug, Args)]
pub struct ImpairArgs {
    /// Hosts whose links to impair.
    #[arg(required = true)]
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A built-in or inventory profile.
    #[arg(long, conflicts_with_all = ["delay_ms", "jitter_ms", "loss_pct", "rate_mbit"])]
    pub profile: Option<String>,
    /// Added one-way delay of what these hosts send.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub delay_ms: Option<f64>,
    /// Jitter around the delay (normal distribution's standard deviation).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    pub jitter_ms: Option<f64>,
    /// Share of frames dropped, 0 to 100.
    #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
    pub loss_pct: Option<f64>,
    /// Rate limit, above 0.
    #[arg(long, value_name = "MBIT", allow_negative_numbers = true)]
    pub rate_mbit: Option<f64>,
}

#[derive(Debug, Args)]
pub struct PartitionArgs {
    /// Hosts to cut off, comma-separated.
    #[arg(value_delimiter = ',', required = true)]
    pub hosts: Vec<String>,
    /// Cut them from these hosts only (default: every other host).
    #[arg(long, value_delimiter = ',')]
    pub from: Vec<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// A scenario to run (repeat for several); default: formation, server-loss, quorum-loss, partition.
    #[arg(long = "scenario", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(n3x_lab::scenario::BUILTIN))]
    pub scenarios: Vec<String>,
    /// Directory for report.json, junit.xml and report.html.
    #[arg(long, default_value = "n3x-lab-report", value_name = "DIR")]
    pub report: PathBuf,
    /// Leave the lab up after the scenarios (tear it down later with `n3x lab down`).
    #[arg(long)]
    pub keep: bool,
}

// ---- n3x deploy, n3x install ----

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GoalArg {
    /// Activate now, gated and guarded.
    Switch,
    /// Only make it the boot default (it runs after the next reboot).
    Boot,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Hosts to deploy (default: every host). The order is n3x's, whatever the order here.
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Print the order and each host's classification (update or unchanged); change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Print the plan or the report as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_enum, default_value_t = GoalArg::Switch)]
    pub goal: GoalArg,
    /// Seconds the guard waits for the confirmation before it rolls a host back. The gates
    /// must pass within it (less a margin).
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(10..=3600))]
    pub confirm_timeout: u64,
    /// Seconds one remote command may take (connecting included).
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub command_timeout: u64,
    /// Agents activated together, after the servers.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub agents_at_once: u64,
    /// Continue the unfinished deploy recorded in the journal.
    #[arg(long, conflicts_with_all = ["plan", "unlock"])]
    pub resume: bool,
    /// Drop an unfinished deploy: release the cluster's lock and mark the journal abandoned.
    /// Check the hosts first (`n3x deploy --plan`).
    #[arg(long, conflicts_with = "plan")]
    pub unlock: bool,
    /// The flake with `nixosConfigurations.<host>` (this repository's, usually).
    #[arg(long, default_value = ".", value_name = "FLAKE")]
    pub flake: String,
    /// The journal file (default: $XDG_STATE_HOME/n3x/<cluster>/deploy-journal.json; in a
    /// lab, inside the lab).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Rehearse against the running lab of this inventory (root; `n3x lab up` first).
    #[arg(long)]
    pub lab: bool,
    /// With --lab: which lab, when several are up.
    #[arg(long, value_name = "NAME", requires = "lab")]
    pub cluster: Option<String>,
    /// With --lab: give HOST a generation that misbehaves: fail-activation, break-services
    /// or hang (repeatable), to see the guard and the rollback at work.
    #[arg(long, value_name = "HOST=FAULT", requires = "lab")]
    pub lab_fault: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Hosts to install (default: every host), in n3x's order.
    pub hosts: Vec<String>,
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Print each host's nixos-anywhere command and extra files; run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print what was (or would be) run as JSON.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = ".", value_name = "FLAKE")]
    pub flake: String,
    /// Where host keys are pinned (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Seconds one host may take to install and come up healthy.
    #[arg(long, value_name = "SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(10..))]
    pub timeout: u64,
    /// Rehearse against the running lab (started with `n3x lab up --empty`).
    #[arg(long)]
    pub lab: bool,
    /// With --lab: which lab, when several are up.
    #[arg(long, value_name = "NAME", requires = "lab")]
    pub cluster: Option<String>,
}

// ---- n3x secrets ----

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create your admin age identity (or reuse yours) and add it to `[secrets].admins`.
    ///
    /// Uses $SOPS_AGE_KEY_FILE, else $XDG_CONFIG_HOME/sops/age/keys.txt, else
    /// ~/.config/sops/age/keys.txt: where sops looks. A new key file is written 0600.
    #[command(after_help = "Examples:\n  n3x secrets init\n  SOPS_AGE_KEY_FILE=~/keys/n3x.txt n3x secrets init")]
    Init(InitArgs),
    /// Record a host's age recipient, derived from its ed25519 SSH host key like ssh-to-age.
    ///
    /// With --generate, creates the host key pair for a machine not yet installed, in
    /// <DIR>/etc/ssh/ssh_host_ed25519_key (0600) and .pub, for nixos-anywhere
    /// `--extra-files <DIR>`. DIR defaults to $XDG_DATA_HOME/n3x/<cluster>/extra-files/<host>
    /// (~/.local/share/...), outside the repository, so the private key can never be
    /// committed or copied into the Nix store with the flake.
    #[command(
        after_help = "Examples:\n  n3x secrets add-host n100-1 \"$(ssh-keyscan -t ed25519 192.168.200.11 2>/dev/null | cut -d' ' -f2-)\"\n  n3x secrets add-host n100-2 ./n100-2.pub\n  n3x secrets add-host jetson-1 --generate\n  nixos-anywhere --extra-files ~/.local/share/n3x/n3x/extra-files/jetson-1 ..."
    )]
    AddHost(AddHostArgs),
    /// Write the k3s token files, encrypted to exactly the hosts that need them.
    ///
    /// [secrets].file (k3s-token, k3s-agent-token) is readable by admins and servers; the
    /// agent file (k3s-agent-token, same path with -agent before the extension) by admins,
    /// servers and agents. Keeps existing tokens (decrypting them with your admin key) and
    /// re-encrypts when recipients changed; also writes .sops.yaml.
    Tokens(TokensArgs),
    /// Replace both k3s tokens with new random ones and re-encrypt both files.
    Rotate(TokensArgs),
    /// Verify recipients, that no plaintext secret is in the repository, and key permissions.
    ///
    /// Prints one line per problem and exits 1 if there is any. With an admin key available
    /// it also decrypts both files (verifying their MACs) and searches the repository for the
    /// token values.
    Check(TokensArgs),
    /// Print one decrypted value, for debugging. Reads files written by sops too.
    #[command(
        after_help = "Examples:\n  n3x secrets decrypt --key ~/.config/sops/age/keys.txt k3s-token\n  n3x secrets decrypt --key /etc/ssh/ssh_host_ed25519_key --sops secrets/k3s-agent.yaml k3s-agent-token"
    )]
    Decrypt(DecryptArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Where the admin identity lives (instead of the sops locations).
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AddHostArgs {
    /// The host, as named in n3x.toml.
    pub host: String,
    /// The host's SSH public key (`ssh-ed25519 AAAA...`) or a file holding it.
    #[arg(required_unless_present = "generate", conflicts_with = "generate")]
    pub public_key: Option<String>,
    /// Generate the host's ed25519 key pair (for a machine not installed yet).
    #[arg(long)]
    pub generate: bool,
    /// The extra-files directory for --generate.
    #[arg(long, value_name = "DIR", requires = "generate")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArg,
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Your admin identity (age key file or SSH private key); default: the sops locations.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// An age identity file or an SSH private key (ed25519 keys also match their ssh-to-age
    /// `age1` recipient, as on sops-nix hosts).
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// The SOPS file; default: `[secrets].file` of the inventory.
    #[arg(long, value_name = "FILE")]
    pub sops: Option<PathBuf>,
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// The value's key; nested keys separated by `/` as in sops-nix (`a/b/c`).
    pub key_path: String,
}
