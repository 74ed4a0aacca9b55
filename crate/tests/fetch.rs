//! `listconranker fetch` and `listconranker::hub` against a local stand-in for the Hugging Face
//! hub: a std TcpListener on 127.0.0.1 in a thread, serving the fixture models as
//! `test-org/{fixture}` with the hub's URL layout and headers (`X-Repo-Commit`, `ETag`, and for
//! LFS files a 302 to a CDN path with `X-Linked-Etag` = sha256 and `X-Linked-Size`), Range
//! requests included, and the faults of a bad mirror on demand: dropped connections, ignored
//! ranges, no HEAD, HTML error pages, short or corrupted bodies, trickles, 503s.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use listconranker::hub::{FetchEvent, FetchOptions, Hub as HubClient};
use sha2::{Digest, Sha256};

const REPO: &str = "test-org/zh-tiny";
/// What `main` and the tag `v1` resolve to.
const MAIN_COMMIT: &str = "4f2c8c6b2e0d6a6b5b8e6c1f0a9d3e7b2c1d0e9f";
const V1_COMMIT: &str = "0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a";
const WEIGHTS: [&str; 3] = [
    "model.safetensors",
    "linear_in_embedding.pt",
    "list_transformer.pt",
];
const HTML_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                         <body><h1>Bad Gateway</h1></body></html>\n";

#[derive(Default)]
struct Options {
    /// Answer the hub API's listing (otherwise 404, and the client probes file names).
    listing: bool,
    /// Send half of model.safetensors on the next full GET of it, then close the connection.
    drop_once: AtomicBool,
    /// Answer Range requests with 200 and the whole file.
    ignore_range: bool,
    /// Answer every HEAD with this status (405: a mirror without HEAD).
    head_status: Option<u16>,
    /// Close the connection on every HEAD without an answer.
    head_hangup: bool,
    /// Answer every request with 200 and an HTML page, without the hub's headers.
    html_everywhere: bool,
    /// Answer this file with 200 and an HTML page (a plain ETag, the commit).
    html_for: Option<&'static str>,
    /// GETs of this file announce and send half of it (HEAD announces all of it).
    short_get: Option<&'static str>,
    /// GETs of this file have one byte changed.
    corrupt: Option<&'static str>,
    /// GETs of this file send the headers, then one byte every 500 ms.
    trickle: Option<&'static str>,
    /// The next N GETs of model.safetensors's bytes are answered 503.
    unavailable: AtomicUsize,
    /// No X-Repo-Commit header (a plain mirror).
    no_commit: bool,
}

struct Hub {
    port: u16,
    /// One line per request: `METHOD PATH range=... auth=...`.
    log: Arc<Mutex<Vec<String>>>,
}

impl Hub {
    /// The hub, and its CDN on another port (another origin, as the hub's CDN is another
    /// host: clients stop there for the hub's headers and send no token).
    fn start(options: Options) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let cdn = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cdn_port = cdn.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let options = Arc::new(options);
        for listener in [listener, cdn] {
            let log = log.clone();
            let options = options.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let log = log.clone();
                    let options = options.clone();
                    std::thread::spawn(move || {
                        let _ = serve(stream, &options, &log, cdn_port);
                    });
                }
            });
        }
        Hub { port, log }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[String],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Files the hub keeps in LFS (its HEAD and GET redirect to the CDN).
