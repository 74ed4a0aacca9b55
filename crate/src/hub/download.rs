//! One file into the cache: its metadata (HEAD, or GET where HEAD fails), a cache hit or a
//! transfer into `blobs/{etag}.incomplete` (resumed, retried, bounded by the low-speed
//! timeout), the checks, then the blob and the snapshot's link.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};
use ureq::http::StatusCode;

use super::http::{self, Answer, Failure, Method};
use super::{Commit, Fetch, FetchEvent, FetchedFile, cache, validate};
use crate::error::{Error, Result};

/// Fetches `name` from `url` into the cache (or finds it there); `None` when the server says
/// the repository has no such file (404).
pub(super) fn fetch_file(
    fetch: &mut Fetch<'_>,
    url: &str,
    name: &str,
) -> Result<Option<FetchedFile>> {
    let Some((meta, size, open_get)) = metadata(fetch, url, name)? else {
        return Ok(None);
    };
    let commit = fetch.settle_commit(url, meta.commit.clone())?;
    let key = meta
        .etag
        .as_deref()
        .filter(|e| usable_blob_name(e))
        .map(str::to_string);
    let repo_dir = fetch.repo_dir;

    if let Some(bytes) = cached(repo_dir, &commit, name, key.as_deref(), size) {
        drop(open_get);
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
    let sha256 = key.as_deref().filter(|k| is_sha256(k));
    let transfer = Transfer {
        fetch,
        url,
        name,
        partial: &partial,
        expected: size,
        sha256,
    };
    let mut open_get = open_get;
    let report = |event: &FetchEvent<'_>| fetch.event(event);
    let bytes = fetch
        .client
        .retry(url, name, &report, |n| {
            transfer.attempt(if n == 0 { open_get.take() } else { None })
        })
        .map_err(|(failure, attempts)| failure.into_error(url, attempts))?;

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

/// The file's headers: from HEAD, or from a GET (kept open for the transfer) when HEAD is
/// refused (405, 501, another 4xx but 401/403/404) or breaks off without an answer every time.
/// `None` on 404.
#[allow(clippy::type_complexity)]
fn metadata(
    fetch: &Fetch<'_>,
    url: &str,
    name: &str,
) -> Result<Option<(http::Meta, Option<u64>, Option<Answer>)>> {
    let client = &fetch.client;
    let report = |event: &FetchEvent<'_>| fetch.event(event);
    let head = client.retry(url, name, &report, |_| {
        let answer = client.send(Method::Head, url, None)?;
        let status = answer.status();
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            return Err(http::status_failure(url, &answer.response));
        }
        Ok(answer)
    });
    let use_get = match &head {
        Ok(answer) => {
            let status = answer.status();
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(http::status_failure(url, &answer.response).into_error(url, 1));
            }
            !(status.is_success() || status.is_redirection())
        }
        // An HTTP answer that stayed 5xx through the retries, or a server that cannot be
        // reached at all: a GET would fare no better.
        Err((
            Failure::Transient {
                status: Some(_), ..
            },
            _,
        ))
        | Err((Failure::Fatal(_), _)) => false,
        // HEAD broke off or timed out every time (a proxy that mishandles HEAD).
        Err((Failure::Transient { status: None, .. }, _)) => true,
    };
    if !use_get {
        let answer = head.map_err(|(failure, attempts)| failure.into_error(url, attempts))?;
        let size = answer.meta.linked_size.or_else(|| {
            (answer.status() == StatusCode::OK)
                .then(|| http::content_length(&answer.response))
                .flatten()
        });
        return Ok(Some((answer.meta, size, None)));
    }

    let why = match &head {
        Ok(answer) => format!("HTTP {}", answer.status()),
        Err((Failure::Transient { reason, .. }, _)) => reason.clone(),
        Err((Failure::Fatal(error), _)) => error.to_string(),
    };
    fetch.note(&format!("{url}: HEAD failed ({why}); asking with GET"));
    let answer = client
        .retry(url, name, &report, |_| {
            let answer = client.send(Method::Get, url, None)?;
            let status = answer.status();
            if status.is_success() || status == StatusCode::NOT_FOUND {
                Ok(answer)
            } else {
                Err(http::status_failure(url, &answer.response))
            }
        })
        .map_err(|(failure, attempts)| failure.into_error(url, attempts))?;
    if answer.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let size = answer.meta.linked_size.or_else(|| {
        (answer.status() == StatusCode::OK)
            .then(|| http::content_length(&answer.response))
            .flatten()
    });
    Ok(Some((answer.meta.clone(), size, Some(answer))))
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

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
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

/// One file's transfer into `partial`, attempt by attempt.
struct Transfer<'a, 'f> {
    fetch: &'a Fetch<'f>,
    url: &'a str,
    name: &'a str,
    partial: &'a Path,
    /// The size the metadata announced.
    expected: Option<u64>,
    /// The hub's sha256 of the file (an LFS file's ETag).
    sha256: Option<&'a str>,
}

impl Transfer<'_, '_> {
    fn remove_partial(&self) {
        let _ = fs::remove_file(self.partial);
    }

    fn write_error(&self, e: impl std::fmt::Display) -> Failure {
        Failure::Fatal(Error::write_output(self.partial.display(), e))
    }

    /// Brings `partial` to the whole file (from where it stands) and checks it; the file's size.
    /// `open` is a GET already answered (HEAD's fallback), used when starting from byte 0.
    fn attempt(&self, open: Option<Answer>) -> std::result::Result<u64, Failure> {
        let mut offset = fs::metadata(self.partial).map(|m| m.len()).unwrap_or(0);
        if self.expected.is_some_and(|len| offset > len) {
            self.remove_partial();
            offset = 0;
        }
        let written = if offset > 0 && self.expected == Some(offset) {
            // Every byte arrived before, but the checks or the rename did not happen.
            offset
        } else {
            self.transfer(offset, open.filter(|_| offset == 0))?
        };
        self.check()?;
        Ok(written)
    }

    fn transfer(&self, offset: u64, open: Option<Answer>) -> std::result::Result<u64, Failure> {
        let client = &self.fetch.client;
        let mut answer = match open {
            Some(answer) => answer,
            None => client.send(Method::Get, self.url, (offset > 0).then_some(offset))?,
        };
        let status = answer.status();
        let (start, announced) = match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                match http::content_range(&answer.response) {
                    Some((start, total)) if start == offset => {
                        let total = total
                            .or_else(|| http::content_length(&answer.response).map(|n| start + n));
                        (start, total)
                    }
                    _ => {
                        self.remove_partial();
                        return Err(Failure::transient(format!(
                            "the server answered the range request from byte {offset} with another \
                         range; starting the file over"
                        )));
                    }
                }
            }
            // A fresh transfer, or a server that ignores Range: from byte 0.
            StatusCode::OK => (0, http::content_length(&answer.response)),
            StatusCode::RANGE_NOT_SATISFIABLE => {
                self.remove_partial();
                return Err(Failure::transient(format!(
                    "range from byte {offset} not satisfiable (the file changed on the \
                     server); starting the file over"
                )));
            }
            StatusCode::NOT_FOUND => {
                return Err(Failure::Fatal(Error::read_model(
                    self.url,
                    "not found (HTTP 404) by GET although HEAD found it",
                )));
            }
            _ => return Err(http::status_failure(self.url, &answer.response)),
        };
        if let (Some(expected), Some(announced)) = (self.expected, announced)
            && expected != announced
        {
            if start > 0 {
                self.remove_partial();
            }
            return Err(Failure::Fatal(Error::read_model(
                self.url,
                format!(
                    "the server announced {expected} bytes for {} but its download has \
                     {announced}; nothing saved",
                    self.name
                ),
            )));
        }
        let total = self.expected.or(announced);

        let mut file = if start > 0 {
            OpenOptions::new().append(true).open(self.partial)
        } else {
            File::create(self.partial)
        }
        .map_err(|e| self.write_error(e))?;
        self.fetch.event(&FetchEvent::Started {
            file: self.name,
            total,
            resumed_from: start,
        });
        let mut reader = answer.response.body_mut().as_reader();
        let result = self.stream(&mut reader, &mut file, start);
        file.flush()
            .and_then(|()| file.sync_all())
            .map_err(|e| self.write_error(e))?;
        let written = result?;
        match total {
            Some(total) if written < total => Err(Failure::transient(format!(
                "the transfer of {} ended after {written} of {total} bytes",
                self.name
            ))),
            Some(total) if written > total => {
                self.remove_partial();
                Err(Failure::Fatal(Error::read_model(
                    self.url,
                    format!(
                        "the server sent {written} bytes of {} but announced {total}; nothing saved",
                        self.name
                    ),
                )))
            }
            _ => Ok(written),
        }
    }

    /// Copies the body into `file`; a stall (fewer than `low_speed_limit` bytes in
    /// `low_speed_time`, or no byte at all for that long) or a broken connection is transient.
    fn stream(
        &self,
        reader: &mut impl Read,
        file: &mut File,
        start: u64,
    ) -> std::result::Result<u64, Failure> {
        let client = &self.fetch.client;
        let mut buffer = vec![0u8; 1 << 16];
        let mut written = start;
        let mut window = Instant::now();
        let mut window_bytes = 0u64;
        let stall = |written: u64| {
            Failure::transient(format!(
                "the transfer of {} stalled: fewer than {} bytes in {:.1} s (low-speed limit), \
                 after {written} bytes",
                self.name,
                client.low_speed_limit,
                client.low_speed_time.as_secs_f64()
            ))
        };
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(stall(written)),
                Err(e) => {
                    return Err(Failure::transient(format!(
                        "the transfer of {} broke off after {written} bytes ({e})",
                        self.name
                    )));
                }
            };
            file.write_all(&buffer[..n])
                .map_err(|e| self.write_error(e))?;
            written += n as u64;
            window_bytes += n as u64;
            self.fetch.event(&FetchEvent::Advanced {
                file: self.name,
                bytes: written,
            });
            if window.elapsed() >= client.low_speed_time {
                if window_bytes < client.low_speed_limit {
                    return Err(stall(written));
                }
                window = Instant::now();
                window_bytes = 0;
            }
        }
        Ok(written)
    }

    /// The complete file: its sha256 when the hub gave one (a mismatch is retried from byte
    /// 0), then its format. Nothing that fails stays.
    fn check(&self) -> std::result::Result<(), Failure> {
        if let Some(expected) = self.sha256 {
            let got = hex(&sha256_of(self.partial).map_err(Failure::Fatal)?);
            if !got.eq_ignore_ascii_case(expected) {
                self.remove_partial();
                return Err(Failure::transient(format!(
                    "sha256 mismatch for {}: the download has {got}, the hub says {expected}; \
                     removed it",
                    self.name
                )));
            }
        }
        if let Err(reason) = validate::check_format(self.name, self.partial) {
            self.remove_partial();
            return Err(Failure::Fatal(Error::read_model(
                self.url,
                format!("{}: {reason}; not saved", self.name),
            )));
        }
        Ok(())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.kind() == io::ErrorKind::WouldBlock
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)))
}
