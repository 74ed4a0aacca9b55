//! Checkpoints from the Hugging Face hub (or a mirror) into the hub's local cache, shared with
//! Python's `huggingface_hub`: `Reranker::from_pretrained`, `listconranker fetch`.
//!
//! Why our own client and not the `hf-hub` crate: hf-hub 1.0 (the current release) keeps the
//! same cache layout and reads `HF_ENDPOINT`, `HF_TOKEN` and `HF_HOME`, but it is async only
//! (tokio, reqwest, and the hf-xet client as a required dependency, a large build for a blocking
//! download of six files), it truncates an `.incomplete` blob and starts over instead of
//! resuming it with a Range request, it has no low-speed timeout, needs a HEAD answer with an
//! ETag and `X-Repo-Commit` (no GET fallback for mirrors without HEAD), and it neither checks a
//! file's sha256 nor its format before the file enters the cache. So the `ureq` code stays, and
//! this module writes the cache exactly as `huggingface_hub` does:
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME default ~/.cache/huggingface)
//! ├── models--{org}--{name}/
//! │   ├── blobs/{etag}                  the files' bytes, named by their ETag (X-Linked-Etag for
//! │   │                                 LFS files: their sha256), {etag}.incomplete while arriving
//! │   ├── refs/{revision}               the commit the branch or tag resolved to (X-Repo-Commit)
//! │   └── snapshots/{commit}/{file}     relative symlinks to ../../blobs/{etag}
//! └── .locks/models--{org}--{name}/{etag}.lock   (flock, as huggingface_hub's filelock)
//! ```
//!
//! Every file is downloaded to `blobs/{etag}.incomplete` (resumed with a Range request by a
//! retry or a later run), then its length is checked against what the server announced, its
//! sha256 against the hub's when the hub gives it (an LFS file's ETag), and its format (JSON,
//! safetensors header, PyTorch zip or pickle, UTF-8 text; never an HTML page); only then is it
//! renamed to its blob and linked into the snapshot. Transient failures (5xx, 408, 429, dropped
//! connections, stalls) are retried with backoff; a transfer slower than
//! [`FetchOptions::low_speed_limit`] bytes per [`FetchOptions::low_speed_time`] is a stall.

mod cache;
mod download;
mod http;
mod validate;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

pub use cache::hub_cache_dir;

/// The hub itself; `HF_ENDPOINT` names a mirror instead.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// The split layout's files that every checkpoint needs.
const REQUIRED: [&str; 3] = [
    "config.json",
    "linear_in_embedding.pt",
    "list_transformer.pt",
];
/// Encoder weights, in order of preference.
const WEIGHTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
/// Tokenizer files, each optional; `tokenizer.json` or `vocab.txt` must be among them.
const TOKENIZER: [&str; 4] = [
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Where checkpoints come from and where they are kept.
#[derive(Debug, Clone)]
pub struct Hub {
    endpoint: String,
    token: Option<String>,
    cache_dir: PathBuf,
    offline: bool,
}

/// How one fetch runs: the revision, retries, the low-speed timeout and progress reports.
#[derive(Clone)]
pub struct FetchOptions {
    /// Branch, tag or commit (default `main`).
    pub revision: String,
    /// Further attempts after a transient failure (5xx, 408, 429, a dropped connection, a
    /// stall, a checksum mismatch), with exponential backoff from [`FetchOptions::retry_delay`];
    /// default 3.
    pub retries: u32,
    /// The first backoff (then doubled each time, at most 30 s; a server's `Retry-After` wins
    /// when longer); default 1 s.
    pub retry_delay: Duration,
    /// A transfer that receives fewer bytes than this in [`FetchOptions::low_speed_time`] is
    /// a stall (default 16 KiB).
    pub low_speed_limit: u64,
    /// The low-speed window, also the longest wait for a server's answer or for the next bytes
    /// (default 30 s).
    pub low_speed_time: Duration,
    /// Receives what happens, file by file.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            revision: "main".into(),
            retries: 3,
            retry_delay: Duration::from_secs(1),
            low_speed_limit: 16 << 10,
            low_speed_time: Duration::from_secs(30),
            progress: None,
        }
    }
}

impl fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("revision", &self.revision)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("low_speed_limit", &self.low_speed_limit)
            .field("low_speed_time", &self.low_speed_time)
            .field("progress", &self.progress.as_ref().map(|_| "..."))
            .finish()
    }
}

