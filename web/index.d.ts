/**
 * Where the model runs. 'auto': WebGPU on a hardware adapter, else the CPU (wasm) backend, or
 * the `fallback` server when one is given (`LoadOptions.fallback`).
 */
export type Device = 'auto' | 'webgpu' | 'cpu';
/** The compute type: the float type the model's weights and arithmetic are in on the device. */
export type DType = 'f32' | 'f16';
/**
 * How a bundle's weights are stored (its manifest's `dtype`, set by `listconranker convert
 * --dtype`): 'f32' or 'f16' floats, or quantized: 'q8' (int8 Linear weights and word embeddings,
 * one f16 scale per block of 32 inputs) or 'q4' (the encoder's FFN output weights in 4-bit blocks
 * with an f16 scale each, chosen by GPTQ when converted with `--calibration`; the rest as in
 * 'q8'); a quantized bundle's other tensors are f16. Independent of the compute type: every
 * bundle is decoded to `DType` as it loads.
 */
export type StoredDType = 'f32' | 'f16' | 'q8' | 'q4';

/**
 * The codes this package's errors carry (`protocol.js` defines every code, including the Rust
 * crate's native-only INPUT_READ_FAILED, OUTPUT_WRITE_FAILED and DATA_INVALID, which the browser
 * never throws). An aborted load or call rejects with the signal's reason or a DOMException named
 * 'AbortError' instead, without a code.
 *
 * A remote ranker (device 'remote') maps the server's `{code}` onto these: INPUT_INVALID and
 * INPUT_TOO_LARGE (a request past the server's limits) to 'INPUT_INVALID'; UNAUTHORIZED (a
 * missing or wrong API key) to 'UNAUTHORIZED'; LOADING (past `timeoutMs`), OVERLOADED, TIMEOUT,
 * SHUTTING_DOWN, MODEL_UNAVAILABLE, NOT_FOUND, a 500 and a server that cannot be reached (down,
 * a wrong URL, CORS not allowing the page's origin, no answer within `timeoutMs`) to
 * 'SERVER_UNAVAILABLE'. The error's `serverCode` and `status` keep what the server answered.
 */
export type ErrorCode =
  | 'WEBGPU_UNAVAILABLE'
  | 'MODEL_FETCH_FAILED'
  | 'MODEL_INVALID'
  | 'INPUT_INVALID'
  | 'DEVICE_UNAVAILABLE'
  | 'DEVICE_LOST'
  | 'DISPOSED'
  | 'QUOTA_EXCEEDED'
  | 'UNAUTHORIZED'
  | 'SERVER_UNAVAILABLE'
  | 'INTERNAL_ERROR';

export class ListConRankerError extends Error {
  constructor(code: ErrorCode, message: string, server?: { serverCode?: string; status?: number; retryAfter?: number });
  readonly name: 'ListConRankerError';
  readonly code: ErrorCode;
  /** The server's own code (`'INPUT_TOO_LARGE'`, `'OVERLOADED'`, `'LOADING'`, ...) when a
   *  server answered with an error (a remote ranker); undefined otherwise. */
  readonly serverCode?: string;
  /** The HTTP status of that answer; undefined otherwise. */
  readonly status?: number;
  /** Seconds to wait before retrying, from the answer's `Retry-After` header (a 503: LOADING,
   *  OVERLOADED, TIMEOUT, SHUTTING_DOWN), when the server's CORS lets the page read it;
   *  undefined otherwise. */
  readonly retryAfter?: number;
}

/** The model's sizes, read from the bundle (a remote ranker: from the server's /info). */
export interface ModelConfig {
  /** Hidden size of the encoder. */
  hidden: number;
  /** Encoder layers. */
  layers: number;
  /** Tokenizer vocabulary size; null on a remote ranker (the server's /info does not give it). */
  vocab: number | null;
}

/** A `listconranker serve` server that a remote ranker scores on: what its /info says. */
export interface ServerInfo {
  /** The server's URL (ending in '/'). */
  url: string;
  /** The model's name (`serve --name`, default its directory's). */
  name: string;
  /** The server's listconranker version. */
  version: string;
  /** The server's device: 'cpu' or 'wgpu'. */
  device: string;
  /** The server's compute type: 'f32' or 'f16'. */
  dtype: string;
  /** Tokens per text the server truncates at (`serve --max-length`). */
  maxLength: number;
  /** Most passages in one list; null if the server does not say. */
  maxPassages: number | null;
  /** Most texts (queries and passages) in one request (`--max-texts`); null if not said. */
  maxTexts: number | null;
  /** Longest text in characters (`--max-chars`); null if not said. */
  maxChars: number | null;
  /** Largest request body in bytes (`--max-body-bytes`); null if not said. */
  maxBodyBytes: number | null;
}

