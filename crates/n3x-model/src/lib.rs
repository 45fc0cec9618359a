//! The n3x inventory model: `n3x.toml` in, a typed model and every diagnostic out.
//!
//! **Architecture Invariant:** this crate does no IO. It reads only the text it is handed,
//! never panics on any input, and never stops at the first problem.
//!
//! ```
//! let text = include_str!("../../../n3x.toml");
//! let analysis = n3x_model::analyze(text);
//! assert_eq!(analysis.errors().count(), 0);
//! let cluster = analysis.resolve().unwrap();
//! assert_eq!(cluster.hosts.len(), 5);
//! ```

mod check;
mod decode;
pub mod diag;
pub mod model;
pub mod net;
pub mod resolve;
pub mod span;
pub mod ssh;
pub mod suggest;

pub use check::CLUSTER_NETWORK;
pub use diag::{Code, Diagnostic, Label, Severity};
pub use model::Inventory;
pub use resolve::{Resolved, Unresolved};
pub use span::{LineCol, LineIndex, Sp, Span};

/// The result of reading an inventory: the model (when the text was TOML at all) and every
/// diagnostic, sorted by position.
#[derive(Clone, Debug)]
pub struct Analysis {
    pub inventory: Option<Inventory>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// The resolved cluster, or why not: only an inventory without errors resolves.
    pub fn resolve(&self) -> Result<Resolved, Unresolved> {
        match (&self.inventory, self.has_errors()) {
            (Some(inv), false) => resolve::resolve(inv),
            _ => Err(Unresolved(format!(
                "the inventory has {} error(s); run `n3x check` to see them",
                self.errors().count().max(1)
            ))),
        }
    }
}

/// Parses and checks an inventory.
pub fn analyze(source: &str) -> Analysis {
    let mut diagnostics = Vec::new();
    let inventory = decode::decode(source, &mut diagnostics);
    if let Some(inv) = &inventory {
        check::check(inv, &mut diagnostics);
    }
    // Errors before warnings, then in file order: what a user reads top to bottom.
    diagnostics.sort_by(|a, b| {
        (a.severity(), a.primary.span.start, a.code).cmp(&(b.severity(), b.primary.span.start, b.code))
    });
    diagnostics.dedup();
    Analysis { inventory, diagnostics }
}
