//! A recording fake of [`Remote`] for unit tests: answers by rule, records every command.

use std::sync::{Arc, Mutex};

use crate::{Command, Output, Remote, RemoteError, Target};

type Rule = Box<dyn Fn(&Target, &[String]) -> Option<Result<Output, RemoteError>> + Send + Sync>;

/// One command the fake received: (host, argv).
pub type Call = (String, Vec<String>);

#[derive(Clone, Default)]
pub struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
}

pub fn ok(stdout: &str) -> Result<Output, RemoteError> {
    Ok(Output { status: 0, stdout: stdout.into(), stderr: String::new() })
}

pub fn exit(status: i32, stderr: &str) -> Result<Output, RemoteError> {
    Ok(Output { status, stdout: String::new(), stderr: stderr.into() })
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    /// Answers commands that `rule` answers (later rules first); others succeed empty.
    pub fn on(&self, rule: impl Fn(&Target, &[String]) -> Option<Result<Output, RemoteError>> + Send + Sync + 'static) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).insert(0, Box::new(rule));
    }

    /// Every command so far: (host, argv).
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Remote for Fake {
    fn run(&self, target: &Target, cmd: &Command) -> Result<Output, RemoteError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push((target.host.clone(), cmd.argv.clone()));
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.iter().find_map(|r| r(target, &cmd.argv)).unwrap_or_else(|| ok(""))
    }
}
