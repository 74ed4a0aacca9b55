//! The hub cache's layout, as `huggingface_hub` writes it: blobs named by ETag, snapshots of
//! relative symlinks, refs holding commit hashes, flock'ed lock files.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{Commit, FetchedFile, REQUIRED, Snapshot, TOKENIZER, WEIGHTS, non_empty_env};
use crate::error::{Error, Result};

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub(super) fn hf_home() -> Result<PathBuf> {
    if let Some(home) = non_empty_env("HF_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(cache) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(cache).join("huggingface"));
    }
    let home = non_empty_env("HOME")
        .or_else(|| non_empty_env("USERPROFILE"))
        .ok_or_else(|| {
            Error::write_output(
                "the hub cache",
                "no HF_HOME and no home directory to put it in",
            )
        })?;
    Ok(PathBuf::from(home).join(".cache").join("huggingface"))
}

/// The hub cache as `huggingface_hub` finds it: `$HF_HUB_CACHE`, else `$HF_HOME/hub`.
pub fn hub_cache_dir() -> Result<PathBuf> {
    match non_empty_env("HF_HUB_CACHE").or_else(|| non_empty_env("HUGGINGFACE_HUB_CACHE")) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(hf_home()?.join("hub")),
    }
}

/// `models--{org}--{name}`.
pub(super) fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// `.locks/models--{org}--{name}` next to the repositories.
pub(super) fn locks_dir(cache_dir: &Path, repo: &str) -> PathBuf {
    cache_dir.join(".locks").join(repo_folder(repo))
}

/// A full commit hash (40 lowercase hex digits).
pub(super) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(super) fn snapshot_dir(repo_dir: &Path, commit: &Commit) -> PathBuf {
    let name = match commit {
        Commit::Hash(hash) => hash.clone(),
        Commit::RevisionName(revision) => revision.replace('/', "--"),
    };
    repo_dir.join("snapshots").join(name)
}

pub(super) fn blob_path(repo_dir: &Path, key: &str) -> PathBuf {
    repo_dir.join("blobs").join(key)
}

pub(super) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)
        .map_err(|e| Error::write_output(dir.display(), format!("creating: {e}")))
}

/// `refs/{revision}` holds `commit` (nothing is written when the revision is the commit).
pub(super) fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> Result<()> {
    if revision == commit {
        return Ok(());
    }
    let path = repo_dir.join("refs").join(revision);
    if fs::read_to_string(&path).is_ok_and(|old| old.trim() == commit) {
        return Ok(());
    }
    create_dir(path.parent().expect("a ref's directory"))?;
    let temp = with_suffix(&path, ".tmp");
    fs::write(&temp, commit)
        .and_then(|()| fs::rename(&temp, &path))
        .map_err(|e| Error::write_output(path.display(), e))
}

/// `snapshots/{commit}/{name}` → `../../blobs/{key}` (a relative symlink, as huggingface_hub
/// makes; a copy where the platform has no symlinks).
pub(super) fn link(repo_dir: &Path, commit: &Commit, name: &str, key: &str) -> Result<()> {
    let snapshot = snapshot_dir(repo_dir, commit);
    create_dir(&snapshot)?;
    let pointer = snapshot.join(name);
    let target = Path::new("..").join("..").join("blobs").join(key);
    if fs::read_link(&pointer).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let temp = with_suffix(&pointer, ".tmp-link");
    let _ = fs::remove_file(&temp);
    make_link(&target, &blob_path(repo_dir, key), &temp)
        .and_then(|()| fs::rename(&temp, &pointer))
        .map_err(|e| Error::write_output(pointer.display(), e))
}

