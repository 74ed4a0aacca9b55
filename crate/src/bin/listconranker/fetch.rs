//! `listconranker fetch`: a checkpoint from the Hugging Face hub into the hub's local cache
//! (`$HF_HOME/hub/models--{org}--{name}/snapshots/{revision}/`), with progress, cache hits and
//! resumed transfers, ready for `score`, `bench`, `eval` and `convert`.
//!
//! Every file is written to `{file}.incomplete` and renamed only once all of its bytes have
//! arrived, so a file under its own name is always complete. A later run resumes an
//! `.incomplete` file with an HTTP Range request (a server that answers 200 instead of 206
//! restarts it from the beginning), and skips a file whose size matches the server's
//! Content-Length.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ureq::Agent;
use ureq::http::{Response, StatusCode, header};

type Request = ureq::RequestBuilder<ureq::typestate::WithoutBody>;

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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

#[derive(Args)]
pub struct FetchArgs {
    /// Hub repository, `org/name` (e.g. ByteDance/ListConRanker).
    repo: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Also place the files in this directory (hard links where possible, copies otherwise)
    /// and print it instead of the cache directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Where to fetch from and where to keep the files: the hub's environment variables.
struct Hub {
    endpoint: String,
    token: Option<String>,
    agent: Agent,
}

pub fn run(args: &FetchArgs) -> Result<(), String> {
    check_repo(&args.repo)?;
    check_revision(&args.revision)?;
    let hub = Hub::from_env();
    let snapshot = hf_home()?
        .join("hub")
        .join(format!("models--{}", args.repo.replace('/', "--")))
        .join("snapshots")
        .join(args.revision.replace('/', "--"));
    fs::create_dir_all(&snapshot).map_err(|e| format!("creating {}: {e}", snapshot.display()))?;
    let result = fetch_into(args, &hub, &snapshot);
    if result.is_err() {
        // Leave no empty cache directories behind (a mistyped repository name, say).
        for dir in snapshot.ancestors().take(3) {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
    result
}

fn fetch_into(args: &FetchArgs, hub: &Hub, snapshot: &Path) -> Result<(), String> {
    let listing = hub.listing(&args.repo, &args.revision);
    let mut fetched = Vec::new();
    let mut get = |name: &str, required: bool| -> Result<bool, String> {
        let url = hub.file_url(&args.repo, &args.revision, name);
        if let Some(files) = &listing
            && !files.contains(name)
        {
            return if required {
                Err(format!(
                    "{url}: {name} is not in the repository (hub listing)"
                ))
            } else {
                Ok(false)
            };
        }
        match hub.download(&url, &snapshot.join(name), name)? {
            Some(()) => {
                fetched.push(name.to_string());
                Ok(true)
            }
            None if required => Err(format!("{url}: not found (404)")),
            None => Ok(false),
        }
    };
    for name in REQUIRED {
        get(name, true)?;
    }
    let (last, preferred) = WEIGHTS.split_last().expect("weight file names");
    let mut have_weights = false;
    for name in preferred {
        if get(name, false)? {
            have_weights = true;
            break;
        }
    }
    if !have_weights {
        get(last, true)?;
    }
    let mut have_tokenizer = false;
    for name in TOKENIZER {
        let found = get(name, false)?;
        have_tokenizer |= found && (name == "tokenizer.json" || name == "vocab.txt");
    }
    if !have_tokenizer {
        return Err(format!(
            "{}: the repository has neither tokenizer.json nor vocab.txt",
            hub.file_url(&args.repo, &args.revision, "")
        ));
    }

    let dir = match &args.out {
        Some(out) => {
            place(snapshot, out, &fetched)?;
            out.clone()
        }
        None => snapshot.to_path_buf(),
    };
    eprintln!("{} files in {}", fetched.len(), dir.display());
    println!("{}", dir.display());
    Ok(())
}

fn check_repo(repo: &str) -> Result<(), String> {
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
        Err(format!("repository {repo:?}: expected `org/name`"))
    }
}

fn check_revision(revision: &str) -> Result<(), String> {
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
        Err(format!(
            "revision {revision:?}: not a branch, tag or commit name"
        ))
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
fn hf_home() -> Result<PathBuf, String> {
    if let Some(home) = non_empty_env("HF_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(cache) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(cache).join("huggingface"));
    }
    let home = non_empty_env("HOME")
        .or_else(|| non_empty_env("USERPROFILE"))
        .ok_or("no HF_HOME and no home directory for the cache")?;
    Ok(PathBuf::from(home).join(".cache").join("huggingface"))
}

/// Hard links (same file system) or copies of the fetched files in `out`.
fn place(snapshot: &Path, out: &Path, names: &[String]) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for name in names {
        let from = snapshot.join(name);
        let to = out.join(name);
        if same_file(&from, &to) {
            continue;
        }
        match fs::remove_file(&to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(format!("replacing {}: {e}", to.display()));
            }
            _ => {}
        }
        if fs::hard_link(&from, &to).is_err() {
            // Copy under a temporary name so that `to` never holds part of the file.
            let partial = with_suffix(&to, ".incomplete");
            fs::copy(&from, &partial)
                .and_then(|_| fs::rename(&partial, &to))
                .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn content_length<B>(response: &Response<B>) -> Option<u64> {
    response
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` answer.
fn content_range_start<B>(response: &Response<B>) -> Option<u64> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

impl Hub {
    fn from_env() -> Hub {
        let endpoint = non_empty_env("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("listconranker/", env!("CARGO_PKG_VERSION")))
            .build();
        Hub {
            endpoint,
            token: non_empty_env("HF_TOKEN"),
            agent: config.into(),
        }
    }

    fn file_url(&self, repo: &str, revision: &str, name: &str) -> String {
        // Branch names such as `refs/pr/1` go into a single path segment.
        let revision = revision.replace('/', "%2F");
        format!("{}/{repo}/resolve/{revision}/{name}", self.endpoint)
    }

    fn get(&self, url: &str) -> Request {
        self.with_headers(self.agent.get(url))
    }

    fn head(&self, url: &str) -> Request {
        self.with_headers(self.agent.head(url))
    }

    /// No content encoding (sizes and byte ranges are the file's own), and the token if any.
    fn with_headers(&self, request: Request) -> Request {
        let request = request.header(header::ACCEPT_ENCODING, "identity");
        match &self.token {
            Some(token) => request.header(header::AUTHORIZATION, format!("Bearer {token}")),
            None => request,
        }
    }

    /// The repository's file names from the hub API, or `None` when the listing is not
    /// available (then every known name is probed).
    fn listing(&self, repo: &str, revision: &str) -> Option<BTreeSet<String>> {
        let revision = revision.replace('/', "%2F");
        let url = format!("{}/api/models/{repo}/revision/{revision}", self.endpoint);
        let mut response = self.get(&url).call().ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let siblings = json.get("siblings")?.as_array()?;
        let names: BTreeSet<String> = siblings
            .iter()
            .filter_map(|s| s.get("rfilename")?.as_str().map(str::to_string))
            .collect();
        (!names.is_empty()).then_some(names)
    }

    /// Downloads `url` into `dest` (through `dest.incomplete`); `None` when the server answers
    /// 404. A complete `dest` whose size matches the server's Content-Length is kept.
    fn download(&self, url: &str, dest: &Path, name: &str) -> Result<Option<()>, String> {
        let head = self.head(url).call().map_err(|e| format!("{url}: {e}"))?;
        match head.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            status if !status.is_success() => return Err(http_error(url, status)),
            _ => {}
        }
        let expected = content_length(&head);
        if let Ok(meta) = fs::metadata(dest) {
            if meta.is_file() && expected.is_none_or(|len| len == meta.len()) {
                eprintln!("  {name:<28} {:>12} bytes  (cached)", meta.len());
                return Ok(Some(()));
            }
        }

        let partial = with_suffix(dest, ".incomplete");
        let mut offset = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if expected.is_some_and(|len| offset > len) {
            offset = 0;
        }
        if offset > 0 && expected == Some(offset) {
            // Every byte arrived but the rename did not happen.
            return finish(&partial, dest, url, name, offset).map(Some);
        }

        let mut request = self.get(url);
        if offset > 0 {
            request = request.header(header::RANGE, format!("bytes={offset}-"));
        }
        let mut response = request.call().map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let (mut file, start) = match status {
            StatusCode::PARTIAL_CONTENT if offset > 0 => {
                if content_range_start(&response) != Some(offset) {
                    return Err(format!(
                        "{url}: the server answered the range request from byte {offset} with \
                         another range"
                    ));
                }
                let file = OpenOptions::new()
                    .append(true)
                    .open(&partial)
                    .map_err(|e| format!("opening {}: {e}", partial.display()))?;
                (file, offset)
            }
            StatusCode::OK => {
                // A fresh transfer, or a server that ignores Range: start from byte 0.
                let file = File::create(&partial)
                    .map_err(|e| format!("creating {}: {e}", partial.display()))?;
                (file, 0)
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                // The partial file does not fit the server's file: drop it, try again next run.
                let _ = fs::remove_file(&partial);
                return Err(format!(
                    "{url}: range from byte {offset} not satisfiable (the file changed on the \
                     server); removed the partial download, run again"
                ));
            }
            StatusCode::NOT_FOUND => return Ok(None),
            status => return Err(http_error(url, status)),
        };
        let total = match (status, content_length(&response)) {
            (StatusCode::PARTIAL_CONTENT, Some(rest)) => Some(start + rest),
            (StatusCode::OK, Some(len)) => Some(len),
            _ => expected,
        };

        let bar = ProgressBar::new(total.unwrap_or(0));
        let template = if total.is_some() {
            "  {prefix:<28} {wide_bar} {bytes}/{total_bytes} [{bytes_per_sec}, ETA {eta}]"
        } else {
            "  {prefix:<28} {bytes} [{bytes_per_sec}]"
        };
        bar.set_style(ProgressStyle::with_template(template).expect("a valid progress template"));
        bar.set_prefix(name.to_string());
        bar.set_position(start);
        if start > 0 {
            bar.println(format!("  {name}: resuming from byte {start}"));
        }

        let mut reader = response.body_mut().as_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut written = start;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    bar.abandon();
                    let _ = file.flush();
                    return Err(format!(
                        "{url}: transfer of {name} broke off after {written} bytes ({e}); \
                         run again to resume"
                    ));
                }
            };
            file.write_all(&buffer[..n])
                .map_err(|e| format!("writing {}: {e}", partial.display()))?;
            written += n as u64;
            bar.set_position(written);
        }
        bar.finish_and_clear();
        file.sync_all()
            .map_err(|e| format!("writing {}: {e}", partial.display()))?;
        drop(file);
        if let Some(total) = total
            && written != total
        {
            return Err(format!(
                "{url}: transfer of {name} ended after {written} of {total} bytes; run again to \
                 resume"
            ));
        }
        finish(&partial, dest, url, name, written).map(Some)
    }
}

fn finish(partial: &Path, dest: &Path, url: &str, name: &str, bytes: u64) -> Result<(), String> {
    fs::rename(partial, dest).map_err(|e| {
        format!(
            "{url}: renaming {} to {}: {e}",
            partial.display(),
            dest.display()
        )
    })?;
    eprintln!("  {name:<28} {bytes:>12} bytes");
    Ok(())
}

fn http_error(url: &str, status: StatusCode) -> String {
    let hint = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            " (a gated or private repository needs HF_TOKEN)"
        }
        _ => "",
    };
    format!("{url}: HTTP {status}{hint}")
}