fn is_lfs(name: &str) -> bool {
    [".safetensors", ".pt", ".bin"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// The ETag the hub sends for a file: an LFS file's sha256; for others the git blob sha1 (here
/// a stand-in of the same shape).
fn etag(name: &str, bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    if is_lfs(name) {
        sha
    } else {
        sha[..40].to_string()
    }
}

fn commit_of(revision: &str) -> Option<&'static str> {
    match revision {
        "main" | MAIN_COMMIT => Some(MAIN_COMMIT),
        "v1" | V1_COMMIT => Some(V1_COMMIT),
        _ => None,
    }
}

fn serve(
    mut stream: TcpStream,
    options: &Options,
    log: &Mutex<Vec<String>>,
    cdn_port: u16,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "range" => range = Some(value.trim().to_string()),
            "authorization" => auth = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    log.lock().unwrap().push(format!(
        "{method} {path} range={} auth={}",
        range.as_deref().unwrap_or("-"),
        auth.as_deref().unwrap_or("-")
    ));
    let head_only = method == "HEAD";
    let not_found = |stream: &mut TcpStream| {
        let body = b"Entry not found";
        respond(
            stream,
            "404 Not Found",
            &[format!("Content-Length: {}", body.len())],
            body,
        )
    };

    if options.html_everywhere {
        let headers = [
            format!("Content-Length: {}", HTML_PAGE.len()),
            "Content-Type: text/html".into(),
        ];
        let body = if head_only {
            &b""[..]
        } else {
            HTML_PAGE.as_bytes()
        };
        return respond(&mut stream, "200 OK", &headers, body);
    }

    // The hub API's repository listing.
    if let Some(revision) = path
        .strip_prefix(&format!("/api/models/{REPO}/revision/"))
        .filter(|_| options.listing)
    {
        let Some(commit) = commit_of(revision) else {
            return not_found(&mut stream);
        };
        let mut names: Vec<String> = std::fs::read_dir(model_dir("zh-tiny"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.push("README.md".into());
        let siblings: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"rfilename": n}))
            .collect();
        let body = serde_json::json!({"id": REPO, "sha": commit, "siblings": siblings}).to_string();
        let headers = [
            format!("Content-Length: {}", body.len()),
            "Content-Type: application/json".into(),
        ];
        let body = if head_only { &b""[..] } else { body.as_bytes() };
        return respond(&mut stream, "200 OK", &headers, body);
    }

    // The CDN behind the hub's LFS redirects: bytes only, none of the hub's headers.
    if let Some(rest) = path.strip_prefix("/cdn/") {
        let Some((model, name)) = rest.split_once('/') else {
            return not_found(&mut stream);
        };
        let file = model_dir(model).join(name);
        if !MODELS.contains(&model) || !file.is_file() {
            return not_found(&mut stream);
        }
        let bytes = std::fs::read(&file)?;
        let headers = vec![format!("ETag: \"cdn-{}\"", &sha256_hex(&bytes)[..16])];
        return send_file(
            &mut stream,
            options,
            name,
            &bytes,
            range,
            head_only,
            headers,
        );
    }

    // /{org}/{model}/resolve/{revision}/{file}
    let resolved = path.strip_prefix("/test-org/").and_then(|rest| {
        let (model, rest) = rest.split_once("/resolve/")?;
        let (revision, name) = rest.split_once('/')?;
        let revision = revision.replace("%2F", "/");
        let commit = commit_of(&revision)?;
        let file = model_dir(model).join(name);
        (MODELS.contains(&model) && !name.contains('/') && !name.is_empty() && file.is_file())
            .then(|| (model.to_string(), name.to_string(), commit, file))
    });
    let Some((model, name, commit, file)) = resolved else {
        return not_found(&mut stream);
    };
    if head_only && options.head_hangup {
        return stream.shutdown(Shutdown::Both);
    }
    if let (true, Some(status)) = (head_only, options.head_status) {
        let reason = if status == 405 {
            "Method Not Allowed"
        } else {
            "Error"
        };
        return respond(
            &mut stream,
            &format!("{status} {reason}"),
            &["Content-Length: 0".into()],
            b"",
        );
    }
    let bytes = std::fs::read(&file)?;
    let mut headers = Vec::new();
    if !options.no_commit {
        headers.push(format!("X-Repo-Commit: {commit}"));
    }
    if options.html_for == Some(name.as_str()) {
        headers.push("ETag: \"page-7\"".into());
        headers.push(format!("Content-Length: {}", HTML_PAGE.len()));
        headers.push("Content-Type: text/html".into());
        let body = if head_only {
            &b""[..]
        } else {
            HTML_PAGE.as_bytes()
        };
        return respond(&mut stream, "200 OK", &headers, body);
    }
    let tag = etag(&name, &bytes);
    if is_lfs(&name) {
        let location = format!("http://127.0.0.1:{cdn_port}/cdn/{model}/{name}");
        let body = format!("Found. Redirecting to {location}");
        headers.extend([
            format!("Location: {location}"),
            format!("X-Linked-Etag: \"{tag}\""),
            format!("X-Linked-Size: {}", bytes.len()),
            format!("ETag: \"{tag}\""),
            format!("Content-Length: {}", body.len()),
        ]);
        let body = if head_only { "" } else { body.as_str() };
        return respond(&mut stream, "302 Found", &headers, body.as_bytes());
    }
    headers.push(format!("ETag: \"{tag}\""));
    send_file(
        &mut stream,
        options,
        &name,
        &bytes,
        range,
        head_only,
        headers,
    )
}