#[cfg(unix)]
fn make_link(target: &Path, _blob: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

#[cfg(not(unix))]
fn make_link(_target: &Path, blob: &Path, at: &Path) -> io::Result<()> {
    fs::hard_link(blob, at).or_else(|_| fs::copy(blob, at).map(|_| ()))
}

/// The exclusive lock `huggingface_hub` takes for a blob (`.locks/.../{key}.lock`, flock).
pub(super) fn lock_blob(
    cache_dir: &Path,
    repo: &str,
    key: &str,
    waiting: impl FnOnce(&Path),
) -> Result<File> {
    let dir = locks_dir(cache_dir, repo);
    create_dir(&dir)?;
    let path = dir.join(format!("{key}.lock"));
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    // Group-writable, as huggingface_hub makes them, for caches shared between users.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o664);
    let file = options
        .open(&path)
        .map_err(|e| Error::write_output(path.display(), e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            waiting(&path);
            file.lock()
                .map_err(|e| Error::write_output(path.display(), e))?;
        }
        Err(fs::TryLockError::Error(e)) => return Err(Error::write_output(path.display(), e)),
    }
    Ok(file)
}

/// Removes the empty directories under `dir` and `dir` itself when empty (a failed fetch
/// leaves no empty cache directories behind).
pub(super) fn prune_empty(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                prune_empty(&entry.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}

/// After a failed fetch: the repository's and its locks' empty directories.
pub(super) fn prune_after_failure(cache_dir: &Path, repo: &str) {
    prune_empty(&cache_dir.join(repo_folder(repo)));
    let locks = locks_dir(cache_dir, repo);
    prune_empty(&locks);
    if let Some(parent) = locks.parent() {
        let _ = fs::remove_dir(parent);
    }
}

/// The snapshot `revision` names in the cache, without the network (`HF_HUB_OFFLINE`).
pub(super) fn offline_snapshot(repo_dir: &Path, repo: &str, revision: &str) -> Result<Snapshot> {
    let commit = fs::read_to_string(repo_dir.join("refs").join(revision))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let dir = repo_dir.join("snapshots").join(&commit);
    let has = |name: &str| dir.join(name).is_file();
    let complete = REQUIRED.iter().all(|n| has(n))
        && WEIGHTS.iter().any(|n| has(n))
        && (has("tokenizer.json") || has("vocab.txt"));
    if !complete {
        return Err(Error::read_model(
            dir.display(),
            format!(
                "{repo} at {revision:?} is not (completely) in the hub cache and HF_HUB_OFFLINE \
                 is set; fetch it while online"
            ),
        ));
    }
    let files = REQUIRED
        .iter()
        .chain(&WEIGHTS)
        .chain(&TOKENIZER)
        .filter_map(|name| {
            let bytes = fs::metadata(dir.join(name)).ok()?.len();
            Some(FetchedFile {
                name: name.to_string(),
                bytes,
                cached: true,
            })
        })
        .collect();
    Ok(Snapshot {
        dir,
        commit: is_commit_hash(&commit).then_some(commit),
        files,
    })
}

/// Hard links (same file system) or copies of the snapshot's files in `out`.
pub(super) fn place(snapshot: &Path, out: &Path, names: &[&str]) -> Result<()> {
    create_dir(out)?;
    for name in names {
        // The blob itself: a hard link to the snapshot's symlink would dangle in `out`.
        let from = fs::canonicalize(snapshot.join(name))
            .map_err(|e| Error::read_model(snapshot.join(name).display(), e))?;
        let to = out.join(name);
        if fs::canonicalize(&to).is_ok_and(|t| t == from) {
            continue;
        }
        match fs::remove_file(&to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(Error::write_output(to.display(), format!("replacing: {e}")));
            }
            _ => {}
        }
        if fs::hard_link(&from, &to).is_err() {
            // Copy under a temporary name so that `to` never holds part of the file.
            let partial = with_suffix(&to, ".incomplete");
            fs::copy(&from, &partial)
                .and_then(|_| fs::rename(&partial, &to))
                .map_err(|e| {
                    Error::write_output(to.display(), format!("copying {}: {e}", from.display()))
                })?;
        }
    }
    Ok(())
}
