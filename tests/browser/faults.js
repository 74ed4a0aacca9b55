// A static file server on 127.0.0.1 (repo root) that logs every request path and serves faults on
// purpose: `faults.set(path, {drop: n})` breaks the next n transfers of `path` half-way (the
// connection is destroyed after half the body), `{flip: n}` flips one byte in the next n
// responses, and `offline = '/prefix/'` drops every connection for paths under that prefix at
// once (the app's own files stay reachable, as an app's service worker would keep them);
// `quota = N` makes navigator.storage.estimate() in the package's worker report a quota of N bytes. Nothing is cached by HTTP.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { root } from './harness.js';

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
