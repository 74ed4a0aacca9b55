"""Static file server for the demo and the browser tests: Python's http.server plus the two
headers that make a page cross-origin isolated (COOP same-origin, COEP require-corp), which the
package's threaded CPU build needs (SharedArrayBuffer). Same-origin files and CORS fetches (a
model on a CDN with Access-Control-Allow-Origin) still load under these headers.

    python3 www/serve.py [--port 8080] [--bind 127.0.0.1] [--directory DIR]

Port 0 picks a free port; the line "Serving HTTP on ... port N" tells which.
"""

import argparse
import functools
import http.server


class IsolatedHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--directory", default=".")
    args = parser.parse_args()
    handler = functools.partial(IsolatedHandler, directory=args.directory)
    http.server.test(HandlerClass=handler, port=args.port, bind=args.bind)


if __name__ == "__main__":
    main()
