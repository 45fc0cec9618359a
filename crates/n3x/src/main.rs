//! The `n3x` command-line tool. Parses arguments, loads the inventory, runs the command,
//! and maps every outcome to a documented exit code (see `exit`).

mod cli;
mod exit;
mod lab;
mod render;
mod secrets;
mod show;
mod source;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Format};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => check(&args),
        Command::Show(args) => show(&args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Secrets(cmd) => secrets::run(cmd),
    };
    ExitCode::from(code)
}

/// Prints a one-line error with its fix and returns the exit code.
pub(crate) fn fail(message: &str, help: &str, code: u8) -> u8 {
    eprintln!("error: {message}\n  help: {help}");
    code
}

pub(crate) fn load(file: Option<&std::path::Path>) -> Result<source::Source, u8> {
    source::load(file).map_err(|e| fail(&e.to_string(), &e.help(), exit::USAGE_OR_IO))
}

/// Writes to stdout; a closed pipe (`n3x show | head`) is not an error worth a panic.
pub(crate) fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

fn check(args: &cli::CheckArgs) -> u8 {
    let src = match load(args.inventory.file.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let analysis = n3x_model::analyze(&src.text);
    match args.format {
        Format::Human => eprint!("{}", render::human(&src.name, &src.text, &analysis, render::color_stderr())),
        Format::Json => print_stdout(&format!("{}\n", render::json(&src.name, &src.text, &analysis))),
    }
    let warnings_fail = args.deny_warnings && analysis.warnings().next().is_some();
    if analysis.has_errors() || warnings_fail { exit::INVENTORY } else { exit::OK }
}

fn show(args: &cli::ShowArgs) -> u8 {
    let src = match load(args.inventory.file.as_deref()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let analysis = n3x_model::analyze(&src.text);
    let resolved = match analysis.resolve() {
        Ok(r) => r,
        Err(_) => {
            // Show the problems themselves, not only their count.
            eprint!("{}", render::human(&src.name, &src.text, &analysis, render::color_stderr()));
            return fail(
                &format!("cannot show `{}`: it has errors", src.name),
                "fix the errors above (`n3x check` lists them), then run `n3x show` again",
                exit::INVENTORY,
            );
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&resolved) {
            Ok(j) => print_stdout(&format!("{j}\n")),
            Err(e) => return fail(&format!("cannot encode JSON: {e}"), "report this as a bug", exit::USAGE_OR_IO),
        }
    } else {
        print_stdout(&show::text(&resolved));
    }
    exit::OK
}
