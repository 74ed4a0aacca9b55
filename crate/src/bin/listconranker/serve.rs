//! `listconranker serve`: the rerank HTTP API (`listconranker::serve`, docs/serve.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;

use listconranker::serve::{BatchOptions, Limits, ServeOptions, serve};
use listconranker::{Error, Result};

use crate::ModelArgs;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on: loopback unless told otherwise (`0.0.0.0` for every interface).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Bearer token that every endpoint but /health asks for.
    #[arg(long, env = "LISTCONRANKER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// An origin (`https://app.example`) whose pages may call the API; CORS is off without it.
    #[arg(long)]
    cors_origin: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most texts (query and passages) in one request.
    #[arg(long, default_value_t = Limits::default().max_texts)]
    max_texts: usize,
    /// Longest text in characters.
    #[arg(long, default_value_t = Limits::default().max_chars)]
    max_chars: usize,
    /// Scoring jobs that may wait; past them requests get 503 at once.
    #[arg(long, default_value_t = ServeOptions::default().batching.max_queue)]
    max_queue: usize,
    /// How long (ms) a request waits for others to be batched with.
    #[arg(long, default_value_t = 5)]
    max_wait_ms: u64,
    /// Most texts scored in one batched call.
    #[arg(long, default_value_t = ServeOptions::default().batching.max_batch_texts)]
    max_batch_texts: usize,
    /// Longest (s) a request waits for its scores before a 503.
    #[arg(long, default_value_t = 60.0)]
    timeout_s: f64,
    /// The model's name in /info and /v1/rerank answers (default: the model directory's).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    if !(args.timeout_s > 0.0 && args.timeout_s.is_finite()) {
        return Err(Error::input("--timeout-s must be a positive number"));
    }
    let name = args.name.clone().unwrap_or_else(|| {
        args.model
            .model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "listconranker".into())
    });
    let options = ServeOptions {
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_texts: args.max_texts,
            max_chars: args.max_chars,
        },
        batching: BatchOptions {
            max_queue: args.max_queue,
            max_wait: Duration::from_millis(args.max_wait_ms),
            max_batch_texts: args.max_batch_texts.max(1),
        },
        timeout: Duration::from_secs_f64(args.timeout_s),
        api_key: args.api_key.clone().filter(|key| !key.is_empty()),
        cors_origin: args.cors_origin.clone(),
        model_name: name,
    };
    let address = SocketAddr::new(args.host, args.port);
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Error::input(format!("cannot start the HTTP runtime: {e}")))?;
    let load_args = args.model.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| Error::input(format!("cannot listen on {address}: {e}")))?;
        eprintln!(
            "listening on http://{} (the model loads in the background; /health says when it is ready)",
            listener.local_addr().unwrap_or(address)
        );
        serve(listener, move || load_args.load(), options, shutdown_signal())
            .await
            .map_err(|e| Error::input(format!("the server stopped: {e}")))
    })
}

/// SIGTERM (how containers are stopped) or Ctrl-C.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("shutting down: finishing the requests in flight");
}