/// A file's bytes (or its headers for HEAD), honouring Range and the injected faults.
fn send_file(
    stream: &mut TcpStream,
    options: &Options,
    name: &str,
    bytes: &[u8],
    range: Option<String>,
    head_only: bool,
    mut headers: Vec<String>,
) -> std::io::Result<()> {
    let get = !head_only;
    if get
        && name == "model.safetensors"
        && options
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        let body = b"Service Unavailable";
        return respond(
            stream,
            "503 Service Unavailable",
            &[format!("Content-Length: {}", body.len())],
            body,
        );
    }
    let mut bytes = bytes.to_vec();
    if get && options.corrupt == Some(name) {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
    }
    if get && options.short_get == Some(name) {
        bytes.truncate(bytes.len() / 2);
    }
    let len = bytes.len();
    if get && options.trickle == Some(name) {
        headers.push(format!("Content-Length: {len}"));
        respond(stream, "200 OK", &headers, b"")?;
        for byte in &bytes {
            std::thread::sleep(Duration::from_millis(500));
            stream.write_all(std::slice::from_ref(byte))?;
            stream.flush()?;
        }
        return Ok(());
    }
    let start = range
        .as_deref()
        .filter(|_| !options.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .map(|n| n.parse::<usize>().unwrap());
    match start {
        Some(start) if start >= len => respond(
            stream,
            "416 Range Not Satisfiable",
            &[
                format!("Content-Range: bytes */{len}"),
                "Content-Length: 0".into(),
            ],
            b"",
        ),
        Some(start) => {
            headers.push(format!("Content-Length: {}", len - start));
            headers.push(format!("Content-Range: bytes {start}-{}/{len}", len - 1));
            respond(
                stream,
                "206 Partial Content",
                &headers,
                if head_only { b"" } else { &bytes[start..] },
            )
        }
        None => {
            headers.push(format!("Content-Length: {len}"));
            if head_only {
                return respond(stream, "200 OK", &headers, b"");
            }
            if name == "model.safetensors" && options.drop_once.swap(false, Ordering::SeqCst) {
                let _ = respond(stream, "200 OK", &headers, &bytes[..len / 2]);
                return stream.shutdown(Shutdown::Both);
            }
            respond(stream, "200 OK", &headers, &bytes)
        }
    }
}

fn fetch(hub: &Hub, home: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_listconranker"));
    command
        .arg("fetch")
        .args(args)
        .args(["--retry-delay", "0.05"])
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", hub.endpoint())
        .env_remove("HF_TOKEN")
        .env_remove("HF_TOKEN_PATH")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("HF_TOKEN", token);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn printed_dir(output: &Output) -> PathBuf {
    assert!(output.status.success(), "fetch failed: {}", stderr(output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    PathBuf::from(stdout.trim())
}

/// A failed run: exit status 1, the error's code and every one of `words` in its message,
/// nothing on stdout.
fn assert_failed(output: &Output, code: &str, words: &[&str]) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(code), "code {code}: {message}");
    for word in words {
        assert!(message.contains(word), "{word:?} in: {message}");
    }
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn repo_dir(home: &Path) -> PathBuf {
    home.join("hub/models--test-org--zh-tiny")
}

fn snapshot(home: &Path) -> PathBuf {
    repo_dir(home).join("snapshots").join(MAIN_COMMIT)
}

fn fixture_bytes(model: &str, name: &str) -> Vec<u8> {
    std::fs::read(model_dir(model).join(name)).unwrap()
}

/// Every file of the zh-tiny fixture arrived byte for byte, and nothing else is left in `dir`.
fn assert_same_files(dir: &Path) {
    assert_same_files_as(dir, "zh-tiny");
}

fn assert_same_files_as(dir: &Path, model: &str) {
    let fixture = model_dir(model);
    let mut want: Vec<_> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut got: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "files in {}", dir.display());
    for name in want {
        let a = std::fs::read(fixture.join(&name)).unwrap();
        let b = std::fs::read(dir.join(&name)).unwrap();
        assert!(a == b, "{name:?} differs from the fixture");
    }
}

/// The cache as huggingface_hub lays it out: each snapshot file a relative symlink to
/// `../../blobs/{etag}` (an LFS file's sha256), `refs/{revision}` holding the commit, no
/// `.incomplete` blob left.
fn assert_hub_layout(home: &Path, model: &str, revision: &str, commit: &str) {
    let repo = home.join(format!("hub/models--test-org--{model}"));
    let snap = repo.join("snapshots").join(commit);
    if revision != commit {
        let stored = std::fs::read_to_string(repo.join("refs").join(revision)).unwrap();
        assert_eq!(stored, commit, "refs/{revision}");
    }
    for entry in std::fs::read_dir(&snap).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = std::fs::read_link(entry.path())
            .unwrap_or_else(|e| panic!("{name} is not a symlink: {e}"));
        let bytes = fixture_bytes(model, &name);
        assert_eq!(
            target,
            Path::new("../../blobs").join(etag(&name, &bytes)),
            "{name}'s link"
        );
        assert_eq!(std::fs::read(entry.path()).unwrap(), bytes, "{name}");
    }
    for entry in std::fs::read_dir(repo.join("blobs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".incomplete"), "left behind: {name}");
    }
}

fn blobs(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_dir(home).join("blobs"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn score(model: &Path) -> String {
    score_with(model, "zh-tiny")
}

/// The CLI's scores on `fixture`'s first compute_score case.
fn score_with(model: &Path, fixture: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .args(["score", "--model", model.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let expected = expected(fixture);
    let mut input = Vec::new();
    for list in &expected.compute_score[0].batch {
        writeln!(input, "{}", serde_json::to_string(list).unwrap()).unwrap();
    }
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "score: {}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

fn weight_gets(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|l| {
            l.starts_with("GET ")
                && l.contains("/resolve/")
                && WEIGHTS.iter().any(|w| l.contains(&format!("/{w} ")))
        })
        .collect()
}

/// GETs of a file's bytes (from the CDN for LFS files).
fn byte_gets<'a>(log: &'a [String], name: &str) -> Vec<&'a String> {
    log.iter()
        .filter(|l| {
            l.starts_with("GET ")
                && l.contains(&format!("/{name} "))
                && (l.contains("/cdn/") || !is_lfs(name))
        })
        .collect()
}

#[test]
fn fetched_checkpoint_scores_like_the_fixture_and_a_second_fetch_is_a_cache_hit() {
    let hub = Hub::start(Options {
        listing: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], Some("secret-token"));
    let dir = printed_dir(&output);
    assert_eq!(dir, snapshot(home.path()));
    assert_same_files(&dir);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    assert_eq!(score(&dir), score(&model_dir("zh-tiny")));
    let log = hub.take_log();
    assert!(
        log.iter().any(|l| l.starts_with("GET /api/models/")),
        "{log:#?}"
    );
    assert_eq!(weight_gets(&log).len(), 3, "{log:#?}");
    assert!(
        log.iter()
            .filter(|l| l.contains("/resolve/"))
            .all(|l| l.ends_with("auth=Bearer secret-token")),
        "HF_TOKEN is sent: {log:#?}"
    );
    // Files outside the split layout (README.md) and absent ones are not asked for.
    assert!(
        !log.iter()
            .any(|l| l.contains("README.md") || l.contains("pytorch_model.bin")),
        "{log:#?}"
    );

    let out = home.path().join("out");
    let again = fetch(
        &hub,
        home.path(),
        &[REPO, "--out", out.to_str().unwrap()],
        None,
    );
    assert_eq!(printed_dir(&again), out);
    assert_same_files(&out);
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{:?}", entry.path());
    }
    let log = hub.take_log();
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && !l.contains("/api/")),
        "a second fetch downloads nothing: {log:#?}"
    );
    assert!(stderr(&again).contains("cached"), "{}", stderr(&again));
}

