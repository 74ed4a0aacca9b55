//! `listconranker fetch` against a local stand-in for the Hugging Face hub: a std TcpListener
//! in a thread serving the fixture models as `test-org/{fixture}` under
//! `/{repo}/resolve/{revision}/{file}` (Range requests included), that can drop the connection
//! halfway through model.safetensors.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

const REPO: &str = "test-org/zh-tiny";
const WEIGHTS: [&str; 3] = [
    "model.safetensors",
    "linear_in_embedding.pt",
    "list_transformer.pt",
];

#[derive(Default)]
struct Options {
    /// Answer the hub API's listing (otherwise 404, and the client probes file names).
    listing: bool,
    /// Send half of model.safetensors on the next full GET of it, then close the connection.
    drop_once: AtomicBool,
    /// Answer Range requests with 200 and the whole file.
    ignore_range: bool,
}

struct Hub {
    port: u16,
    /// One line per request: `METHOD PATH range=... auth=...`.
    log: Arc<Mutex<Vec<String>>>,
}

impl Hub {
    fn start(options: Options) -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let options = Arc::new(options);
        let server_log = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = server_log.clone();
                let options = options.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &options, &log);
                });
            }
        });
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

fn serve(
    mut stream: TcpStream,
    options: &Options,
    log: &Mutex<Vec<String>>,
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
    let fixture = model_dir("zh-tiny");

    if path == format!("/api/models/{REPO}/revision/main") && options.listing {
        let mut names: Vec<String> = std::fs::read_dir(&fixture)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.push("README.md".into());
        let siblings: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"rfilename": n}))
            .collect();
        let body = serde_json::json!({"id": REPO, "siblings": siblings}).to_string();
        let headers = [
            format!("Content-Length: {}", body.len()),
            "Content-Type: application/json".into(),
        ];
        return respond(
            &mut stream,
            "200 OK",
            &headers,
            if head_only { b"" } else { body.as_bytes() },
        );
    }

    let file = path
        .strip_prefix("/test-org/")
        .and_then(|rest| rest.split_once("/resolve/main/"))
        .filter(|(model, name)| MODELS.contains(model) && !name.contains('/') && !name.is_empty())
        .map(|(model, name)| model_dir(model).join(name))
        .filter(|p| p.is_file());
    let Some(file) = file else {
        let body = b"Entry not found";
        return respond(
            &mut stream,
            "404 Not Found",
            &[format!("Content-Length: {}", body.len())],
            body,
        );
    };
    let bytes = std::fs::read(&file)?;
    let len = bytes.len();
    let start = range
        .as_deref()
        .filter(|_| !options.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .map(|n| n.parse::<usize>().unwrap());
    match start {
        Some(start) if start >= len => respond(
            &mut stream,
            "416 Range Not Satisfiable",
            &[
                format!("Content-Range: bytes */{len}"),
                "Content-Length: 0".into(),
            ],
            b"",
        ),
        Some(start) => {
            let headers = [
                format!("Content-Length: {}", len - start),
                format!("Content-Range: bytes {start}-{}/{len}", len - 1),
            ];
            respond(
                &mut stream,
                "206 Partial Content",
                &headers,
                if head_only { b"" } else { &bytes[start..] },
            )
        }
        None => {
            let headers = [format!("Content-Length: {len}")];
            if head_only {
                return respond(&mut stream, "200 OK", &headers, b"");
            }
            if path.ends_with("/model.safetensors")
                && options.drop_once.swap(false, Ordering::SeqCst)
            {
                let _ = respond(&mut stream, "200 OK", &headers, &bytes[..len / 2]);
                return stream.shutdown(Shutdown::Both);
            }
            respond(&mut stream, "200 OK", &headers, &bytes)
        }
    }
}

fn fetch(hub: &Hub, home: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_listconranker"));
    command
        .arg("fetch")
        .args(args)
        .env("HF_HOME", home)
        .env("HF_ENDPOINT", hub.endpoint())
        .env_remove("HF_TOKEN")
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

fn snapshot(home: &Path) -> PathBuf {
    home.join("hub/models--test-org--zh-tiny/snapshots/main")
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
        .filter(|l| l.starts_with("GET ") && WEIGHTS.iter().any(|w| l.contains(&format!("/{w} "))))
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
    let log = hub.take_log();
    assert!(
        weight_gets(&log).is_empty(),
        "a second fetch downloads nothing: {log:#?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("/resolve/")),
        "{log:#?}"
    );
    assert!(stderr(&again).contains("cached"), "{}", stderr(&again));
}

#[test]
fn an_interrupted_transfer_fails_then_resumes_with_a_range_request() {
    let hub = Hub::start(Options {
        drop_once: AtomicBool::new(true),
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let first = fetch(&hub, home.path(), &[REPO], None);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let message = stderr(&first);
    eprintln!("first run:\n{message}");
    let url = format!("{}/{REPO}/resolve/main/model.safetensors", hub.endpoint());
    assert!(message.contains(&url), "{message}");
    let snap = snapshot(home.path());
    assert!(
        !snap.join("model.safetensors").exists(),
        "no complete-looking partial file"
    );
    let partial = std::fs::metadata(snap.join("model.safetensors.incomplete"))
        .unwrap()
        .len();
    let full = std::fs::metadata(model_dir("zh-tiny").join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        partial > 0 && partial < full,
        "{partial} of {full} bytes kept"
    );
    hub.take_log();

    let second = fetch(&hub, home.path(), &[REPO], None);
    let dir = printed_dir(&second);
    assert_same_files(&dir);
    let log = hub.take_log();
    let expected_range =
        format!("GET /{REPO}/resolve/main/model.safetensors range=bytes={partial}-");
    assert!(
        log.iter().any(|l| l.starts_with(&expected_range)),
        "{log:#?}"
    );
    // The files that had arrived before the break are not downloaded again.
    assert!(
        !log.iter()
            .any(|l| l.starts_with("GET ") && l.contains("/main/config.json ")),
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
    let first = fetch(&hub, home.path(), &[REPO], None);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    hub.take_log();
    let second = fetch(&hub, home.path(), &[REPO], None);
    assert_same_files(&printed_dir(&second));
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
    let log = hub.take_log();
    let gets = |name: &str| {
        log.iter()
            .filter(|l| l.contains(&format!("/resolve/main/{name} ")))
            .count()
    };
    assert!(
        gets("model.safetensors") >= 1,
        "model.safetensors is tried first: {log:#?}"
    );
    assert!(gets("pytorch_model.bin") >= 1, "{log:#?}");
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
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    let url = format!(
        "{}/test-org/no-such-model/resolve/main/config.json",
        hub.endpoint()
    );
    assert!(
        message.contains(&url) && message.contains("404"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
    let cache = home.path().join("hub/models--test-org--no-such-model");
    assert!(!cache.exists(), "no empty cache directories");
}

#[test]
fn a_bad_repository_name_is_refused() {
    let hub = Hub::start(Options::default());
    let home = tempfile::tempdir().unwrap();
    let output = fetch(&hub, home.path(), &["../etc"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("org/name"), "{}", stderr(&output));
    assert!(hub.take_log().is_empty());
}
