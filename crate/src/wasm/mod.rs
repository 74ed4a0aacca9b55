//! The wasm-bindgen surface (wasm32 only), used by the package's Web Worker (`web/worker.js`).
//! Files are fetched by JavaScript (progress, abort) and handed over one at a time; lists go in
//! and scores come out as JSON text. Errors are JS `Error`s with a stable `code` property.

use std::rc::Rc;

use js_sys::{Error as JsError, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::device::{Backend, LoadOptions, Placement, Precision};
use crate::error::Error;
use crate::model::ListConRankerModel;
use crate::reranker::Reranker;
use crate::tokenize::TextTokenizer;
use crate::weights::bundle::{BundleReader, Manifest};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

#[wasm_bindgen(start)]
fn start() {
    // No threads in a plain wasm worker: the tokenizer must not try rayon.
    tokenizers::utils::parallelism::set_parallelism(false);
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("listconranker panicked: {info}"))
    }));
}

fn js_error(code: &str, message: &str) -> JsValue {
    let error = JsError::new(message);
    let _ = Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

fn to_js(e: Error) -> JsValue {
    js_error(e.code(), &e.to_string())
}

/// Collects a bundle's files as JavaScript fetches them.
#[wasm_bindgen]
pub struct BundleLoader {
    reader: BundleReader,
}

#[wasm_bindgen]
impl BundleLoader {
    /// Parses `manifest.json` (its text).
    #[wasm_bindgen(constructor)]
    pub fn new(manifest_json: &str) -> Result<BundleLoader, JsValue> {
        let manifest = Manifest::parse(manifest_json).map_err(to_js)?;
        Ok(Self {
            reader: BundleReader::new(manifest, ListConRankerModel::check_plan).map_err(to_js)?,
        })
    }

    /// The files to fetch, in order, as JSON: `[{path, bytes, sha256, tensors?}]`.
    pub fn files(&self) -> String {
        serde_json::to_string(&self.reader.manifest().files).expect("files serialize")
    }

    /// The stored float type (`f32` or `f16`).
    pub fn dtype(&self) -> String {
        self.reader.manifest().dtype.clone()
    }

    /// Takes one listed file's bytes (decoded now, and uploaded to the device when the loader
    /// came from [`upload_to`], so JavaScript can drop them).
    pub fn add(&mut self, path: &str, bytes: &[u8]) -> Result<(), JsValue> {
        self.reader.add_file(path, bytes).map_err(to_js)
    }
}

/// The device and dtype names the worker passes (the same parser as the CLI's: `cpu`,
/// `webgpu`/`wgpu`, `f32`, `f16`), opened and checked. A missing or unfit WebGPU is
/// `WEBGPU_UNAVAILABLE` (the page may fall back to the CPU backend).
async fn open_placement(
    device: &str,
    dtype: &str,
    max_length: usize,
) -> Result<Placement, JsValue> {
    let options = LoadOptions {
        backend: device.parse::<Backend>().map_err(to_js)?,
        precision: dtype.parse::<Precision>().map_err(to_js)?,
        max_length,
        ..LoadOptions::default()
    };
    Placement::open_async(options).await.map_err(to_js)
}

/// Opens `device` in `dtype` for a loader not yet fed: each file given to it afterwards is
/// uploaded as soon as it is decoded, so the worker's memory holds one shard at a time, never
/// the whole model. Takes the loader and gives it back.
#[wasm_bindgen(js_name = uploadTo)]
pub async fn upload_to(
    mut loader: BundleLoader,
    device: String,
    dtype: String,
) -> Result<BundleLoader, JsValue> {
    let placement = open_placement(&device, &dtype, LoadOptions::default().max_length).await?;
    loader.reader.upload_to(placement);
    Ok(loader)
}

/// Builds the model from a fully fed loader on `device` (`cpu` or `webgpu`) in `dtype` (the
/// same as given to [`upload_to`], if the loader came from there).
#[wasm_bindgen(js_name = loadRanker)]
pub async fn load_ranker(
    loader: BundleLoader,
    device: String,
    dtype: String,
    max_length: u32,
) -> Result<WasmRanker, JsValue> {
    let parts = loader.reader.finish().map_err(to_js)?;
    let placement = open_placement(&device, &dtype, max_length as usize).await?;
    let tokenizer =
        TextTokenizer::from_json(&parts.tokenizer_json, &parts.tokenizer_file).map_err(to_js)?;
    let ranker =
        Reranker::from_parts(parts.config, parts.weights, tokenizer, placement).map_err(to_js)?;
    Ok(WasmRanker {
        inner: Rc::new(ranker),
    })
}

#[wasm_bindgen]
pub struct WasmRanker {
    inner: Rc<Reranker>,
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, JsValue> {
    serde_json::from_str(text)
        .map_err(|e| js_error("INPUT_INVALID", &format!("invalid input: {what}: {e}")))
}

#[wasm_bindgen]
impl WasmRanker {
    /// `batch_json`: `[[query, passage, ...], ...]`; resolves to the scores as JSON text.
    #[wasm_bindgen(js_name = computeScore)]
    pub fn compute_score(&self, batch_json: String) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let batch: Vec<Vec<String>> =
                parse_json(&batch_json, "expected [[query, passage, ...], ...]")?;
            let scores = inner.compute_score_async(&batch).await.map_err(to_js)?;
            Ok(serde_json::to_string(&scores)
                .expect("scores serialize")
                .into())
        })
    }

    /// `list_json`: `[query, passage, ...]`; resolves to the scores as JSON text.
    #[wasm_bindgen(js_name = iterativeInference)]
    pub fn iterative_inference(&self, list_json: String) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let list: Vec<String> = parse_json(&list_json, "expected [query, passage, ...]")?;
            let scores = inner
                .iterative_inference_async(&list)
                .await
                .map_err(to_js)?;
            Ok(serde_json::to_string(&scores)
                .expect("scores serialize")
                .into())
        })
    }

    /// Changes the truncation length for later calls.
    #[wasm_bindgen(js_name = setMaxLength)]
    pub fn set_max_length(&mut self, max_length: u32) -> Result<(), JsValue> {
        Rc::get_mut(&mut self.inner)
            .ok_or_else(|| {
                js_error(
                    "INPUT_INVALID",
                    "cannot change max_length while a call runs",
                )
            })?
            .set_max_length(max_length as usize)
            .map_err(to_js)
    }

    /// Model sizes, as JSON: `{hidden, layers, vocab}`.
    pub fn info(&self) -> String {
        let c = self.inner.config();
        serde_json::json!({
            "hidden": c.bert.hidden_size,
            "layers": c.bert.num_hidden_layers,
            "vocab": c.bert.vocab_size,
        })
        .to_string()
    }
}

/// `initThreadPool(n)` (threaded build only): starts rayon's pool of `n` Web Workers sharing this
/// module's memory; the worker awaits it once before loading a model. (Exported to JavaScript by
/// its `#[wasm_bindgen]`; the `use` links it in.)
#[cfg(feature = "wasm-threads")]
#[allow(unused_imports)]
pub use wasm_bindgen_rayon::init_thread_pool;
