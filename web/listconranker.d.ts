// For the type check of web/*.js only (tsconfig.json); never copied into the package. The real
// module, listconranker.js with its own .d.ts, is generated into pkg/ by wasm-bindgen during the
// build (web/build.sh), so it does not exist here: this declares the part of it the worker uses,
// as wasm-bindgen writes it for crate/src/wasm/mod.rs, so that the check runs without the build.
// Keep it in step with that file's #[wasm_bindgen] items.

/** Collects a bundle's files as the worker fetches them. */
export class BundleLoader {
  /** Parses manifest.json's text (MODEL_INVALID when it is not a bundle this build reads). */
  constructor(manifest_json: string);
  /** The files to fetch, in order, as JSON text: `[{path, bytes, sha256, tensors?}]`. */
  files(): string;
  /** The stored float type ('f32' or 'f16'). */
  dtype(): string;
  /** Takes one listed file's bytes (decoded now; uploaded too when the loader came from uploadTo). */
  add(path: string, bytes: Uint8Array): void;
  free(): void;
}

/** A loaded model. Its promises resolve to JSON text. */
export class WasmRanker {
  private constructor();
  computeScore(batch_json: string): Promise<any>;
  iterativeInference(list_json: string): Promise<any>;
  setMaxLength(max_length: number): void;
  /** Model sizes as JSON text: `{hidden, layers, vocab}`. */
  info(): string;
  free(): void;
}

/** Opens `device` in `dtype` for a loader not yet fed; takes the loader and gives it back. */
export function uploadTo(loader: BundleLoader, device: string, dtype: string): Promise<BundleLoader>;

/** Builds the model from a fully fed loader. */
export function loadRanker(loader: BundleLoader, device: string, dtype: string, max_length: number): Promise<WasmRanker>;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
  readonly memory: WebAssembly.Memory;
}

/** Instantiates the module (fetching the .wasm next to this file unless told where it is). */
export default function __wbg_init(
  module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<InitOutput>;
