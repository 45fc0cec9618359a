//! Turning diagnostics into text: labelled source snippets for people (miette), JSON for
//! scripts. Secret spans are masked before either sees the source. Also the one way the
//! commands write to stdout.

use std::fmt;
use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use n3x_model::{Analysis, Diagnostic, LineIndex, Severity};
use serde::Serialize;

/// One diagnostic in miette's terms.
struct Report<'a> {
    d: &'a Diagnostic,
    source: &'a NamedSource<String>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.d.message)
    }
}

impl std::error::Error for Report<'_> {}

fn span(s: &n3x_model::Span) -> SourceSpan {
    SourceSpan::new(s.start.into(), s.end.saturating_sub(s.start))
}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.d.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.d.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.d.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary =
            LabeledSpan::new_primary_with_span(Some(self.d.primary.message.clone()), span(&self.d.primary.span));
        let related = self.d.related.iter().map(|l| LabeledSpan::new_with_span(Some(l.message.clone()), span(&l.span)));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// Writes to stdout; a closed pipe (`n3x show | head`) is not an error worth a panic.
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Whether to draw with colour: only on a terminal, and never with NO_COLOR set.
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Every diagnostic, rendered like a compiler, then a one-line summary.
pub fn human(name: &str, source: &str, analysis: &Analysis, color: bool) -> String {
    let masked = n3x_model::diag::mask_secrets(source, &analysis.diagnostics);
    let named = NamedSource::new(name, masked).with_language("toml");
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for d in &analysis.diagnostics {
        let report = Report { d, source: &named };
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail; keep the plain message if it ever does.
            out.push_str(&d.message);
        }
        out.push('\n');
    }
    out.push_str(&summary(name, analysis));
    out.push('\n');
    out
}

pub fn summary(name: &str, analysis: &Analysis) -> String {
    let (e, w) = (analysis.errors().count(), analysis.warnings().count());
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (e, w) {
        (0, 0) => {
            let hosts = analysis.inventory.as_ref().map_or(0, |i| i.hosts.len());
            let servers = analysis.inventory.as_ref().map_or(0, |i| i.hosts.values().filter(|h| h.is_server()).count());
            let nets = analysis.inventory.as_ref().map_or(0, |i| i.networks.len());
            format!(
                "{name}: ok, {} ({servers} server{}), {}",
                plural(hosts, "host"),
                if servers == 1 { "" } else { "s" },
                plural(nets, "network")
            )
        }
        _ => format!("{name}: {}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    file: &'a str,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic>,
}

#[derive(Serialize)]
struct JsonDiagnostic {
    code: &'static str,
    severity: Severity,
    message: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    /// Byte offsets into the file.
    start: usize,
    end: usize,
    label: String,
    help: Option<String>,
    related: Vec<JsonLabel>,
}

#[derive(Serialize)]
struct JsonLabel {
    line: usize,
    column: usize,
    start: usize,
    end: usize,
    label: String,
}

/// The machine-readable report of `n3x check --format json`.
pub fn json(name: &str, source: &str, analysis: &Analysis) -> String {
    let idx = LineIndex::new(source);
    let diagnostics = analysis
        .diagnostics
        .iter()
        .map(|d| {
            let (s, e) = (idx.line_col(d.primary.span.start), idx.line_col(d.primary.span.end));
            JsonDiagnostic {
                code: d.code.as_str(),
                severity: d.severity(),
                message: d.message.clone(),
                line: s.line,
                column: s.column,
                end_line: e.line,
                end_column: e.column,
                start: d.primary.span.start,
                end: d.primary.span.end,
                label: d.primary.message.clone(),
                help: d.help.clone(),
                related: d
                    .related
                    .iter()
                    .map(|l| {
                        let p = idx.line_col(l.span.start);
                        JsonLabel {
                            line: p.line,
                            column: p.column,
                            start: l.span.start,
                            end: l.span.end,
                            label: l.message.clone(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let report = JsonReport {
        file: name,
        errors: analysis.errors().count(),
        warnings: analysis.warnings().count(),
        diagnostics,
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
