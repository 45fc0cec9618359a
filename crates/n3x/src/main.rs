//! The `n3x` command-line tool: parses the arguments once, calls a library, renders what
//! it returns, and maps every outcome to a documented exit code (`exit.rs`). Errors take
//! one path: each command returns `Result<exit code, Error>` and `main` renders the error.

mod cli;
mod config;
mod deploy;
mod error;
mod exit;
mod inventory;
mod lab;
mod operate;
mod progress;
mod render;
mod secrets;
mod show;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Format};
use error::Error;
use inventory::Purpose;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => check(&args),
        Command::Show(args) => show(&args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Secrets(cmd) => secrets::run(cmd),
        Command::Deploy(args) => deploy::deploy(&args),
        Command::Install(args) => deploy::install(&args),
        Command::Status(args) => operate::status(&args),
        Command::Backup(cmd) => operate::backup(cmd),
        Command::Certs(cmd) => operate::certs(cmd),
        Command::Graph(args) => graph(&args),
    };
    ExitCode::from(match outcome {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", e.render());
            e.exit_code()
        }
    })
}

fn check(args: &cli::CheckArgs) -> Result<u8, Error> {
    let src = inventory::load(args.inventory.file.as_deref())?;
    let analysis = n3x_model::analyze(&src.text);
    match args.format {
        Format::Human => eprint!("{}", render::human(&src.name, &src.text, &analysis, render::color_stderr())),
        Format::Json => render::print_stdout(&format!("{}\n", render::json(&src.name, &src.text, &analysis))),
    }
    let warnings_fail = args.deny_warnings && analysis.warnings().next().is_some();
    Ok(if analysis.has_errors() || warnings_fail { exit::INVENTORY } else { exit::OK })
}

fn graph(args: &cli::GraphArgs) -> Result<u8, Error> {
    let loaded = inventory::resolve(args.inventory.file.as_deref(), Purpose::Show)?;
    let t = n3x_pictures::Topology::from_resolved(&loaded.resolved);
    let text = match args.format {
        cli::GraphFormat::Svg => n3x_pictures::graph::svg(&t),
        cli::GraphFormat::Dot => n3x_pictures::graph::dot(&t),
        cli::GraphFormat::Mermaid => n3x_pictures::graph::mermaid(&t),
    };
    match &args.output {
        Some(path) => n3x_fs::write(path, text.as_bytes(), Some(0o644)).map_err(|e| Error::Usage {
            message: format!("cannot write {}: {e}", path.display()),
            help: "check the path and its permissions".into(),
        })?,
        None => render::print_stdout(&text),
    }
    Ok(exit::OK)
}

fn show(args: &cli::ShowArgs) -> Result<u8, Error> {
    let loaded = inventory::resolve(args.inventory.file.as_deref(), Purpose::Show)?;
    if args.json {
        let json = serde_json::to_string_pretty(&loaded.resolved).map_err(|e| Error::Usage {
            message: format!("cannot encode JSON: {e}"),
            help: "report this as a bug".into(),
        })?;
        render::print_stdout(&format!("{json}\n"));
    } else {
        render::print_stdout(&show::text(&loaded.resolved));
    }
    Ok(exit::OK)
}
