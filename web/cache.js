// The bundle cache in IndexedDB, shared by the page (ListConRanker.isCached / clearCache) and
// the worker (loading). One database, two object stores:
// - `shards`: one record per verified file of a bundle version, {key, version, url, path, bytes,
//   sha256, blob}, key `${version}/${path}`;
// - `versions`: one record per *complete* bundle version, {key, url, hash, manifest, bytes, time},
//   key `${bundle url}@${manifest sha256}`. It is written only after every file of the version is
//   stored, so an interrupted download never looks complete (its shards are reused on resume).

const DB_NAME = 'listconranker-bundles';
const DB_VERSION = 1;

/**
 * One verified file of a bundle version.
 * @typedef {object} ShardRecord
 * @property {string} key `${version}/${path}`
 * @property {string} version The version's key.
 * @property {string} url The bundle's directory URL.
 * @property {string} path The file's path in the bundle.
 * @property {number} bytes
 * @property {string} sha256
 * @property {Blob} blob
 */

/**
 * A complete bundle version.
 * @typedef {object} VersionRecord
 * @property {string} key `${bundle url}@${manifest sha256}`
 * @property {string} url The bundle's directory URL.
 * @property {string} hash The manifest's sha256.
 * @property {string} manifest The manifest's text (used offline).
 * @property {number} bytes The bundle's files, in bytes.
 * @property {number} time When it became complete (ms since the epoch).
 */

/**
 * The bundle's directory URL (with a trailing slash) from its URL or its manifest's URL.
 * @param {string | URL} url
 * @returns {string}
 */
export function bundleBase(url) {
  const href = String(url);
  if (href.endsWith('/')) return href;
  return href.replace(/manifest\.json$/, '').replace(/\/?$/, '/');
}

/**
 * @param {string} base
 * @param {string} manifestHash
 * @returns {string}
 */
export function versionKey(base, manifestHash) {
  return `${base}@${manifestHash}`;
}

/**
 * @template T
 * @param {IDBRequest<T>} r
 * @returns {Promise<T>}
 */
