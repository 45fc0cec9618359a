//! Atomic file writes: a reader (or a crash) sees the old file or the new one, never a mix.
//!
//! The bytes go to a fresh temporary file in the target's directory (same filesystem, so
//! `rename` is atomic), created with its final mode (a secret is never briefly
//! world-readable), then `fsync`, `rename` over the target, and `fsync` of the directory so
//! the rename itself survives a power cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically with permissions `mode` (e.g. `0o600`).
///
/// When `mode` is `None` an existing file keeps its mode and a new one gets `0o644`. The
/// parent directory must exist.
pub fn write(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mode = match mode {
        Some(m) => m,
        None => fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (tmp_path, mut file) = create_temp(&dir, &name, mode)?;
    let result = (|| {
        file.write_all(bytes)?;
        // The umask may have narrowed the mode given at creation; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp_path, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Unique per process and call; `create_new` settles any remaining race.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.n3x-tmp-{}-{n}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "could not create a unique temporary file"))
}

/// Creates `dir` and its missing parents; directories this call creates get `mode`.
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// The writer of a temporary file `write` left behind (`.NAME.n3x-tmp-PID-N`): its pid.
fn temp_owner(file_name: &str) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".n3x-tmp-")?;
    let (pid, n) = tail.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Removes the temporary files in `dir` that a `write` killed mid-way left (their process
/// is gone); returns how many. Files of live writers are left alone.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for e in fs::read_dir(dir)?.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(temp_owner) else { continue };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            match fs::remove_file(e.path()) {
                Ok(()) => removed += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod stale_tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_writers_are_removed() {
        assert_eq!(temp_owner(".a.snap.age.n3x-tmp-123-4"), Some(123));
        assert_eq!(temp_owner("a.snap.age.n3x-tmp-123-4"), None);
        assert_eq!(temp_owner(".a.n3x-tmp-x-4"), None);
        let d = tempfile::tempdir().expect("tempdir");
        let me = std::process::id();
        // Linux pids stay below 2^22: this one is nobody's.
        for n in [".a.n3x-tmp-4194999-0".to_string(), format!(".b.n3x-tmp-{me}-0"), "c".into(), ".c.n3x-tmp-1-x".into()]
        {
            fs::write(d.path().join(n), b"x").expect("write");
        }
        assert_eq!(remove_stale_temps(d.path()).expect("scan"), 1);
        let mut left: Vec<String> = fs::read_dir(d.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".b.n3x-tmp-".to_string() + &me.to_string() + "-0", ".c.n3x-tmp-1-x".into(), "c".into()]);
    }
}
