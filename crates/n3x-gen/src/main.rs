//! `n3x-gen --hosts N [--servers S] [--name NAME]`: print a valid generated inventory.

use std::process::ExitCode;

const USAGE: &str = "usage: n3x-gen --hosts N [--servers S] [--name CLUSTER]\n\
  Prints a valid n3x.toml with N hosts (S servers, default 3) to standard output.";

fn main() -> ExitCode {
    let mut hosts = None;
    let mut servers = 3;
    let mut name = String::from("gen");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        let r: Result<(), String> =
            match a.as_str() {
                "--hosts" => value("--hosts")
                    .and_then(|v| v.parse().map(|n| hosts = Some(n)).map_err(|e| format!("--hosts: {e}"))),
                "--servers" => value("--servers")
                    .and_then(|v| v.parse().map(|n| servers = n).map_err(|e| format!("--servers: {e}"))),
                "--name" => value("--name").map(|v| name = v),
                "-h" | "--help" => {
                    println!("{USAGE}");
                    return ExitCode::SUCCESS;
                }
                other => Err(format!("unknown argument `{other}`")),
            };
        if let Err(e) = r {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(hosts) = hosts.filter(|h| *h > 0 && *h <= 60_000) else {
        eprintln!("error: --hosts N (1 to 60000) is required\n{USAGE}");
        return ExitCode::from(2);
    };
    print!("{}", n3x_gen::inventory(&name, hosts, servers));
    ExitCode::SUCCESS
}
