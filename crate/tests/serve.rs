//! The HTTP API (`listconranker::serve`) on loopback with the zh-tiny fixture: every endpoint's
//! answers against the engine's scores (and the PyTorch reference's through the golden
//! fixtures), ordering and top-n, error codes and statuses, the API key, CORS, limits, loading
//! and shutdown.
#![cfg(feature = "serve")]

mod common;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use listconranker::serve::{BatchOptions, Limits, ServeOptions, serve};
use listconranker::{LoadOptions, Reranker};
use serde_json::{Value, json};

/// A server on an ephemeral loopback port, stopped (gracefully) when dropped.
struct Server {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(options: ServeOptions) -> Self {
        Self::start_with(options, || {
            Reranker::load(common::model_dir("zh-tiny"), LoadOptions::default())
        })
    }

    fn start_with(
        options: ServeOptions,
        load: impl FnOnce() -> listconranker::Result<Reranker> + Send + 'static,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, load, options, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let server = Self {
            address: address.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
        };
        server.wait_ready();
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok(response) = agent().get(&self.url("/health")).call()
                && response.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_with(path, body, &[])
    }

    fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = agent().post(&self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send(body.to_string()))
    }

    fn get(&self, path: &str) -> (u16, String) {
        let mut response = agent().get(&self.url(path)).call().unwrap();
        (
            response.status().as_u16(),
            response.body_mut().read_to_string().unwrap(),
        )
    }

    /// Stops the server (as SIGTERM does) and waits for it to finish.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A client that returns error statuses as answers instead of errors.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, Value) {
    let mut response = result.unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn engine() -> Reranker {
    Reranker::load(common::model_dir("zh-tiny"), LoadOptions::default()).unwrap()
}

#[test]
fn score_equals_the_engine_and_the_reference() {
    let server = Server::start(ServeOptions::default());
    let ranker = engine();
    let expected = common::expected("zh-tiny");
    for case in expected
        .compute_score
        .iter()
        .filter(|c| c.max_length == 512)
    {
        let (status, body) = server.post("/v1/score", &json!({ "lists": case.batch }));
        assert_eq!(status, 200, "{}: {body}", case.name);
        let direct = ranker.compute_score(&case.batch).unwrap();
        for (list, (got, want)) in body["scores"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&direct)
            .enumerate()
        {
            let got = floats(got);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-6,
                    "{} list {list}: {g} vs {w}",
                    case.name
                );
            }
            let (worst, _) = common::max_abs_diff(&got, &case.scores[list]);
            assert!(worst <= 1e-5, "{}: {worst} from the reference", case.name);
        }
    }
    for case in expected.iterative.iter().filter(|c| c.max_length == 512) {
        let (status, body) = server.post(
            "/v1/score",
            &json!({ "lists": [case.list], "iterative": true }),
        );
        assert_eq!(status, 200, "{}: {body}", case.name);
        let got = floats(&body["scores"][0]);
        let (worst, _) = common::max_abs_diff(&got, &case.scores);
        assert!(
            worst <= 1e-5,
            "{} iterative: {worst} from the reference",
            case.name
        );
    }
}