function request(r) {
  return new Promise((ok, fail) => {
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}

/**
 * @param {IDBTransaction} tx
 * @returns {Promise<void>}
 */
function done(tx) {
  return new Promise((ok, fail) => {
    tx.oncomplete = () => ok();
    tx.onabort = () => fail(tx.error || new DOMException('transaction aborted', 'AbortError'));
    tx.onerror = () => fail(tx.error);
  });
}

/**
 * Opens the database, or resolves to null where IndexedDB is missing or refused.
 * @returns {Promise<IDBDatabase | null>}
 */
export async function openCache() {
  const idb = globalThis.indexedDB;
  if (!idb) return null;
  try {
    const open = idb.open(DB_NAME, DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      const shards = db.createObjectStore('shards', { keyPath: 'key' });
      shards.createIndex('version', 'version');
      shards.createIndex('url', 'url');
      const versions = db.createObjectStore('versions', { keyPath: 'key' });
      versions.createIndex('url', 'url');
    };
    return await request(open);
  } catch {
    return null;
  }
}

/**
 * The newest complete version record of `base`, or null.
 * @param {IDBDatabase} db
 * @param {string} base
 * @returns {Promise<VersionRecord | null>}
 */
export async function latestVersion(db, base) {
  const tx = db.transaction('versions', 'readonly');
  /** @type {VersionRecord[]} */
  const all = await request(tx.objectStore('versions').index('url').getAll(base));
  all.sort((a, b) => b.time - a.time);
  return all[0] || null;
}

/**
 * The complete version record `key`, or null.
 * @param {IDBDatabase} db
 * @param {string} key
 * @returns {Promise<VersionRecord | null>}
 */
export async function getVersion(db, key) {
  const tx = db.transaction('versions', 'readonly');
  return (await request(tx.objectStore('versions').get(key))) || null;
}

/**
 * The stored shard records of a version, by path.
 * @param {IDBDatabase} db
 * @param {string} version
 * @returns {Promise<Map<string, ShardRecord>>}
 */
export async function storedShards(db, version) {
  const tx = db.transaction('shards', 'readonly');
  /** @type {ShardRecord[]} */
  const all = await request(tx.objectStore('shards').index('version').getAll(version));
  return new Map(all.map((r) => [r.path, r]));
}

/**
 * @param {IDBDatabase} db
 * @param {ShardRecord} record
 * @returns {Promise<void>}
 */
export async function putShard(db, record) {
  const tx = db.transaction('shards', 'readwrite');
  tx.objectStore('shards').put(record);
  await done(tx);
}

/**
 * @param {IDBDatabase} db
 * @param {VersionRecord} record
 * @returns {Promise<void>}
 */
export async function putVersion(db, record) {
  const tx = db.transaction('versions', 'readwrite');
  tx.objectStore('versions').put(record);
  await done(tx);
}

/**
 * Deletes the records of `base` (every version, complete or partial) except version `keep`.
 * @param {IDBDatabase} db
 * @param {string} base
 * @param {string | null} [keep]
 * @returns {Promise<void>}
 */
export async function deleteVersions(db, base, keep = null) {
  const tx = db.transaction(['shards', 'versions'], 'readwrite');
  for (const store of ['shards', 'versions']) {
    const index = tx.objectStore(store).index('url');
    const cursorRequest = index.openCursor(IDBKeyRange.only(base));
    cursorRequest.onsuccess = () => {
      const cursor = cursorRequest.result;
      if (!cursor) return;
      const version = store === 'shards' ? cursor.value.version : cursor.value.key;
      if (version !== keep) cursor.delete();
      cursor.continue();
    };
  }
  await done(tx);
}

/**
 * Deletes one version: every shard of it and its version record, if it was complete (used when a
 * write fails half-way, and when the version's files do not make a model).
 * @param {IDBDatabase} db
 * @param {string} version
 * @returns {Promise<void>}
 */
export async function deleteVersion(db, version) {
  const tx = db.transaction(['shards', 'versions'], 'readwrite');
  const cursorRequest = tx.objectStore('shards').index('version').openCursor(IDBKeyRange.only(version));
  cursorRequest.onsuccess = () => {
    const cursor = cursorRequest.result;
    if (!cursor) return;
    cursor.delete();
    cursor.continue();
  };
  tx.objectStore('versions').delete(version);
  await done(tx);
}

/**
 * Deletes every record of every bundle.
 * @param {IDBDatabase} db
 * @returns {Promise<void>}
 */
export async function clearAll(db) {
  const tx = db.transaction(['shards', 'versions'], 'readwrite');
  tx.objectStore('shards').clear();
  tx.objectStore('versions').clear();
  await done(tx);
}

/**
 * Lower-case hex sha256 of `bytes` (SubtleCrypto; `fallback(bytes)` where it is missing).
 * @param {Uint8Array<ArrayBuffer>} bytes Not a view of shared memory: SubtleCrypto refuses those.
 * @param {((bytes: Uint8Array) => string) | null} [fallback]
 * @returns {Promise<string>}
 */
export async function sha256Hex(bytes, fallback = sha256HexJs) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    if (fallback) return fallback(bytes);
    throw new Error('no SubtleCrypto (the page is not a secure context)');
  }
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

// sha256 in plain JavaScript, for pages that are not a secure context (no SubtleCrypto).
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function sha256HexJs(bytes) {
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const n = bytes.length;
  const padded = new Uint8Array(((n + 9 + 63) >> 6) << 6);
  padded.set(bytes);
  padded[n] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(n / 0x20000000));
  view.setUint32(padded.length - 4, (n << 3) >>> 0);
  /** @type {(x: number, r: number) => number} */
  const rotr = (x, r) => (x >>> r) | (x << (32 - r));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  return Array.from(h, (x) => x.toString(16).padStart(8, '0')).join('');
}
