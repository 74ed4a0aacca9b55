//! One file into the cache: its metadata (HEAD), a cache hit or a transfer into
//! `blobs/{etag}.incomplete` (resumed by a later run), then the blob and the snapshot's link.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use ureq::http::StatusCode;

use super::http::{self, Method};
use super::{Commit, Fetch, FetchEvent, FetchedFile, cache};
use crate::error::{Error, Result};

/// Fetches `name` from `url` into the cache (or finds it there); `None` when the server says
/// the repository has no such file (404).
pub(super) fn fetch_file(
    fetch: &mut Fetch<'_>,
    url: &str,
    name: &str,
) -> Result<Option<FetchedFile>> {
    let head = fetch.client.send(Method::Head, url, None)?;
    let status = head.status();
    if status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !(status.is_success() || status.is_redirection()) {
        return Err(http::http_error(url, status));
    }
    let size = head.meta.linked_size.or_else(|| {
        (status == StatusCode::OK)
            .then(|| http::content_length(&head.response))
            .flatten()
    });
    let meta = head.meta;
    let commit = fetch.settle_commit(url, meta.commit.clone())?;
    let key = meta
        .etag
        .as_deref()
        .filter(|e| usable_blob_name(e))
        .map(str::to_string);
    let repo_dir = fetch.repo_dir;

    if let Some(bytes) = cached(repo_dir, &commit, name, key.as_deref(), size) {
        if let Some(key) = &key {
            cache::link(repo_dir, &commit, name, key)?;
        }
        return Ok(Some(finished(fetch, name, bytes, true)));
    }

    // Without an ETag the blob is named by its sha256 once complete; until then the partial
    // file is named by the snapshot and file, so that a later run resumes it.
    let partial_key = match &key {
        Some(key) => key.clone(),
        None => hex(&Sha256::digest(
            cache::snapshot_dir(repo_dir, &commit)
                .join(name)
                .to_string_lossy()
                .as_bytes(),
        )),
    };
    let _lock = cache::lock_blob(&fetch.hub.cache_dir, fetch.repo, &partial_key, |path| {
        fetch.note(&format!(
            "{name}: waiting for another download of it to finish (lock {})",
            path.display()
        ))
    })?;
    // Another process may have brought it while this one waited for the lock.
    if let Some(bytes) = cached(repo_dir, &commit, name, key.as_deref(), size) {
        if let Some(key) = &key {
            cache::link(repo_dir, &commit, name, key)?;
        }
        return Ok(Some(finished(fetch, name, bytes, true)));
    }

    cache::create_dir(&repo_dir.join("blobs"))?;
    let partial = cache::with_suffix(&cache::blob_path(repo_dir, &partial_key), ".incomplete");
    let bytes = transfer(fetch, url, name, &partial, size)?;

    let key = match key {
        Some(key) => key,
        None => hex(&sha256_of(&partial)?),
    };
    let blob = cache::blob_path(repo_dir, &key);
    fs::rename(&partial, &blob).map_err(|e| {
        Error::write_output(
            blob.display(),
            format!("renaming {}: {e}", partial.display()),
        )
    })?;
    cache::link(repo_dir, &commit, name, &key)?;
    Ok(Some(finished(fetch, name, bytes, false)))
}

fn finished(fetch: &Fetch<'_>, name: &str, bytes: u64, cached: bool) -> FetchedFile {
    fetch.event(&FetchEvent::Finished {
        file: name,
        bytes,
        cached,
    });
    FetchedFile {
        name: name.to_string(),
        bytes,
        cached,
    }
}

/// The file's size when it is already in the cache: its blob (named by the ETag) exists with
/// the announced size, or, for a server without ETags, the snapshot holds it with that size.
fn cached(
    repo_dir: &Path,
    commit: &Commit,
    name: &str,
    key: Option<&str>,
    size: Option<u64>,
) -> Option<u64> {
    let path = match key {
        Some(key) => cache::blob_path(repo_dir, key),
        None => cache::snapshot_dir(repo_dir, commit).join(name),
    };
    let meta = fs::metadata(path).ok()?;
    let fits = meta.is_file() && size.is_none_or(|s| s == meta.len());
    // Without an ETag nothing but the size tells the file apart: a size is needed.
    (fits && (key.is_some() || size.is_some())).then_some(meta.len())
}

/// A blob name huggingface_hub would also use, and that is safe as a file name.
fn usable_blob_name(etag: &str) -> bool {
    !etag.is_empty()
        && etag.len() <= 200
        && !etag.starts_with('.')
        && etag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !etag.ends_with(".incomplete")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_of(path: &Path) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::read_model(path.display(), e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::read_model(path.display(), e)),
        }
    }
    Ok(hasher.finalize().to_vec())
}

/// Brings `partial` to the whole file from where it stands (a Range request; a server that
/// answers 200 instead of 206 restarts it); the file's size.
fn transfer(
    fetch: &Fetch<'_>,
    url: &str,
    name: &str,
    partial: &Path,
    expected: Option<u64>,
) -> Result<u64> {
    let write_error = |e: io::Error| Error::write_output(partial.display(), e);
    let mut offset = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    if expected.is_some_and(|len| offset > len) {
        let _ = fs::remove_file(partial);
        offset = 0;
    }
    if offset > 0 && expected == Some(offset) {
        // Every byte arrived before, but the rename did not happen.
        return Ok(offset);
    }
    let mut answer = fetch
        .client
        .send(Method::Get, url, (offset > 0).then_some(offset))?;
    let (start, announced) = match answer.status() {
        StatusCode::PARTIAL_CONTENT if offset > 0 => match http::content_range(&answer.response) {
            Some((start, total)) if start == offset => {
                let total =
                    total.or_else(|| http::content_length(&answer.response).map(|n| start + n));
                (start, total)
            }
            _ => {
                return Err(Error::read_model(
                    url,
                    format!(
                        "the server answered the range request from byte {offset} with \
                         another range"
                    ),
                ));
            }
        },
        // A fresh transfer, or a server that ignores Range: from byte 0.
        StatusCode::OK => (0, http::content_length(&answer.response)),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            // The partial file does not fit the server's file: drop it, try again next run.
            let _ = fs::remove_file(partial);
            return Err(Error::read_model(
                url,
                format!(
                    "range from byte {offset} not satisfiable (the file changed on the \
                     server); removed the partial download, run again"
                ),
            ));
        }
        status => return Err(http::http_error(url, status)),
    };
    let total = announced.or(expected);

    let mut file = if start > 0 {
        OpenOptions::new().append(true).open(partial)
    } else {
        File::create(partial)
    }
    .map_err(write_error)?;
    fetch.event(&FetchEvent::Started {
        file: name,
        total,
        resumed_from: start,
    });
    let mut reader = answer.response.body_mut().as_reader();
    let mut buffer = vec![0u8; 1 << 16];
    let mut written = start;
    let result = loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(Error::read_model(
                    url,
                    format!(
                        "the transfer of {name} broke off after {written} bytes ({e}); run \
                         again to resume"
                    ),
                ));
            }
        };
        if let Err(e) = file.write_all(&buffer[..n]) {
            break Err(write_error(e));
        }
        written += n as u64;
        fetch.event(&FetchEvent::Advanced {
            file: name,
            bytes: written,
        });
    };
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    result?;
    if let Some(total) = total
        && written != total
    {
        return Err(Error::read_model(
            url,
            format!(
                "the transfer of {name} ended after {written} of {total} bytes; run again to \
                 resume"
            ),
        ));
    }
    Ok(written)
}
