//! Writing an output directory whole or not at all: its files go into a fresh directory beside
//! it, which replaces the output only once complete.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A fresh, uniquely named directory beside the output (so that the final rename stays on one
/// file system), removed unless [`StagingDir::replace`] moves it into place.
pub struct StagingDir {
    dir: tempfile::TempDir,
}

impl StagingDir {
    pub fn beside(out_dir: &Path) -> Result<Self> {
        let parent = match out_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| Error::write_output(parent.display(), e))?;
        let name = out_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(&parent)
            .map_err(|e| Error::write_output(parent.display(), e))?;
        Ok(Self { dir })
    }

    /// Where the files are being written.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a new file (never through an existing path: the directory is fresh).
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::write_output(path.display(), e))
    }

    /// Copies `source` in as `name`.
    pub fn copy(&self, source: &Path, name: &str) -> Result<()> {
        let path = self.dir.path().join(name);
        std::fs::copy(source, &path)
            .map(drop)
            .map_err(|e| Error::write_output(path.display(), e))
    }

    /// Brings `source` in as `name` by a hard link (no second copy of a large file), or by a
    /// copy where the file system cannot link (another device, no link support).
    pub fn link_or_copy(&self, source: &Path, name: &str) -> Result<()> {
        let path = self.dir.path().join(name);
        // The file itself, not a symlink to it (a hard link to a relative symlink, as in a
        // Hugging Face cache snapshot, would point nowhere from here).
        let file =
            std::fs::canonicalize(source).map_err(|e| Error::read_model(source.display(), e))?;
        if std::fs::hard_link(&file, &path).is_ok() {
            return Ok(());
        }
        self.copy(&file, name)
    }

    /// Moves the complete directory to `out_dir`. An old one there is moved aside first and
    /// removed only once the new one is in place.
    pub fn replace(self, out_dir: &Path) -> Result<()> {
        let staged = self.dir.keep();
        let fail = |e: std::io::Error| Error::write_output(out_dir.display(), e);
        if !out_dir.exists() {
            return std::fs::rename(&staged, out_dir).map_err(fail);
        }
        let old = tempfile::Builder::new()
            .prefix(&format!(
                ".{}.old-",
                out_dir.file_name().unwrap_or_default().to_string_lossy()
            ))
            .tempdir_in(staged.parent().expect("a staging dir has a parent"))
            .map_err(fail)?
            .keep();
        // `old` exists (empty): rename replaces an empty directory.
        std::fs::rename(out_dir, &old).map_err(fail)?;
        if let Err(e) = std::fs::rename(&staged, out_dir) {
            // Put the old directory back: the user's files are never lost to a failed write.
            let _ = std::fs::rename(&old, out_dir);
            let _ = std::fs::remove_dir_all(&staged);
            return Err(fail(e));
        }
        std::fs::remove_dir_all(&old).map_err(fail)
    }
}