#[test]
fn a_second_revision_shares_the_blobs_and_a_commit_needs_no_ref() {
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    printed_dir(&fetch(&hub, home.path(), &[REPO], None));
    let before = blobs(home.path());
    assert_eq!(before.len(), 8, "{before:?}");
    hub.take_log();

    let v1 = printed_dir(&fetch(&hub, home.path(), &[REPO, "--revision", "v1"], None));
    assert_eq!(v1, repo_dir(home.path()).join("snapshots").join(V1_COMMIT));
    assert_same_files(&v1);
    assert_hub_layout(home.path(), "zh-tiny", "v1", V1_COMMIT);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    assert_eq!(blobs(home.path()), before, "the same blobs");
    let log = hub.take_log();
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && !l.contains("/api/")),
        "v1 has the same files: nothing downloaded: {log:#?}"
    );

    let by_commit = fetch(&hub, home.path(), &[REPO, "--revision", MAIN_COMMIT], None);
    assert_eq!(printed_dir(&by_commit), snapshot(home.path()));
    let mut refs: Vec<_> = std::fs::read_dir(repo_dir(home.path()).join("refs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    refs.sort();
    assert_eq!(refs, ["main", "v1"]);
}

#[test]
fn an_interrupted_transfer_fails_then_resumes_with_a_range_request() {
    let hub = Hub::start(Options {
        drop_once: AtomicBool::new(true),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let first = fetch(&hub, home.path(), &[REPO, "--retries", "0"], None);
    let url = format!("{}/{REPO}/resolve/main/model.safetensors", hub.endpoint());
    assert_failed(
        &first,
        "MODEL_FETCH_FAILED",
        &[&url, "the transfer of model.safetensors"],
    );
    let snap = snapshot(home.path());
    assert!(
        !snap.join("model.safetensors").exists(),
        "no complete-looking partial file"
    );
    let sha = sha256_hex(&fixture_bytes("zh-tiny", "model.safetensors"));
    let blob = repo_dir(home.path()).join("blobs").join(&sha);
    assert!(!blob.exists());
    let partial = std::fs::metadata(blob.with_extension("incomplete"))
        .unwrap()
        .len();
    let full = fixture_bytes("zh-tiny", "model.safetensors").len() as u64;
    assert!(
        partial > 0 && partial < full,
        "{partial} of {full} bytes kept"
    );
    hub.take_log();

    let second = fetch(&hub, home.path(), &[REPO], None);
    let dir = printed_dir(&second);
    assert_same_files(&dir);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    let log = hub.take_log();
    let expected_range = format!("/model.safetensors range=bytes={partial}-");
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /cdn/") && l.contains(&expected_range)),
        "{log:#?}"
    );
    // The files that had arrived before the break are not downloaded again.
    assert!(byte_gets(&log, "config.json").is_empty(), "{log:#?}");
}

#[test]
fn an_interrupted_transfer_is_resumed_within_the_run() {
    let hub = Hub::start(Options {
        drop_once: AtomicBool::new(true),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    assert_same_files(&printed_dir(&output));
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    assert!(
        stderr(&output).contains("attempt 2 of 4"),
        "{}",
        stderr(&output)
    );
    let log = hub.take_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET /cdn/") && l.contains("model.safetensors range=bytes=")),
        "{log:#?}"
    );
}

#[test]
fn a_server_that_ignores_range_restarts_the_file_cleanly() {
    let hub = Hub::start(Options {
        drop_once: AtomicBool::new(true),
        ignore_range: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    assert_same_files(&printed_dir(&output));
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    // The server ignored the Range header and sent the whole file, which replaced the part.
    let log = hub.take_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("model.safetensors range=bytes=")),
        "{log:#?}"
    );
}

#[test]
fn a_checkpoint_without_safetensors_falls_back_to_pytorch_model_bin() {
    // en-3layer: the BERT weights in pytorch_model.bin (keys prefixed `bert.`), vocab.txt and no
    // tokenizer.json. No hub listing, so the client probes the file names.
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &["test-org/en-3layer"], None);
    let dir = printed_dir(&output);
    assert_same_files_as(&dir, "en-3layer");
    assert_hub_layout(home.path(), "en-3layer", "main", MAIN_COMMIT);
    let log = hub.take_log();
    let asked = |name: &str| {
        log.iter()
            .filter(|l| l.contains(&format!("/resolve/main/{name} ")))
            .count()
    };
    assert!(
        asked("model.safetensors") >= 1,
        "model.safetensors is tried first: {log:#?}"
    );
    assert!(asked("pytorch_model.bin") >= 1, "{log:#?}");
    assert_eq!(
        score_with(&dir, "en-3layer"),
        score_with(&model_dir("en-3layer"), "en-3layer")
    );
}

#[test]
fn a_missing_repository_is_a_clear_error() {
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &["test-org/no-such-model"], None);
    let url = format!(
        "{}/test-org/no-such-model/resolve/main/config.json",
        hub.endpoint()
    );
    assert_failed(&output, "MODEL_FETCH_FAILED", &[&url, "404"]);
    assert!(
        !home.path().join("hub").exists(),
        "no empty cache directories"
    );
}

#[test]
fn a_bad_repository_name_is_refused() {
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &["../etc"], None);
    assert_failed(&output, "INPUT_INVALID", &["org/name"]);
    let bad_revision = fetch(&hub, home.path(), &[REPO, "--revision", "../x"], None);
    assert_failed(&bad_revision, "INPUT_INVALID", &["revision"]);
    assert!(hub.take_log().is_empty());
}

