//! Requests to the hub: headers, redirects followed by hand (so that the hub's own headers on a
//! redirect to its CDN are kept, as `huggingface_hub` reads them), transient failures told from
//! lasting ones, retries with backoff.

use std::collections::BTreeSet;
use std::time::Duration;

use ureq::Agent;
use ureq::http::{HeaderMap, Response, StatusCode, header};

use super::{FetchEvent, FetchOptions};
use crate::error::Error;

pub(super) type Body = ureq::Body;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// Longest backoff between attempts, and longest `Retry-After` honoured.
const MAX_DELAY: Duration = Duration::from_secs(30);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

pub(super) struct Client {
    agent: Agent,
    token: Option<String>,
    pub(super) retries: u32,
    retry_delay: Duration,
    pub(super) low_speed_limit: u64,
    pub(super) low_speed_time: Duration,
}

/// Why an attempt failed: worth another attempt or not.
#[derive(Debug)]
pub(super) enum Failure {
    Transient {
        reason: String,
        /// The HTTP status, when there was an answer.
        status: Option<StatusCode>,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

impl Failure {
    pub(super) fn transient(reason: impl Into<String>) -> Failure {
        Failure::Transient {
            reason: reason.into(),
            status: None,
            retry_after: None,
        }
    }

    /// The error to report for `url` once no attempt is left.
    pub(super) fn into_error(self, url: &str, attempts: u32) -> Error {
        match self {
            Failure::Fatal(error) => error,
            Failure::Transient { reason, .. } if attempts > 1 => {
                Error::read_model(url, format!("{reason} (gave up after {attempts} attempts)"))
            }
            Failure::Transient { reason, .. } => Error::read_model(url, reason),
        }
    }
}

/// The hub's headers about a file, from whichever answer of a redirect chain carried them.
#[derive(Debug, Default, Clone)]
pub(super) struct Meta {
    /// `X-Repo-Commit`.
    pub commit: Option<String>,
    /// `X-Linked-Etag` (an LFS file's sha256), else `ETag`; `W/` and quotes stripped.
    pub etag: Option<String>,
    /// `X-Linked-Size` (an LFS file's size; the redirect's own Content-Length is not the file's).
    pub linked_size: Option<u64>,
    linked_etag: bool,
}

impl Meta {
    fn absorb(&mut self, headers: &HeaderMap) {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if self.commit.is_none() {
            self.commit = get("x-repo-commit");
        }
        if let Some(etag) = get("x-linked-etag")
            && !self.linked_etag
        {
            self.etag = Some(strip_etag(&etag));
            self.linked_etag = true;
        } else if self.etag.is_none()
            && let Some(etag) = get("etag")
        {
            self.etag = Some(strip_etag(&etag));
        }
        if self.linked_size.is_none() {
            self.linked_size = get("x-linked-size").and_then(|v| v.parse().ok());
        }
    }
}

fn strip_etag(raw: &str) -> String {
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    raw.trim_matches('"').to_string()
}

/// A response at the end of a redirect chain, with the chain's [`Meta`].
pub(super) struct Answer {
    pub response: Response<Body>,
    pub meta: Meta,
}

impl Answer {
    pub(super) fn status(&self) -> StatusCode {
        self.response.status()
    }
}

/// The repository's file names and commit from the hub API.
pub(super) struct Listing {
    pub files: BTreeSet<String>,
    pub sha: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Method {
    Head,
    Get,
}

impl Client {
    pub(super) fn new(token: Option<String>, options: &FetchOptions) -> Client {
        let wait = options.low_speed_time.max(Duration::from_millis(100));
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(wait.max(Duration::from_secs(10))))
            .timeout_recv_response(Some(wait))
            .timeout_per_read(Some(wait))
            .user_agent(concat!("listconranker/", env!("CARGO_PKG_VERSION")))
            .build();
        Client {
            agent: config.into(),
            token,
            retries: options.retries,
            retry_delay: options.retry_delay,
            low_speed_limit: options.low_speed_limit,
            low_speed_time: wait,
        }
    }

    /// One request: no content encoding (sizes and byte ranges are the file's own), the token
    /// (only to the URL's own origin), a Range from `range_from`.
    fn request(
        &self,
        method: Method,
        url: &str,
        range_from: Option<u64>,
        auth: bool,
    ) -> Result<Response<Body>, ureq::Error> {
        let request = match method {
            Method::Head => self.agent.head(url),
            Method::Get => self.agent.get(url),
        };
        let mut request = request.header(header::ACCEPT_ENCODING, "identity");
        if let (true, Some(token)) = (auth, &self.token) {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(start) = range_from {
            request = request.header(header::RANGE, format!("bytes={start}-"));
        }
        request.call()
    }

    /// `method` on `url`, following redirects: every one for GET; for HEAD only those within
    /// the same origin (a renamed repository), stopping at one to another origin (the CDN):
    /// that answer carries the hub's headers, as `huggingface_hub` reads them.
    pub(super) fn send(
        &self,
        method: Method,
        url: &str,
        range_from: Option<u64>,
    ) -> Result<Answer, Failure> {
        let home = origin(url).to_string();
        let mut current = url.to_string();
        let mut meta = Meta::default();
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .request(method, &current, range_from, origin(&current) == home)
                .map_err(|e| transport_failure(&current, e))?;
            meta.absorb(response.headers());
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match location {
                Some(location) if status.is_redirection() && status != StatusCode::NOT_MODIFIED => {
                    let target = resolve(&current, &location);
                    if method == Method::Head && origin(&target) != origin(&current) {
                        return Ok(Answer { response, meta });
                    }
                    current = target;
                }
                _ => return Ok(Answer { response, meta }),
            }
        }
        Err(Failure::Fatal(Error::read_model(
            url,
            format!("more than {MAX_REDIRECTS} redirects"),
        )))
    }

    /// Runs `attempt` until it succeeds, fails for good, or `retries` more attempts have
    /// failed, waiting with exponential backoff in between. `attempt` gets its number (0-based).
    pub(super) fn retry<T>(
        &self,
        url: &str,
        file: &str,
        report: &dyn Fn(&FetchEvent<'_>),
        mut attempt: impl FnMut(u32) -> Result<T, Failure>,
    ) -> Result<T, (Failure, u32)> {
        let attempts = self.retries.saturating_add(1);
        let mut delay = self.retry_delay;
        for n in 0..attempts {
            match attempt(n) {
                Ok(value) => return Ok(value),
                Err(Failure::Transient {
                    reason,
                    retry_after,
                    ..
                }) if n + 1 < attempts => {
                    let wait = match retry_after {
                        Some(after) if after > delay => after.min(MAX_RETRY_AFTER),
                        _ => delay,
                    };
                    report(&FetchEvent::Retrying {
                        file,
                        attempt: n + 2,
                        attempts,
                        delay: wait,
                        reason: &format!("{url}: {reason}"),
                    });
                    std::thread::sleep(wait);
                    delay = (delay * 2).min(MAX_DELAY);
                }
                Err(failure) => return Err((failure, n + 1)),
            }
        }
        unreachable!("at least one attempt")
    }

    /// The repository's file names (and commit) from the hub API, or `None` when the listing
    /// is not available (a mirror without the API: then every known name is probed).
    pub(super) fn listing(&self, endpoint: &str, repo: &str, revision: &str) -> Option<Listing> {
        let revision = revision.replace('/', "%2F");
        let url = format!("{endpoint}/api/models/{repo}/revision/{revision}");
        let mut answer = self.send(Method::Get, &url, None).ok()?;
        if answer.status() != StatusCode::OK {
            return None;
        }
        let text = answer
            .response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .ok()?;
        let json: serde_json::Value = serde_json::from_str(&text).ok()?;
        let siblings = json.get("siblings")?.as_array()?;
        let files: BTreeSet<String> = siblings
            .iter()
            .filter_map(|s| s.get("rfilename")?.as_str().map(str::to_string))
            .collect();
        let sha = json
            .get("sha")
            .and_then(|s| s.as_str())
            .filter(|s| super::cache::is_commit_hash(s))
            .map(str::to_string);
        (!files.is_empty()).then_some(Listing { files, sha })
    }
}

/// What a failed request means: a dropped or timed-out connection may work next time; a host
/// that does not exist or refuses connections will not.
fn transport_failure(url: &str, error: ureq::Error) -> Failure {
    use std::io::ErrorKind::*;
    let transient = match &error {
        ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ConnectionReset
                | ConnectionAborted
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | Interrupted
                | WouldBlock
        ),
        _ => false,
    };
    if transient {
        Failure::transient(format!("{error}"))
    } else {
        Failure::Fatal(Error::read_model(url, error))
    }
}

/// A failure for an answer with an unexpected `status`: 5xx (but 501 and 505), 408 and 429 are
/// transient, the rest lasting.
pub(super) fn status_failure<B>(url: &str, response: &Response<B>) -> Failure {
    let status = response.status();
    let transient = matches!(status.as_u16(), 408 | 429)
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    if transient {
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Failure::Transient {
            reason: format!("HTTP {status}"),
            status: Some(status),
            retry_after,
        }
    } else {
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                " (a gated or private repository needs HF_TOKEN)"
            }
            _ => "",
        };
        Failure::Fatal(Error::read_model(url, format!("HTTP {status}{hint}")))
    }
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).map_or(url.len(), |j| i + 3 + j);
            &url[..end]
        }
        None => "",
    }
}

