// A static file server on 127.0.0.1 (repo root) that logs every request path and serves faults on
// purpose: `faults.set(path, {drop: n})` breaks the next n transfers of `path` half-way (the
// connection is destroyed after half the body), `{flip: n}` flips one byte in the next n
// responses, and `offline = '/prefix/'` drops every connection for paths under that prefix at
// once (the app's own files stay reachable, as an app's service worker would keep them);
// `quota = N` makes navigator.storage.estimate() in the package's worker report a quota of N bytes. Nothing is cached by HTTP.
// `dropTensor` damages a bundle on disk in a way that sha256 checks cannot see.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { root, safetensorsHeader } from './harness.js';

/**
 * Removes the tensor `key` from the shard `file` of the bundle in `dir` (its bytes go, the other
 * tensors' offsets close up) and from the manifest's list of the shard's tensors, and writes the
 * shard's new size and sha256 into the manifest: a bundle whose files all verify, but without
 * that tensor.
 */
export function dropTensor(dir, file, key) {
  const bytes = readFileSync(join(dir, file));
  const { header, dataStart } = safetensorsHeader(bytes);
  if (!header[key]) throw new Error(`${file} has no tensor ${key}`);
  const kept = Object.entries(header).filter(([name]) => name !== key && name !== '__metadata__')
    .sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0]);
  const parts = [];
  /** @type {Record<string, any>} */
  const out = header.__metadata__ ? { __metadata__: header.__metadata__ } : {};
  let at = 0;
  for (const [name, info] of kept) {
    const [begin, end] = info.data_offsets;
    parts.push(bytes.subarray(dataStart + begin, dataStart + end));
    out[name] = { ...info, data_offsets: [at, at + end - begin] };
    at += end - begin;
  }
  let json = JSON.stringify(out);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the data stays 8-byte aligned
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const shard = Buffer.concat([length, Buffer.from(json), ...parts]);
  writeFileSync(join(dir, file), shard);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const entry = manifest.files.find((f) => f.path === file);
  entry.bytes = shard.length;
  entry.sha256 = createHash('sha256').update(shard).digest('hex');
  entry.tensors = entry.tensors.filter((t) => t !== key);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };

export function faultServer(dir = root) {
  const state = {
    requests: [],
    faults: new Map(),
    offline: false,
    quota: null,
    reset() {
      this.requests = [];
      this.faults.clear();
      this.offline = false;
      this.quota = null;
    },
  };
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    state.requests.push(path);
    if (state.offline && path.startsWith(state.offline)) {
      req.socket.destroy();
      return;
    }
    let body;
    try {
      const file = normalize(join(dir, path.endsWith('/') ? `${path}index.html` : path));
      if (!file.startsWith(dir)) throw new Error('outside');
      body = await readFile(file);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (state.quota !== null && path.endsWith('/worker.js')) {
      // A small storage quota, as navigator.storage.estimate() in the worker reports it.
      const fake = `Object.defineProperty(self.navigator.storage, 'estimate', { value: async () => ({ usage: 0, quota: ${state.quota} }) });\n`;
      body = Buffer.concat([Buffer.from(fake), body]);
    }
    const fault = state.faults.get(path) || {};
    const headers = {
      'Content-Type': TYPES[extname(path)] || 'application/octet-stream',
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
    };
    if (fault.flip > 0) {
      fault.flip -= 1;
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0x01;
    }
    if (fault.drop > 0) {
      fault.drop -= 1;
      res.writeHead(200, headers);
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => req.socket.destroy(), 50));
      return;
    }
    res.writeHead(200, headers).end(body);
  });
  return new Promise((ok) => {
    server.listen(0, '127.0.0.1', () => {
      state.url = `http://127.0.0.1:${server.address().port}`;
      state.close = () => new Promise((done) => {
        server.closeAllConnections?.();
        server.close(() => done());
      });
      ok(state);
    });
  });
}