/// What a fetch reports while it runs (see [`Progress`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FetchEvent<'a> {
    /// A transfer begins: `total` bytes when the server says, from byte `resumed_from`.
    Started {
        file: &'a str,
        total: Option<u64>,
        resumed_from: u64,
    },
    /// `bytes` of the file have arrived so far.
    Advanced { file: &'a str, bytes: u64 },
    /// The file is in the cache: downloaded now, or found there (`cached`).
    Finished {
        file: &'a str,
        bytes: u64,
        cached: bool,
    },
    /// A transient failure; attempt `attempt` of `attempts` follows after `delay`.
    Retrying {
        file: &'a str,
        attempt: u32,
        attempts: u32,
        delay: Duration,
        reason: &'a str,
    },
    /// Anything else worth telling (waiting for another process's download, a server without
    /// commit hashes).
    Note { message: &'a str },
}

/// Receives a fetch's [`FetchEvent`]s (a progress bar, a log). Any `Fn(&FetchEvent)` is one.
pub trait Progress: Send + Sync {
    fn event(&self, event: &FetchEvent<'_>);
}

impl<F: Fn(&FetchEvent<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: &FetchEvent<'_>) {
        self(event)
    }
}

/// A checkpoint in the cache.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `.../models--{org}--{name}/snapshots/{commit}`: ready for [`crate::Reranker::load`].
    pub dir: PathBuf,
    /// The commit the revision resolved to; `None` when the server sent no commit hash (the
    /// snapshot is then named after the revision).
    pub commit: Option<String>,
    /// The checkpoint's files in `dir`.
    pub files: Vec<FetchedFile>,
}

#[derive(Debug, Clone)]
pub struct FetchedFile {
    pub name: String,
    pub bytes: u64,
    /// Found in the cache (no transfer).
    pub cached: bool,
}

impl Snapshot {
    /// Also places the files in `out` (hard links to the cache's blobs where the file system
    /// allows, copies otherwise; never a partial file under a file's name).
    pub fn place_into(&self, out: &Path) -> Result<()> {
        let names: Vec<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        cache::place(&self.dir, out, &names)
    }
}

/// Fetches `repo` (`org/name`) with the environment's hub ([`Hub::from_env`]) and returns its
/// snapshot directory, ready for [`crate::Reranker::load`]; files already in the cache are not
/// downloaded again.
pub fn fetch_checkpoint(repo: &str, options: &FetchOptions) -> Result<PathBuf> {
    Ok(Hub::from_env()?.fetch_checkpoint(repo, options)?.dir)
}

