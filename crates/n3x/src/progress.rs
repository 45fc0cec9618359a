//! Progress of long work on stderr: on a terminal, an indicatif spinner with the elapsed
//! time and the current step (redrawn ten times a second, so a long step still shows it is
//! alive); otherwise plain timestamped lines (logs, CI). Plain lines of a long run of
//! similar steps ("creating namespace ...", "wiring ..." for 1000 hosts) are thinned to about
//! one a second, and the last of a run is always printed with how many there were.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    /// The spinner, on a terminal.
    bar: Option<ProgressBar>,
    start: Instant,
    /// The run of similar plain lines in progress: its kind, how many, the last one not
    /// printed yet, and when one was last printed.
    run: Option<Run>,
}

struct Run {
    kind: String,
    count: usize,
    held: Option<(f64, String)>,
    printed_at: f64,
}

/// Steps of one kind differ only in their last word (a host, a namespace).
fn kind(msg: &str) -> String {
    let words: Vec<&str> = msg.split_whitespace().collect();
    words[..words.len().saturating_sub(1)].join(" ")
}

impl Progress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(100));
            b
        });
        Progress { bar, start: Instant::now(), run: None }
    }

    fn flush_run(&mut self) {
        if let Some(Run { count, held: Some((t, msg)), .. }) = self.run.take() {
            eprintln!("[{t:6.2}s] {msg} ({count} in all)");
        }
    }

    pub fn step(&mut self, msg: &str) {
        let t = self.start.elapsed().as_secs_f64();
        if let Some(b) = &self.bar {
            b.set_message(msg.to_owned());
            return;
        }
        let k = kind(msg);
        match &mut self.run {
            Some(run) if run.kind == k => {
                run.count += 1;
                if t - run.printed_at >= 1.0 {
                    eprintln!("[{t:6.2}s] {msg} ({} so far)", run.count);
                    run.printed_at = t;
                    run.held = None;
                } else {
                    run.held = Some((t, msg.to_owned()));
                }
            }
            _ => {
                self.flush_run();
                eprintln!("[{t:6.2}s] {msg}");
                self.run = Some(Run { kind: k, count: 1, held: None, printed_at: t });
            }
        }
    }

    pub fn done(&mut self, msg: &str) {
        match &self.bar {
            // A line that stays above the spinner; the spinner goes on for the next steps.
            Some(b) if !msg.is_empty() => b.println(msg),
            Some(_) => {}
            None => {
                self.flush_run();
                if !msg.is_empty() {
                    eprintln!("{msg}");
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