#[test]
fn rerank_endpoints_sort_best_first_with_the_engines_scores() {
    let server = Server::start(ServeOptions::default());
    let ranker = engine();
    let query = "什么是机器学习";
    let texts = [
        "机器学习是人工智能的一个分支。",
        "今天天气很好。",
        "深度学习使用神经网络。",
        "我喜欢吃苹果。",
    ];
    let direct = ranker.rerank(query, &texts, None).unwrap();

    // text-embeddings-inference's shape.
    let (status, body) = server.post(
        "/rerank",
        &json!({ "query": query, "texts": texts, "return_text": true, "truncate": true }),
    );
    assert_eq!(status, 200, "{body}");
    let ranks = body.as_array().unwrap();
    assert_eq!(ranks.len(), texts.len());
    for (rank, want) in ranks.iter().zip(&direct) {
        assert_eq!(rank["index"].as_u64().unwrap() as usize, want.index);
        assert!((rank["score"].as_f64().unwrap() as f32 - want.score).abs() <= 1e-6);
        assert_eq!(rank["text"], texts[want.index]);
    }
    let (_, raw) = server.post(
        "/rerank",
        &json!({ "query": query, "texts": texts, "raw_scores": true }),
    );
    let best = direct[0].score as f64;
    let logit = (best / (1.0 - best)).ln();
    assert!((raw[0]["score"].as_f64().unwrap() - logit).abs() <= 1e-4);
    assert!(raw[0].get("text").is_none());

    // Cohere / Jina's shape: strings or {text}, top_n, return_documents.
    let documents = json!([texts[0], { "text": texts[1] }, texts[2], { "text": texts[3] }]);
    let (status, body) = server.post(
        "/v1/rerank",
        &json!({ "model": "x", "query": query, "documents": documents, "top_n": 2, "return_documents": true }),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (result, want) in results.iter().zip(&direct) {
        assert_eq!(result["index"].as_u64().unwrap() as usize, want.index);
        assert!((result["relevance_score"].as_f64().unwrap() as f32 - want.score).abs() <= 1e-6);
        assert_eq!(result["document"]["text"], texts[want.index]);
    }

    // Past 20 documents: iterative inference, as `Reranker::rerank`.
    let many: Vec<String> = (0..30)
        .map(|i| format!("文档 {i} 机器学习 {}", i * 7 % 11))
        .collect();
    let direct = ranker.rerank(query, &many, Some(5)).unwrap();
    let (status, body) = server.post(
        "/v1/rerank",
        &json!({ "query": query, "documents": many, "top_n": 5 }),
    );
    assert_eq!(status, 200, "{body}");
    for (result, want) in body["results"].as_array().unwrap().iter().zip(&direct) {
        assert_eq!(result["index"].as_u64().unwrap() as usize, want.index);
        assert!(result.get("document").is_none());
    }
}

#[test]
fn bad_requests_get_their_code_and_status() {
    let options = ServeOptions {
        limits: Limits {
            max_body_bytes: 4096,
            max_texts: 5,
            max_chars: 50,
        },
        ..ServeOptions::default()
    };
    let server = Server::start(options);
    let cases: [(&str, Value, u16, &str); 7] = [
        (
            "/v1/score",
            json!({ "lists": [["only a query"]] }),
            400,
            "INPUT_INVALID",
        ),
        ("/v1/score", json!({ "lists": [] }), 400, "INPUT_INVALID"),
        (
            "/v1/score",
            json!({ "list": [["q", "p"]] }),
            400,
            "INPUT_INVALID",
        ),
        (
            "/rerank",
            json!({ "query": "q", "texts": [] }),
            400,
            "INPUT_INVALID",
        ),
        (
            "/rerank",
            json!({ "query": "q", "texts": ["a", "b", "c", "d", "e"] }),
            413,
            "INPUT_TOO_LARGE",
        ),
        (
            "/v1/rerank",
            json!({ "query": "q", "documents": ["x".repeat(51)] }),
            413,
            "INPUT_TOO_LARGE",
        ),
        (
            "/v1/rerank",
            json!({ "query": "q", "documents": ["y".repeat(5000)] }),
            413,
            "INPUT_TOO_LARGE",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, answer) = server.post(path, &body);
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {answer}"
        );
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // Not JSON at all.
    let (status, answer) = answer(agent().post(&server.url("/v1/score")).send("{not json"));
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("INPUT_INVALID"))
    );
    let (status, _) = server.get("/nowhere");
    assert_eq!(status, 404);

    // Errors are counted by code.
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("listconranker_errors_total{code=\"INPUT_TOO_LARGE\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("listconranker_requests_total{endpoint=\"/v1/score\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("listconranker_request_duration_seconds_count"));
}

#[test]
fn the_api_key_is_required_except_for_health() {
    let server = Server::start(ServeOptions {
        api_key: Some("s3cret".into()),
        ..ServeOptions::default()
    });
    let body = json!({ "lists": [["q", "p"]] });
    let (status, answer) = server.post("/v1/score", &body);
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let (status, _) = server.post_with("/v1/score", &body, &[("Authorization", "Bearer s3cre")]);
    assert_eq!(status, 401);
    let (status, _) = server.post_with("/v1/score", &body, &[("Authorization", "Bearer s3cret")]);
    assert_eq!(status, 200);
    let (status, _) = server.get("/health");
    assert_eq!(status, 200);
    let (status, _) = server.get("/info");
    assert_eq!(status, 401);
}

#[test]
fn cors_is_off_unless_an_origin_is_given() {
    let preflight = |server: &Server| {
        agent()
            .options(&server.url("/v1/rerank"))
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "POST")
            .call()
            .unwrap()
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let closed = Server::start(ServeOptions::default());
    assert_eq!(preflight(&closed), None);
    let open = Server::start(ServeOptions {
        cors_origin: Some("https://app.example".into()),
        api_key: Some("k".into()),
        ..ServeOptions::default()
    });
    assert_eq!(preflight(&open).as_deref(), Some("https://app.example"));
    // A page reads error answers too (the code in the body, when to retry).
    let refused = agent()
        .post(&open.url("/v1/score"))
        .header("Origin", "https://app.example")
        .send("{}")
        .unwrap();
    assert_eq!(refused.status(), 401);
    let header = |name: &str| {
        refused
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert!(
        header("access-control-expose-headers").is_some_and(|h| h.contains("retry-after")),
        "{:?}",
        refused.headers()
    );
}

#[test]
fn health_waits_for_the_model_and_info_describes_it() {
    let (release, released) = mpsc::channel::<()>();
    let server = Server::start_with(ServeOptions::default(), move || {
        released.recv().unwrap();
        Reranker::load(common::model_dir("zh-tiny"), LoadOptions::default())
    });
    let (status, body) = server.get("/health");
    assert_eq!(status, 503, "{body}");
    let (status, answer) = server.post("/v1/score", &json!({ "lists": [["q", "p"]] }));
    assert_eq!((status, answer["code"].as_str()), (503, Some("LOADING")));
    release.send(()).unwrap();
    server.wait_ready();
    let (status, info) = server.get("/info");
    assert_eq!(status, 200);
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["ready"], true);
    assert_eq!(info["model"]["device"], "cpu");
    assert_eq!(info["model"]["max_length"], 512);
    assert_eq!(info["limits"]["max_texts"], Limits::default().max_texts);
}

#[test]
fn a_model_that_fails_to_load_is_reported() {
    let server = Server::start_with(ServeOptions::default(), || {
        Reranker::load(
            common::fixtures().join("no-such-model"),
            LoadOptions::default(),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let (status, answer) = server.post("/v1/score", &json!({ "lists": [["q", "p"]] }));
    assert_eq!(
        (status, answer["code"].as_str()),
        (503, Some("MODEL_UNAVAILABLE"))
    );
    assert!(answer["error"].as_str().unwrap().contains("no-such-model"));
}

#[test]
fn shutdown_lets_requests_in_flight_finish() {
    let mut server = Server::start(ServeOptions::default());
    let list: Vec<String> = std::iter::once("查询".to_string())
        .chain((0..900).map(|i| format!("段落 {i} 内容 {}", i % 17)))
        .collect();
    let url = server.url("/v1/score");
    let in_flight = std::thread::spawn(move || {
        answer(
            agent()
                .post(&url)
                .send(json!({ "lists": [list], "iterative": true }).to_string()),
        )
    });
    // Scoring 900 passages takes the tiny model about a second: stop while it runs.
    std::thread::sleep(Duration::from_millis(200));
    server.shut_down();
    let (status, body) = in_flight.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scores"][0].as_array().unwrap().len(), 900);
    // Stopped: nothing listens any more.
    assert!(agent().get(&server.url("/health")).call().is_err());
}

#[test]
fn overload_sheds_with_503_keeps_health_and_loses_no_accepted_request() {
    // A queue of two jobs, held busy by a long iterative request: of the requests that arrive
    // meanwhile, two are queued and the rest are refused at once.
    let server = Server::start(ServeOptions {
        limits: Limits {
            max_texts: 5000,
            ..Limits::default()
        },
        batching: BatchOptions {
            max_queue: 2,
            max_wait: Duration::from_millis(5),
            max_batch_texts: 256,
        },
        ..ServeOptions::default()
    });
    let ranker = engine();
    let long: Vec<String> = std::iter::once("查询".to_string())
        .chain((0..1500).map(|i| format!("段落 {i} 内容 {}", i % 17)))
        .collect();
    let url = server.url("/v1/score");
    let busy = std::thread::spawn(move || {
        answer(
            agent()
                .post(&url)
                .send(json!({ "lists": [long], "iterative": true }).to_string()),
        )
    });
    // The long job has left the queue once the scoring thread counts its batch.
    let waited = std::time::Instant::now();
    while !server
        .get("/metrics")
        .1
        .contains("listconranker_batch_texts_count 1\n")
    {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the long job never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let lists: Vec<Vec<String>> = (0..12)
        .map(|i| {
            std::iter::once(format!("问题 {i}"))
                .chain((0..4).map(|j| format!("答案 {i} {j} 内容")))
                .collect()
        })
        .collect();
    let start = std::sync::Arc::new(std::sync::Barrier::new(lists.len()));
    let requests: Vec<_> = lists
        .iter()
        .cloned()
        .map(|list| {
            let url = server.url("/v1/score");
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut response = agent()
                    .post(&url)
                    .send(json!({ "lists": [list] }).to_string())
                    .unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap();
                (
                    status,
                    retry_after,
                    serde_json::from_str::<Value>(&text).unwrap(),
                )
            })
        })
        .collect();
    // The server keeps answering /health while its queue is full.
    std::thread::sleep(Duration::from_millis(100));
    let asked = std::time::Instant::now();
    let (health, _) = server.get("/health");
    assert_eq!(health, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );

    let (mut served, mut shed) = (0, 0);
    for (list, request) in lists.iter().zip(requests) {
        let (status, retry_after, body) = request.join().unwrap();
        match status {
            200 => {
                served += 1;
                let want = ranker.compute_score(&[list.clone()]).unwrap();
                let got = floats(&body["scores"][0]);
                assert_eq!(got.len(), want[0].len());
                for (g, w) in got.iter().zip(&want[0]) {
                    assert!((g - w).abs() <= 1e-6, "{g} vs {w}");
                }
            }
            503 => {
                shed += 1;
                assert_eq!(body["code"], "OVERLOADED", "{body}");
                assert!(retry_after, "503 without Retry-After");
            }
            other => panic!("status {other}: {body}"),
        }
    }
    assert!(shed >= 1, "nothing was shed ({served} served)");
    assert!(served >= 1, "nothing was queued ({shed} shed)");
    let (status, body) = busy.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scores"][0].as_array().unwrap().len(), 1500);
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains(&format!(
            "listconranker_errors_total{{code=\"OVERLOADED\"}} {shed}\n"
        )),
        "{metrics}"
    );
}

#[test]
fn a_python_requests_client_gets_the_references_scores() {
    let Some(venv) = common::reference_venv() else {
        return;
    };
    let server = Server::start(ServeOptions {
        api_key: Some("python-key".into()),
        ..ServeOptions::default()
    });
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/serve_client.py");
    let output = std::process::Command::new(venv.join("bin/python"))
        .arg(script)
        .args(["--url", &server.url("")])
        .arg("--model")
        .arg(common::model_dir("zh-tiny"))
        .args(["--api-key", "python-key"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok:"));
}