impl crate::Reranker {
    /// Fetches `repo` (`org/name`, e.g. `ByteDance/ListConRanker`) at `main` from the hub the
    /// environment names ([`Hub::from_env`]: `HF_ENDPOINT`, `HF_TOKEN`, `HF_HOME`,
    /// `HF_HUB_OFFLINE`), or finds it in the local hub cache, and loads it.
    ///
    /// ```no_run
    /// use listconranker::{LoadOptions, Reranker};
    /// let ranker = Reranker::from_pretrained("ByteDance/ListConRanker", LoadOptions::default())?;
    /// # Ok::<(), listconranker::Error>(())
    /// ```
    ///
    /// Another revision, retries or a progress report: [`Hub::fetch_checkpoint`] then
    /// [`crate::Reranker::load`].
    pub fn from_pretrained(repo: &str, options: crate::LoadOptions) -> Result<Self> {
        Self::load(fetch_checkpoint(repo, &FetchOptions::default())?, options)
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_flag(name: &str) -> bool {
    non_empty_env(name).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

impl Hub {
    /// The hub as `huggingface_hub` sees it: `HF_ENDPOINT` (default the hub), `HF_TOKEN` (else
    /// the file `HF_TOKEN_PATH`, else `$HF_HOME/token`), the cache `HF_HUB_CACHE` (else
    /// `$HF_HOME/hub`; `HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`, then
    /// `~/.cache/huggingface`) and `HF_HUB_OFFLINE`.
    pub fn from_env() -> Result<Hub> {
        let endpoint = non_empty_env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let cache_dir = hub_cache_dir()?;
        let token = non_empty_env("HF_TOKEN").or_else(|| {
            let path = non_empty_env("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .or_else(|| cache::hf_home().ok().map(|home| home.join("token")))?;
            let token = std::fs::read_to_string(path).ok()?;
            Some(token.trim().to_string()).filter(|t| !t.is_empty())
        });
        Ok(Hub::new(endpoint, cache_dir)
            .with_token(token)
            .with_offline(env_flag("HF_HUB_OFFLINE")))
    }

    /// A hub at `endpoint` (e.g. `https://huggingface.co` or a mirror) with its cache in
    /// `cache_dir` (the directory that holds `models--{org}--{name}`); no token, online.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Hub {
        Hub {
            endpoint: endpoint.into().trim_end_matches('/').to_string(),
            token: None,
            cache_dir: cache_dir.into(),
            offline: false,
        }
    }

    /// The token sent as `Authorization: Bearer` (gated and private repositories).
    pub fn with_token(mut self, token: Option<String>) -> Hub {
        self.token = token;
        self
    }

    /// Offline: use only what the cache holds (as `HF_HUB_OFFLINE=1`).
    pub fn with_offline(mut self, offline: bool) -> Hub {
        self.offline = offline;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// The URL of one file of `repo` at `revision`.
    pub fn file_url(&self, repo: &str, revision: &str, name: &str) -> String {
        // Branch names such as `refs/pr/1` go into a single path segment.
        let revision = revision.replace('/', "%2F");
        format!("{}/{repo}/resolve/{revision}/{name}", self.endpoint)
    }

    /// Fetches the checkpoint's files (the split layout, the encoder weights, the tokenizer)
    /// of `repo` at `options.revision` into the cache, or finds them there.
    pub fn fetch_checkpoint(&self, repo: &str, options: &FetchOptions) -> Result<Snapshot> {
        check_repo(repo)?;
        check_revision(&options.revision)?;
        let repo_dir = self.cache_dir.join(cache::repo_folder(repo));
        if self.offline {
            return cache::offline_snapshot(&repo_dir, repo, &options.revision);
        }
        let result = Fetch {
            hub: self,
            client: http::Client::new(self.token.clone(), options),
            options,
            repo,
            repo_dir: &repo_dir,
            commit: None,
            files: Vec::new(),
        }
        .run();
        if result.is_err() {
            // Leave no empty cache directories behind (a mistyped repository name, say).
            cache::prune_after_failure(&self.cache_dir, repo);
        }
        result
    }
}

/// Which snapshot a fetch writes into.
#[derive(Debug, Clone, PartialEq)]
enum Commit {
    /// The hub's commit hash (from the listing or X-Repo-Commit).
    Hash(String),
    /// A server without commit hashes: the snapshot is named after the revision.
    RevisionName(String),
}

struct Fetch<'a> {
    hub: &'a Hub,
    client: http::Client,
    options: &'a FetchOptions,
    repo: &'a str,
    repo_dir: &'a Path,
    commit: Option<Commit>,
    files: Vec<FetchedFile>,
}

impl Fetch<'_> {
    fn run(mut self) -> Result<Snapshot> {
        let listing = self
            .client
            .listing(&self.hub.endpoint, self.repo, &self.options.revision);
        if let Some(sha) = listing.as_ref().and_then(|l| l.sha.clone()) {
            self.commit = Some(Commit::Hash(sha));
        }
        let names = listing.map(|l| l.files);
        for name in REQUIRED {
            self.get(name, true, names.as_ref())?;
        }
        let (last, preferred) = WEIGHTS.split_last().expect("weight file names");
        let mut have_weights = false;
        for name in preferred {
            if self.get(name, false, names.as_ref())? {
                have_weights = true;
                break;
            }
        }
        if !have_weights {
            self.get(last, true, names.as_ref())?;
        }
        let mut have_tokenizer = false;
        for name in TOKENIZER {
            let found = self.get(name, false, names.as_ref())?;
            have_tokenizer |= found && (name == "tokenizer.json" || name == "vocab.txt");
        }
        if !have_tokenizer {
            return Err(Error::read_model(
                self.hub.file_url(self.repo, &self.options.revision, ""),
                "the repository has neither tokenizer.json nor vocab.txt",
            ));
        }
        let commit = self.commit.clone().expect("a commit after the first file");
        let dir = cache::snapshot_dir(self.repo_dir, &commit);
        if let Commit::Hash(hash) = &commit {
            cache::write_ref(self.repo_dir, &self.options.revision, hash)?;
        }
        Ok(Snapshot {
            dir,
            commit: match commit {
                Commit::Hash(hash) => Some(hash),
                Commit::RevisionName(_) => None,
            },
            files: self.files,
        })
    }

    /// One file into the cache; `false` when the repository does not have it (an error when
    /// `required`).
    fn get(
        &mut self,
        name: &str,
        required: bool,
        listing: Option<&BTreeSet<String>>,
    ) -> Result<bool> {
        let url = self.hub.file_url(self.repo, &self.options.revision, name);
        if let Some(files) = listing
            && !files.contains(name)
        {
            return if required {
                Err(Error::read_model(
                    &url,
                    format!("{name} is not in the repository (hub listing)"),
                ))
            } else {
                Ok(false)
            };
        }
        let found = download::fetch_file(self, &url, name)?;
        match found {
            Some(file) => {
                self.files.push(file);
                Ok(true)
            }
            None if required => Err(Error::read_model(&url, "not found (HTTP 404)")),
            None => Ok(false),
        }
    }

    fn note(&self, message: &str) {
        self.event(&FetchEvent::Note { message });
    }

    fn event(&self, event: &FetchEvent<'_>) {
        if let Some(progress) = &self.options.progress {
            progress.event(event);
        }
    }

    /// The snapshot a file with `commit` (from its response) goes into; the first file decides
    /// when the listing did not, and every later one must agree.
    fn settle_commit(&mut self, url: &str, commit: Option<String>) -> Result<Commit> {
        let found = match commit {
            Some(hash) => Commit::Hash(hash),
            None => match &self.commit {
                Some(known) => return Ok(known.clone()),
                None => {
                    let revision = &self.options.revision;
                    if cache::is_commit_hash(revision) {
                        Commit::Hash(revision.clone())
                    } else {
                        self.note(&format!(
                            "{url}: the server sent no commit hash (X-Repo-Commit); the \
                             snapshot is named after the revision {revision:?}"
                        ));
                        Commit::RevisionName(revision.clone())
                    }
                }
            },
        };
        match &self.commit {
            None => {
                self.commit = Some(found.clone());
                Ok(found)
            }
            Some(known) if *known == found => Ok(found),
            Some(known) => Err(Error::read_model(
                url,
                format!(
                    "revision {:?} is at {} for this file but at {} for the files before it \
                     (it moved during the fetch, or the server is inconsistent); run again",
                    self.options.revision,
                    describe(&found),
                    describe(known)
                ),
            )),
        }
    }
}

fn describe(commit: &Commit) -> String {
    match commit {
        Commit::Hash(hash) => format!("commit {hash}"),
        Commit::RevisionName(_) => "no commit hash".into(),
    }
}

fn check_repo(repo: &str) -> Result<()> {
    let ok = repo.split('/').count() == 2
        && repo.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "repository {repo:?}: expected `org/name`"
        )))
    }
}

fn check_revision(revision: &str) -> Result<()> {
    let ok = !revision.is_empty()
        && revision
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && revision
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::input(format!(
            "revision {revision:?}: not a branch, tag or commit name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_repo("ByteDance/ListConRanker").is_ok());
        for bad in ["../etc", "a", "a/b/c", "a/..", "a/b c", "/b"] {
            assert_eq!(
                check_repo(bad).unwrap_err().code(),
                "INPUT_INVALID",
                "{bad}"
            );
        }
        assert!(check_revision("refs/pr/1").is_ok());
        assert!(check_revision("v1.0").is_ok());
        for bad in ["", "a//b", "../x", "a b", "x/.."] {
            assert_eq!(
                check_revision(bad).unwrap_err().code(),
                "INPUT_INVALID",
                "{bad}"
            );
        }
    }

    #[test]
    fn file_urls_keep_the_revision_in_one_segment() {
        let hub = Hub::new("http://127.0.0.1:1/", "/nonexistent");
        assert_eq!(
            hub.file_url("org/name", "refs/pr/1", "config.json"),
            "http://127.0.0.1:1/org/name/resolve/refs%2Fpr%2F1/config.json"
        );
    }
}