/** How a remote ranker talks to its server. */
export interface RemoteOptions {
  /** Sent as `Authorization: Bearer <apiKey>` (the server's `--api-key`). */
  apiKey?: string;
  /**
   * The longest wait for each answer, in ms (default 120000, longer than the server's default
   * scoring timeout of 60 s; Infinity for none); also how long creating the ranker waits for a
   * server that is still loading its model. Past it: SERVER_UNAVAILABLE.
   */
  timeoutMs?: number;
}

/** `ListConRanker.remote`'s options. */
export interface RemoteRankerOptions extends RemoteOptions {
  /** Aborts the connection (the /health and /info requests). */
  signal?: AbortSignal;
}

/** `LoadOptions.fallback`: a server's URL, or it with its options. */
export type FallbackServer = string | URL | ({ url: string | URL } & RemoteOptions);

export interface ProgressEvent {
  /**
   * 'init' (wasm), 'manifest', then per file: 'download' (per chunk) and 'verify' (sha256), or
   * 'cache-read' (from IndexedDB); 'upload' (the file's tensors into the model); then 'build'
   * (model on the device), 'ready'.
   */
  phase: 'init' | 'manifest' | 'download' | 'verify' | 'cache-read' | 'upload' | 'build' | 'ready';
  /** Bytes received (downloaded or read from the cache) so far, over all files. */
  loaded: number;
  /** Bytes of all files of the bundle (0 before the manifest is read). */
  total: number;
  /** The file being downloaded, or null. */
  file: string | null;
}

export interface LoadOptions {
  /** Default 'auto'. */
  device?: Device;
  /**
   * Compute type. Default 'f32'. f16 on WebGPU needs 'shader-f16' ('auto' falls back to the CPU).
   * Not the bundle's stored type: f32, f16, q8 and q4 bundles all load with any compute type and
   * need no option (the manifest says how the bundle is stored). Each shard's weights, quantized
   * ones included, are decoded to this type as the shard loads, so a quantized bundle is a smaller
   * download and cache entry, not a smaller model in memory.
   */
  dtype?: DType;
  /** Tokens per text, [CLS] and [SEP] included (default 512). */
  maxLength?: number;
  onProgress?: (event: ProgressEvent) => void;
  /** Aborts the load (the worker is ended). */
  signal?: AbortSignal;
  /**
   * IndexedDB cache of the bundle, under `{bundle url}@{manifest sha256}`. 'auto' (default):
   * cache, and fail with QUOTA_EXCEEDED (nothing written) when the storage quota is too small;
   * 'best-effort': load without caching (console warning) in that case; 'off': never cache.
   */
  cache?: 'auto' | 'best-effort' | 'off';
  /**
   * CPU threads (the CPU backend only). 'auto' (default): one per core
   * (`navigator.hardwareConcurrency`) on a cross-origin-isolated page (served with
   * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`),
   * else one; `1` never starts threads; `n > 1` asks for n (one, with a console warning, where the
   * page is not isolated). Threads run the package's threaded build (`threads/`).
   */
  threads?: 'auto' | number;
  /** Where the .wasm file is, if a bundler or server moved it. */
  wasmUrl?: string | URL;
  /**
   * The URL of the package's `threads/` directory, served as is (bundlers do not process it).
   * Default: `threads/` next to the package's worker, right when the package is served as
   * files; with a bundler, copy `node_modules/listconranker/threads/` to the static files and
   * pass its URL. Where it cannot be imported, the CPU backend runs on one thread (`threadsNote`).
   */
  threadsUrl?: string | URL;
  /**
   * A `listconranker serve` server for device 'auto' to score on when this browser has no
   * hardware WebGPU adapter (none, or only a software fallback such as SwiftShader): `load` then
   * downloads nothing and resolves to a remote ranker (`device` 'remote', `deviceNote` says why),
   * as `ListConRanker.remote` would. Unused with a hardware adapter, and with device 'cpu' or
   * 'webgpu'. A server that cannot be reached fails the load (SERVER_UNAVAILABLE): nothing falls
   * back further. The server must allow the page's origin (`serve --cors-origin`).
   */
  fallback?: FallbackServer;
}

export interface CallOptions {
  /** Rejects the call (a queued call never runs; a running one finishes in the worker unseen). */
  signal?: AbortSignal;
}

export interface RerankOptions extends CallOptions {
  /** Keep the best k. */
  topK?: number;
  /** Iterative inference (default true; equals computeScore for up to 20 passages). */
  iterative?: boolean;
  /** Add each passage's text as `document`. */
  returnDocuments?: boolean;
}

export interface RankedPassage {
  /** Position in the passages given. */
  index: number;
  score: number;
  document?: string;
}

