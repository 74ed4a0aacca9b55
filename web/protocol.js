// The names shared by the page (index.js) and the package's Web Worker (worker.js): the worker's
// operations, its progress phases and the error codes, each spelled once here. Messages:
//   page -> worker: {id, op, args} (an Op other than CANCEL), or {op: Op.CANCEL, target: id};
//   worker -> page: {id, progress: {phase, loaded, total, file}} while a load runs, then one
//                   {id, ok: true, result} or {id, ok: false, error: {name, message, code}}.

/** The operations the worker runs, in the `op` field of a request. */
export const Op = Object.freeze({
  /** Loads a bundle (args: LoadArgs); answers a LoadResult. */
  LOAD: 'load',
  /** Scores lists (args: {json}: `[[query, passage, ...], ...]` as JSON text); answers number[][]. */
  COMPUTE_SCORE: 'computeScore',
  /** Iterative inference over one list (args: {json}: `[query, passage, ...]`); answers number[]. */
  ITERATIVE_INFERENCE: 'iterativeInference',
  /** Changes the truncation length (args: {maxLength}). */
  SET_MAX_LENGTH: 'setMaxLength',
  /** The worker's wasm memory now; answers {wasmMemoryBytes}. */
  STATS: 'stats',
  /** Frees the model. */
  DISPOSE: 'dispose',
  /** Not queued: aborts the running load `target`, or drops the queued request `target`. */
  CANCEL: 'cancel',
});

/** The phases of a load's progress events, in order. */
export const Phase = Object.freeze({
  INIT: 'init',
  MANIFEST: 'manifest',
  DOWNLOAD: 'download',
  VERIFY: 'verify',
  CACHE_READ: 'cache-read',
  UPLOAD: 'upload',
  BUILD: 'build',
  READY: 'ready',
});

/**
 * Every stable error code, as `error.code`. The first nine are the Rust crate's (`Error::code`);
 * INPUT_READ_FAILED, OUTPUT_WRITE_FAILED and DATA_INVALID come only from its native file reading
 * and writing, so the browser package never throws them (index.d.ts's ErrorCode lists the ones it
 * can). UNAUTHORIZED is the crate's HTTP server's; the others are the JavaScript side's own.
 */
export const ErrorCode = Object.freeze({
  MODEL_FETCH_FAILED: 'MODEL_FETCH_FAILED',
  INPUT_READ_FAILED: 'INPUT_READ_FAILED',
  OUTPUT_WRITE_FAILED: 'OUTPUT_WRITE_FAILED',
  MODEL_INVALID: 'MODEL_INVALID',
  INPUT_INVALID: 'INPUT_INVALID',
  DEVICE_UNAVAILABLE: 'DEVICE_UNAVAILABLE',
  WEBGPU_UNAVAILABLE: 'WEBGPU_UNAVAILABLE',
  DEVICE_LOST: 'DEVICE_LOST',
  DATA_INVALID: 'DATA_INVALID',
  /** A call on a ranker that was disposed (or whose load was aborted). */
  DISPOSED: 'DISPOSED',
  /** The storage quota cannot hold the bundle (`cache: 'auto'`). */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /** A remote ranker's server refused its API key (missing or wrong: the server's 401). */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** A remote ranker's server cannot score now: unreachable (down, a wrong URL, CORS refusing
   *  the page's origin, no answer within `timeoutMs`), loading, overloaded, timed out, stopping,
   *  or its model failed (`error.serverCode` says which when it answered). */
  SERVER_UNAVAILABLE: 'SERVER_UNAVAILABLE',
  /** A bug, a crashed worker, or an error without a code. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
});

/**
 * The `args` of an Op.LOAD request (index.js has checked and defaulted them; URLs are absolute).
 * @typedef {object} LoadArgs
 * @property {string} url The bundle's URL.
 * @property {import('./index.js').Device} device
 * @property {import('./index.js').DType} dtype
 * @property {number} maxLength
 * @property {'auto' | 'best-effort' | 'off'} cache
 * @property {'auto' | number} threads
 * @property {string | null} wasmUrl
 * @property {string | null} threadsUrl The threaded build's directory, ending in '/'.
 */

/**
 * The worker's answer to Op.LOAD; index.js builds the ListConRanker from it.
 * @typedef {object} LoadResult
 * @property {'webgpu' | 'cpu'} device
 * @property {import('./index.js').DType} dtype The compute type.
 * @property {string | null} note Why `device` differs from the one asked for.
 * @property {boolean} warn Whether `note` is also worth a console warning.
 * @property {string[]} warnings Console warnings of the load (index.js prints them).
 * @property {string | null} adapter
 * @property {number} threads
 * @property {string | null} threadsNote
 * @property {import('./index.js').ModelConfig} info
 * @property {import('./index.js').StoredDType} storedDtype How the bundle's weights are stored
 *   (its manifest's `dtype`: f32, f16, q8 or q4); `dtype` is what they are computed in.
 * @property {number} totalBytes
 * @property {number} downloadedBytes
 * @property {boolean} fromCache
 * @property {boolean} cached
 * @property {boolean | null} persisted
 * @property {number} loadMs
 * @property {number} wasmMemoryBytes
 */

/**
 * An error as it crosses from the worker to the page.
 * @typedef {{ name: string, message: string, code: string }} SerializedError
 */

/**
 * What each operation answers (`result` of a successful reply), by its Op value.
 * @typedef {object} OpResults
 * @property {LoadResult} load
 * @property {number[][]} computeScore
 * @property {number[]} iterativeInference
 * @property {void} setMaxLength
 * @property {{ wasmMemoryBytes: number }} stats
 * @property {null} dispose
 */

/**
 * A message from the worker to the page.
 * @typedef {{ id: number, progress: import('./index.js').ProgressEvent }
 *   | { id: number, ok: true, result: any }
 *   | { id: number, ok: false, error: SerializedError }} WorkerReply
 */

/**
 * One of ErrorCode's values.
 * @typedef {(typeof ErrorCode)[keyof typeof ErrorCode]} Code
 */

/**
 * A request from the page to the worker (queued, run one at a time in order).
 * @typedef {{ id: number, op: typeof Op.LOAD, args: LoadArgs }
 *   | { id: number, op: typeof Op.COMPUTE_SCORE | typeof Op.ITERATIVE_INFERENCE, args: { json: string } }
 *   | { id: number, op: typeof Op.SET_MAX_LENGTH, args: { maxLength: number } }
 *   | { id: number, op: typeof Op.STATS | typeof Op.DISPOSE, args: {} }} WorkerRequest
 */

/**
 * Not queued: aborts the running load `target`, or drops the queued request `target`.
 * @typedef {{ op: typeof Op.CANCEL, target: number }} CancelRequest
 */

// A type check only (JSDoc, no code): every ErrorCode entry is `NAME: 'NAME'`.
/**
 * @template {never} T
 * @typedef {T} MustBeNever
 */
/** @typedef {MustBeNever<{ [K in keyof typeof ErrorCode]: K extends (typeof ErrorCode)[K] ? never : K }[keyof typeof ErrorCode]>} MisnamedCodes */