#[test]
fn the_library_fetches_reports_progress_and_finds_the_cache_offline() {
    let hub = Hub::start(Options {
        listing: true,
        ..Options::default()
    });
    let cache = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let options = FetchOptions {
        progress: Some(Arc::new(move |event: &FetchEvent<'_>| {
            let line = match event {
                FetchEvent::Finished { file, cached, .. } => format!("finished {file} {cached}"),
                FetchEvent::Started { file, .. } => format!("started {file}"),
                _ => return,
            };
            seen.lock().unwrap().push(line);
        })),
        ..FetchOptions::default()
    };
    let client = HubClient::new(hub.endpoint(), cache.path());
    let snapshot = client.fetch_checkpoint(REPO, &options).unwrap();
    assert_eq!(
        snapshot.dir,
        cache
            .path()
            .join("models--test-org--zh-tiny/snapshots")
            .join(MAIN_COMMIT)
    );
    assert_eq!(snapshot.commit.as_deref(), Some(MAIN_COMMIT));
    assert_same_files(&snapshot.dir);
    assert_eq!(snapshot.files.len(), 8);
    assert!(snapshot.files.iter().all(|f| !f.cached));
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert!(
        events.contains(&"started model.safetensors".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"finished model.safetensors false".to_string()),
        "{events:?}"
    );

    let again = client.fetch_checkpoint(REPO, &options).unwrap();
    assert!(again.files.iter().all(|f| f.cached), "{:?}", again.files);
    hub.take_log();
    let offline = client
        .clone()
        .with_offline(true)
        .fetch_checkpoint(REPO, &options)
        .unwrap();
    assert_eq!(offline.dir, snapshot.dir);
    assert_eq!(offline.files.len(), 8);
    assert!(hub.take_log().is_empty(), "offline: no request");
    let missing = client
        .with_offline(true)
        .fetch_checkpoint(
            REPO,
            &FetchOptions {
                revision: "v1".into(),
                ..FetchOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(missing.code(), "MODEL_FETCH_FAILED");
    assert!(missing.to_string().contains("HF_HUB_OFFLINE"), "{missing}");
}

#[test]
fn library_errors_carry_their_codes() {
    let hub = Hub::start(Options::default());
    let dir = tempfile::tempdir().unwrap();
    let client = HubClient::new(hub.endpoint(), dir.path());
    let bad = client
        .fetch_checkpoint("no-slash", &FetchOptions::default())
        .unwrap_err();
    assert_eq!(bad.code(), "INPUT_INVALID", "{bad}");
    let missing = client
        .fetch_checkpoint("test-org/nothing", &FetchOptions::default())
        .unwrap_err();
    assert_eq!(missing.code(), "MODEL_FETCH_FAILED", "{missing}");
    // A cache that cannot be created: a regular file stands where its directory would go.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let unwritable = HubClient::new(hub.endpoint(), blocked.join("hub"))
        .fetch_checkpoint(REPO, &FetchOptions::default())
        .unwrap_err();
    assert_eq!(unwritable.code(), "OUTPUT_WRITE_FAILED", "{unwritable}");
}

#[test]
fn a_server_without_commit_hashes_gets_a_snapshot_named_after_the_revision() {
    let hub = Hub::start(Options {
        no_commit: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    let dir = printed_dir(&output);
    assert_eq!(dir, repo_dir(home.path()).join("snapshots/main"));
    assert_same_files(&dir);
    assert!(!repo_dir(home.path()).join("refs").exists());
    assert!(
        stderr(&output).contains("X-Repo-Commit"),
        "{}",
        stderr(&output)
    );
}

/// The Python venv with huggingface_hub (tests/run.sh sets LCR_VENV); `None` (skip, with the
/// reason) when there is none, a failure when LCR_REQUIRE_VENV is set.
/// The reference venv's Python (it has huggingface_hub), or a printed skip (a failure in CI).
fn python() -> Option<PathBuf> {
    common::reference_venv().map(|venv| venv.join("bin/python"))
}

fn run_python(python: &Path, home: &Path, offline: bool, endpoint: &str, script: &str) -> Output {
    let mut command = Command::new(python);
    command
        .args(["-c", script])
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_XET", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    command.output().unwrap()
}

#[test]
fn python_huggingface_hub_finds_the_fetched_files_offline() {
    let Some(python) = python() else { return };
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let dir = printed_dir(&fetch(&hub, home.path(), &[REPO], None));
    hub.take_log();

    let output = run_python(
        &python,
        home.path(),
        true,
        &hub.endpoint(),
        "from huggingface_hub import hf_hub_download; \
         print(hf_hub_download('test-org/zh-tiny', 'config.json', revision='main'))",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    assert_eq!(printed, dir.join("config.json"));
    assert_eq!(
        std::fs::read(&printed).unwrap(),
        fixture_bytes("zh-tiny", "config.json")
    );

    // Every file, and huggingface_hub's own scan of the cache finds nothing amiss.
    let script = "import json\n\
        from huggingface_hub import hf_hub_download, scan_cache_dir\n\
        names = ['config.json', 'model.safetensors', 'linear_in_embedding.pt',\n\
                 'list_transformer.pt', 'tokenizer.json', 'vocab.txt']\n\
        paths = {n: hf_hub_download('test-org/zh-tiny', n, revision='main') for n in names}\n\
        info = scan_cache_dir()\n\
        repo = [r for r in info.repos if r.repo_id == 'test-org/zh-tiny'][0]\n\
        revs = [{'commit': r.commit_hash, 'refs': sorted(r.refs), 'files': r.nb_files}\n\
                for r in repo.revisions]\n\
        print(json.dumps({'paths': paths, 'warnings': [str(w) for w in info.warnings],\n\
                          'revisions': revs}))";
    let output = run_python(&python, home.path(), true, &hub.endpoint(), script);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (name, path) in report["paths"].as_object().unwrap() {
        let path = PathBuf::from(path.as_str().unwrap());
        assert_eq!(path, dir.join(name));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            fixture_bytes("zh-tiny", name),
            "{name}"
        );
    }
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["revisions"],
        serde_json::json!([{"commit": MAIN_COMMIT, "refs": ["main"], "files": 8}]),
    );
    assert!(hub.take_log().is_empty(), "Python stayed offline");
}

#[test]
fn files_python_huggingface_hub_downloaded_are_cache_hits() {
    let Some(python) = python() else { return };
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let output = run_python(
        &python,
        home.path(),
        false,
        &hub.endpoint(),
        "from huggingface_hub import hf_hub_download\n\
         for n in ['config.json', 'model.safetensors', 'list_transformer.pt']:\n\
         \x20   print(hf_hub_download('test-org/zh-tiny', n, revision='main'))",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    hub.take_log();

    let dir = printed_dir(&fetch(&hub, home.path(), &[REPO], None));
    assert_eq!(dir, snapshot(home.path()));
    assert_same_files(&dir);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    let log = hub.take_log();
    for name in ["config.json", "model.safetensors", "list_transformer.pt"] {
        assert!(
            byte_gets(&log, name).is_empty(),
            "{name} was in the cache: {log:#?}"
        );
    }
    assert_eq!(
        byte_gets(&log, "linear_in_embedding.pt").len(),
        1,
        "{log:#?}"
    );
}

#[test]
fn from_pretrained_fetches_then_loads() {
    let hub = Hub::start(Options {
        listing: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let child = |offline: bool| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args([
                "--exact",
                "from_pretrained_in_a_child_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HF_HOME", home.path())
            .env("HF_ENDPOINT", hub.endpoint())
            .env_remove("HF_TOKEN")
            .env_remove("HF_TOKEN_PATH")
            .env_remove("HF_HUB_CACHE")
            .env_remove("HUGGINGFACE_HUB_CACHE");
        if offline {
            command.env("HF_HUB_OFFLINE", "1");
        } else {
            command.env_remove("HF_HUB_OFFLINE");
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            stderr(&output)
        );
    };
    child(false);
    assert_eq!(weight_gets(&hub.take_log()).len(), 3);
    assert_same_files(&snapshot(home.path()));
    child(true);
    assert!(hub.take_log().is_empty(), "offline: from the cache alone");
}

#[test]
#[ignore = "run by from_pretrained_fetches_then_loads in a child process with its own HF_HOME"]
fn from_pretrained_in_a_child_process() {
    let endpoint = std::env::var("HF_ENDPOINT").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "run by from_pretrained_fetches_then_loads, against its local hub"
    );
    let case = &expected("zh-tiny").compute_score[0];
    let options = listconranker::LoadOptions {
        max_length: case.max_length,
        ..listconranker::LoadOptions::default()
    };
    let ranker = listconranker::Reranker::from_pretrained(REPO, options).unwrap();
    let scores = ranker.compute_score(&case.batch).unwrap();
    for (got, want) in scores.iter().zip(&case.scores) {
        let (diff, at) = max_abs_diff(got, want);
        assert!(diff < 1e-5, "{}: |diff| {diff} at {at}", case.name);
    }
}

// Downloads that are wrong fail, and nothing wrong enters the cache.

#[test]
fn a_download_shorter_than_announced_is_refused() {
    let hub = Hub::start(Options {
        short_get: Some("model.safetensors"),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    let full = fixture_bytes("zh-tiny", "model.safetensors").len();
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &["model.safetensors", &format!("announced {full} bytes")],
    );
    let sha = sha256_hex(&fixture_bytes("zh-tiny", "model.safetensors"));
    assert_not_cached(home.path(), &sha, "model.safetensors");
}

#[test]
fn an_html_error_page_is_never_saved() {
    let hub = Hub::start(Options {
        html_everywhere: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    assert_failed(&output, "MODEL_FETCH_FAILED", &["config.json", "HTML"]);
    assert!(
        blobs(home.path()).is_empty(),
        "nothing in the cache: {:?}",
        blobs(home.path())
    );
    assert!(!repo_dir(home.path()).join("snapshots").exists());
    assert!(!repo_dir(home.path()).join("refs").exists());
}

#[test]
fn an_html_page_in_place_of_a_weights_file_is_refused() {
    let hub = Hub::start(Options {
        html_for: Some("list_transformer.pt"),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &["list_transformer.pt", "HTML"],
    );
    let snap = snapshot(home.path());
    assert!(
        snap.join("config.json").is_file(),
        "the files before it are kept"
    );
    assert!(!snap.join("list_transformer.pt").exists());
    assert!(!blobs(home.path()).iter().any(|b| b.starts_with("page-7")));
    assert!(
        !repo_dir(home.path()).join("refs/main").exists(),
        "no ref to an incomplete snapshot"
    );
}

#[test]
fn a_corrupted_download_fails_its_sha256_check() {
    let hub = Hub::start(Options {
        corrupt: Some("model.safetensors"),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO, "--retries", "1"], None);
    let sha = sha256_hex(&fixture_bytes("zh-tiny", "model.safetensors"));
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &["sha256 mismatch", &sha, "2 attempts"],
    );
    assert_eq!(byte_gets(&hub.take_log(), "model.safetensors").len(), 2);
    assert_not_cached(home.path(), &sha, "model.safetensors");
}

#[test]
fn a_stalled_transfer_hits_the_low_speed_timeout() {
    let hub = Hub::start(Options {
        trickle: Some("model.safetensors"),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = fetch(
        &hub,
        home.path(),
        &[
            REPO,
            "--retries",
            "1",
            "--low-speed-limit",
            "1024",
            "--low-speed-time",
            "1",
        ],
        None,
    );
    let elapsed = started.elapsed();
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &["stalled", "model.safetensors"],
    );
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    assert_eq!(byte_gets(&hub.take_log(), "model.safetensors").len(), 2);
    let sha = sha256_hex(&fixture_bytes("zh-tiny", "model.safetensors"));
    assert!(!blobs(home.path()).contains(&sha));
    assert!(!snapshot(home.path()).join("model.safetensors").exists());
}

#[test]
fn transient_5xx_answers_are_retried() {
    let hub = Hub::start(Options {
        unavailable: AtomicUsize::new(2),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    assert_same_files(&printed_dir(&output));
    assert!(stderr(&output).contains("503"), "{}", stderr(&output));
    assert_eq!(byte_gets(&hub.take_log(), "model.safetensors").len(), 3);
}

#[test]
fn a_lasting_5xx_fails_after_the_retries() {
    let hub = Hub::start(Options {
        unavailable: AtomicUsize::new(1000),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO, "--retries", "2"], None);
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &["model.safetensors", "503", "3 attempts"],
    );
    assert_eq!(byte_gets(&hub.take_log(), "model.safetensors").len(), 3);
    assert!(!snapshot(home.path()).join("model.safetensors").exists());
}

#[test]
fn a_mirror_without_head_is_fetched_with_get() {
    let hub = Hub::start(Options {
        head_status: Some(405),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO], None);
    let dir = printed_dir(&output);
    assert_eq!(dir, snapshot(home.path()));
    assert_same_files(&dir);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    let log = hub.take_log();
    // One GET per file: the answer to the metadata GET is the download.
    assert_eq!(byte_gets(&log, "config.json").len(), 1, "{log:#?}");
    assert_eq!(byte_gets(&log, "model.safetensors").len(), 1, "{log:#?}");

    // A second run: the files are cache hits, whose GETs are not read.
    let again = fetch(&hub, home.path(), &[REPO], None);
    assert_same_files(&printed_dir(&again));
    assert!(stderr(&again).contains("cached"), "{}", stderr(&again));
}

#[test]
fn a_mirror_that_hangs_up_on_head_is_fetched_with_get() {
    let hub = Hub::start(Options {
        head_hangup: true,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &[REPO, "--retries", "1"], None);
    let dir = printed_dir(&output);
    assert_same_files(&dir);
    assert_hub_layout(home.path(), "zh-tiny", "main", MAIN_COMMIT);
    assert!(
        stderr(&output).contains("asking with GET"),
        "{}",
        stderr(&output)
    );
    let log = hub.take_log();
    let heads = log.iter().filter(|l| l.starts_with("HEAD ")).count();
    assert_eq!(heads, 2 * 8, "two HEADs per file: {log:#?}");
}

#[test]
fn an_unreachable_server_fails_without_retrying_or_a_get() {
    // A port nothing listens on (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_listconranker"))
        .args(["fetch", REPO])
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    assert_failed(
        &output,
        "MODEL_FETCH_FAILED",
        &[&format!("127.0.0.1:{port}"), "config.json"],
    );
    assert!(!stderr(&output).contains("attempt"), "{}", stderr(&output));
    assert!(!home.path().join("hub").exists());
}

/// Neither a blob of `sha` nor the snapshot's `file` entered the cache.
fn assert_not_cached(home: &Path, sha: &str, file: &str) {
    let blobs = blobs(home);
    assert!(!blobs.iter().any(|b| b.starts_with(sha)), "{blobs:?}");
    assert!(
        !snapshot(home).join(file).exists(),
        "{file} is in the snapshot"
    );
}
