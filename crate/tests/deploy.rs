//! The container files (deploy/): the image's entry point, run here as the container runs it,
//! with the arguments, environment and port of the Kubernetes manifest, must serve the model
//! and become ready on the manifest's readiness probe; SIGTERM must stop it cleanly. The image
//! itself is not built here (no container engine); its Dockerfile is checked against the
//! manifest (port, user, entry point).
#![cfg(all(unix, feature = "serve", feature = "cli"))]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The manifest's documents as JSON (PyYAML from the reference venv reads the YAML).
fn manifest(venv: &Path) -> Vec<Value> {
    let output = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(deploy_dir().join("kubernetes.yaml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubernetes.yaml: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

#[test]
fn the_entry_point_serves_as_the_manifest_describes() {
    let Some(venv) = common::reference_venv() else {
        return;
    };
    let documents = manifest(&venv);
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let service = documents
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("a Service");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let port_name = container["readinessProbe"]["httpGet"]["port"]
        .as_str()
        .unwrap();
    let port = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port_name)
        .expect("the readiness probe's port is declared")["containerPort"]
        .as_u64()
        .unwrap();
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        env.contains(&("PORT".into(), port.to_string())),
        "the container's PORT is its declared port"
    );
    let probe_path = container["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    // The grace period outlasts the server's own request timeout.
    let timeout = args
        .iter()
        .position(|a| a == "--timeout-s")
        .map(|i| args[i + 1].parse::<f64>().unwrap())
        .unwrap_or(60.0);
    assert!(pod["terminationGracePeriodSeconds"].as_f64().unwrap() > timeout);

    // The Dockerfile agrees with the manifest.
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains(&format!("EXPOSE {port}")));
    assert!(dockerfile.contains(&format!("PORT={port}")));
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(dockerfile.contains(&format!("USER {user}")));
    assert!(dockerfile.contains("deploy/entrypoint.sh /usr/local/bin/listconranker-entrypoint"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/listconranker-entrypoint\"]"));

    // The entry point as the container runs it: the manifest's arguments and environment, but
    // a mounted model instead of the hub (no network here), on a free loopback port.
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_listconranker"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .arg(deploy_dir().join("entrypoint.sh"))
        .args(&args)
        .envs(
            env.iter()
                .filter(|(name, _)| name != "LISTCONRANKER_REPO")
                .map(|(name, value)| (name, value)),
        )
        .env("PATH", path)
        .env("PORT", free_port.to_string())
        .env("LISTCONRANKER_HOST", "127.0.0.1")
        .env("LISTCONRANKER_MODEL", common::model_dir("zh-tiny"))
        .env_remove("LISTCONRANKER_REPO")
        .env_remove("LISTCONRANKER_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{free_port}");
    let started = Instant::now();
    let ready = loop {
        if let Ok(response) = agent().get(&format!("{base}{probe_path}")).call()
            && response.status() == 200
        {
            break true;
        }
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !ready {
        let _ = child.kill();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("never ready on {probe_path}: {stderr}");
    }
    let mut response = agent()
        .post(&format!("{base}/v1/rerank"))
        .send(json!({ "query": "什么是机器学习", "documents": ["机器学习是人工智能的一个分支。", "今天天气很好。"] }).to_string())
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["results"].as_array().unwrap().len(), 2);

    // SIGTERM (how Kubernetes stops a pod): the server is the entry point's process (exec) and
    // stops cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopping = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "{exit}: {stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}