export class ListConRanker {
  /** Made by `ListConRanker.load` or `ListConRanker.remote`. */
  private constructor();
  /** Loads a web bundle: the URL of its directory (or of its manifest.json). */
  static load(modelUrl: string | URL, options?: LoadOptions): Promise<ListConRanker>;
  /**
   * A ranker that scores on a `listconranker serve` server (its POST /v1/score): the same
   * methods and errors, `device` 'remote'. Resolves once the server's /health says its model is
   * loaded and its /info was read (with the API key: a wrong one fails here, UNAUTHORIZED).
   * Calls are not queued: the server batches concurrent requests.
   */
  static remote(serverUrl: string | URL, options?: RemoteRankerOptions): Promise<ListConRanker>;
  /** Whether a complete copy of the bundle is in this origin's IndexedDB cache. */
  static isCached(modelUrl: string | URL): Promise<boolean>;
  /** Deletes the cached copies of one bundle (complete or partial), or of every bundle. */
  static clearCache(modelUrl?: string | URL): Promise<void>;
  /** What the model actually runs on: 'remote' when a server scores (`remote`, `fallback`). */
  readonly device: 'webgpu' | 'cpu' | 'remote';
  /** The server a remote ranker scores on, or null. */
  readonly server: ServerInfo | null;
  /** The compute type (as asked for: 'f16' stays 'f16' when 'auto' falls back to the CPU; a
   *  remote ranker: the server's). */
  readonly dtype: DType;
  /** How the bundle's weights are stored (its manifest's `dtype`): 'f32', 'f16', 'q8' or 'q4'.
   *  An f16 bundle is half the download of an f32 one, q8 about a quarter, q4 a little less; all are
   *  decoded to `dtype` as each shard loads and computed in it. null on a remote ranker. */
  readonly storedDtype: StoredDType | null;
  /** Why `device` differs from what was asked for, or null. */
  readonly deviceNote: string | null;
  /** CPU threads the model runs on in this page (1 on WebGPU, 0 on a remote ranker). */
  readonly threads: number;
  /** Why the CPU backend runs on one thread although the machine has more cores, or null. */
  readonly threadsNote: string | null;
  /** The WebGPU adapter's description, when on WebGPU. */
  readonly adapter: string | null;
  /** The model's sizes. */
  readonly config: ModelConfig;
  /** Milliseconds from the start of load() (or remote()) to a usable model. */
  readonly loadMs: number;
  /** Bytes of the bundle's files (0 on a remote ranker, which downloads no bundle; so are
   *  `downloadedBytes` and `wasmMemoryBytes`, `fromCache` and `cached` are false and `persisted`
   *  null). */
  readonly totalBytes: number;
  /** Bytes fetched from the network by this load (0 when all came from the cache). */
  readonly downloadedBytes: number;
  /** Whether every file came from the IndexedDB cache. */
  readonly fromCache: boolean;
  /** Whether the bundle is stored in the cache (false with `cache: 'off'`, without IndexedDB, or
   *  when caching it failed or did not fit and the load went on uncached). */
  readonly cached: boolean;
  /**
   * Whether the browser keeps this origin's storage, the cached bundle included, persistently
   * (not evicted under storage pressure), as `navigator.storage.persisted()` answered during the
   * load; null when the bundle is not cached or the browser does not say. The package never asks
   * for persistence: `navigator.storage.persist()` is the page's to call (workers do not have it,
   * and some browsers ask the user first).
   */
  readonly persisted: boolean | null;
  /** The worker's wasm memory after loading, in bytes: the load's peak (wasm memory never
   *  shrinks). On WebGPU the weights live in GPU buffers, not in wasm memory. */
  readonly wasmMemoryBytes: number;
  /** One score in (0, 1) per passage of each [query, passage, ...] list, in input order. */
  computeScore(batch: string[][], options?: CallOptions): Promise<number[][]>;
  /** Iterative inference over one [query, passage, ...] list; scores are for ranking only. */
  iterativeInference(list: string[], options?: CallOptions): Promise<number[]>;
  /** Passages sorted by score, best first. */
  rerank(query: string, passages: string[], options?: RerankOptions): Promise<RankedPassage[]>;
  /** Changes the truncation length of later calls (tokens per text, [CLS] and [SEP] included).
   *  A remote ranker cannot: any length but the server's (`server.maxLength`) is INPUT_INVALID. */
  setMaxLength(maxLength: number): Promise<void>;
  /** The worker's wasm memory now (its peak so far), in bytes (0 on a remote ranker). */
  stats(): Promise<{ wasmMemoryBytes: number }>;
  /** Frees the model and ends its worker (a remote ranker: ends its requests in flight; later
   *  calls fail with DISPOSED). */
  dispose(): Promise<void>;
}

export default ListConRanker;
