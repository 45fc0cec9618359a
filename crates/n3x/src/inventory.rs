//! Where the inventory comes from (`-f FILE`, `-f -` for standard input, `./n3x.toml`, or
//! the reference inventory embedded in the binary), and the one place that reads, checks
//! and resolves it for every command, or returns its errors rendered.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The reference cluster, compiled in: `n3x` works with no file at all.
pub const EMBEDDED: &str = include_str!("../../../n3x.toml");
pub const EMBEDDED_NAME: &str = "n3x.toml (embedded reference)";

#[derive(Debug)]
pub struct Source {
    /// What diagnostics call the file.
    pub name: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read inventory `{path}`: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("inventory `{path}` is not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { path: PathBuf, offset: usize },
}

impl SourceError {
    pub fn help(&self) -> String {
        match self {
            SourceError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                "check the path given to `-f`, or run without `-f` to use ./n3x.toml or the embedded reference".into()
            }
            SourceError::Read { .. } => "check the file's permissions".into(),
            SourceError::NotUtf8 { .. } => "n3x.toml must be UTF-8 encoded TOML; re-save it as UTF-8".into(),
        }
    }
}

/// Loads `-f` if given, else `./n3x.toml` if it exists, else the embedded reference.
pub fn load(file: Option<&Path>) -> Result<Source, SourceError> {
    let path = match file {
        Some(p) if p == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| SourceError::Read { path: "<stdin>".into(), source })?;
            return decode("<stdin>".into(), bytes);
        }
        Some(p) => p.to_path_buf(),
        None => {
            let local = PathBuf::from("n3x.toml");
            if !local.exists() {
                return Ok(Source { name: EMBEDDED_NAME.into(), text: EMBEDDED.into() });
            }
            local
        }
    };
    let bytes = std::fs::read(&path).map_err(|source| SourceError::Read { path: path.clone(), source })?;
    decode(path, bytes)
}

fn decode(path: PathBuf, bytes: Vec<u8>) -> Result<Source, SourceError> {
    let text = String::from_utf8(bytes)
        .map_err(|e| SourceError::NotUtf8 { path: path.clone(), offset: e.utf8_error().valid_up_to() })?;
    Ok(Source { name: path.display().to_string(), text })
}

/// What a command needs the inventory for, for the message when it has errors.
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    Show,
    Lab,
    Secrets,
    Deploy,
    Operate,
}

impl Purpose {
    pub fn verb(self) -> &'static str {
        match self {
            Purpose::Show => "show",
            Purpose::Lab => "build a lab from",
            Purpose::Secrets => "manage the secrets of",
            Purpose::Deploy => "deploy",
            Purpose::Operate => "reach the cluster of",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Purpose::Show | Purpose::Secrets => "fix the errors above (`n3x check` lists them), then try again",
            Purpose::Lab => "fix the errors above (`n3x check` lists them); nothing was created",
            Purpose::Deploy | Purpose::Operate => "fix the errors above (`n3x check` lists them); no host was touched",
        }
    }
}

/// A read, checked and resolved inventory.
pub struct Loaded {
    pub source: Source,
    pub resolved: n3x_model::Resolved,
}

/// Why an inventory could not be used.
#[derive(Debug)]
pub enum LoadError {
    Source(SourceError),
    /// It has errors; `diagnostics` is their rendering.
    Invalid {
        name: String,
        purpose: Purpose,
        diagnostics: String,
    },
}

/// Reads the inventory and resolves it; if it has errors, returns them rendered, so every
/// command shows the same diagnostics the same way.
pub fn resolve(file: Option<&Path>, purpose: Purpose) -> Result<Loaded, LoadError> {
    let source = load(file).map_err(LoadError::Source)?;
    let analysis = n3x_model::analyze(&source.text);
    match analysis.resolve() {
        Ok(resolved) => Ok(Loaded { source, resolved }),
        Err(_) => Err(LoadError::Invalid {
            diagnostics: crate::render::human(&source.name, &source.text, &analysis, crate::render::color_stderr()),
            name: source.name,
            purpose,
        }),
    }
}