/// A redirect's `Location` against the URL that answered it.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{}{location}", origin(base))
    } else {
        let path_end = base.find(['?', '#']).unwrap_or(base.len());
        let dir_end = base[..path_end].rfind('/').map_or(path_end, |i| i + 1);
        format!("{}{location}", &base[..dir_end])
    }
}

pub(super) fn content_length<B>(response: &Response<B>) -> Option<u64> {
    response
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes START-END/TOTAL`: START and TOTAL (when not `*`).
pub(super) fn content_range<B>(response: &Response<B>) -> Option<(u64, Option<u64>)> {
    let value = response
        .headers()
        .get(header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = range.split_once('/')?;
    let start = span.split('-').next()?.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_like_a_browser() {
        let base = "http://127.0.0.1:8/org/name/resolve/main/config.json?x=1";
        assert_eq!(origin(base), "http://127.0.0.1:8");
        assert_eq!(
            resolve(base, "https://cdn.example/a"),
            "https://cdn.example/a"
        );
        assert_eq!(resolve(base, "//cdn.example/a"), "http://cdn.example/a");
        assert_eq!(
            resolve(base, "/api/resolve-cache/x"),
            "http://127.0.0.1:8/api/resolve-cache/x"
        );
        assert_eq!(
            resolve(base, "other.json"),
            "http://127.0.0.1:8/org/name/resolve/main/other.json"
        );
        assert_eq!(origin("https://huggingface.co"), "https://huggingface.co");
    }

    #[test]
    fn etags_lose_weakness_and_quotes_and_linked_ones_win() {
        let mut headers = HeaderMap::new();
        headers.insert("etag", "W/\"abc\"".parse().unwrap());
        let mut meta = Meta::default();
        meta.absorb(&headers);
        assert_eq!(meta.etag.as_deref(), Some("abc"));
        let mut linked = HeaderMap::new();
        linked.insert("x-linked-etag", "\"f00d\"".parse().unwrap());
        linked.insert("x-repo-commit", "c0ffee".parse().unwrap());
        linked.insert("x-linked-size", "12".parse().unwrap());
        meta.absorb(&linked);
        meta.absorb(&headers);
        assert_eq!(meta.etag.as_deref(), Some("f00d"));
        assert_eq!(meta.commit.as_deref(), Some("c0ffee"));
        assert_eq!(meta.linked_size, Some(12));
    }
}
