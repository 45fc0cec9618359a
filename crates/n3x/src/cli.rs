//! Command-line arguments, stage one: what the user typed, parsed by clap. Doc comments
//! here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// n3x defines, tests and ships a k3s edge cluster of NixOS machines from one file, n3x.toml.
///
/// Without -f, n3x reads ./n3x.toml, or the embedded reference cluster (three N100
/// servers, two Jetson agents) when there is none.
///
/// Exit status: 0 success, 1 the inventory has errors, 2 bad usage or an unreadable file.
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
    Lab(crate::lab::LabCommand),
    /// Age identities, .sops.yaml and k3s tokens in SOPS files (sops-nix reads them).
    #[command(subcommand)]
    Secrets(crate::secrets::SecretsCommand),
}

#[derive(Debug, Args)]
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
