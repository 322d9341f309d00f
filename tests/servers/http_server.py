#!/usr/bin/env python3
"""HTTP test server for vidinfer's integration tests: serves files with byte ranges.

Python's http.server ignores Range; FFmpeg's http protocol seeks with `Range: bytes=N-`
(every container whose index is not at the front, e.g. AVI's idx1 or an MP4 with moov at
the end, needs it). This one answers single ranges with 206 and Content-Range, says
Accept-Ranges: bytes, and can misbehave on purpose for reconnect tests. Stdlib only.

  python3 tests/servers/http_server.py [options] ROOT

  ROOT               a file (served as /NAME, NAME its file name) or a directory (its files,
                     by relative path; no listings, nothing outside it)
  --port N           TCP port on 127.0.0.1; 0 (default) = any free port
  --max-seconds S    the server exits by itself after S seconds (default 120)
  --no-range         ignore Range headers: always 200 with the whole file, no Accept-Ranges
  --live             send bodies without Content-Length (Connection: close ends them) and
                     ignore Range: an unseekable, live-like stream (an HTTP camera)
  --rate BPS         pace every body at BPS bytes per second (default: as fast as possible)
  --cut-after N      every response stops after N body bytes: the connection is closed
                     abruptly, short of its Content-Length (a dropped connection; a client
                     that reconnects with Range gets the next N bytes)
  --exit-after N     the whole server exits abruptly (os._exit) once it has sent N body
                     bytes in all (a server that dies mid-body)

Once listening it prints exactly one line on stdout and flushes it:
  LISTENING port=N url=http://127.0.0.1:N/
Each request is logged on stderr as one line:
  REQ GET /vtest.avi range=bytes=0- -> 206 bytes=0-4096/8192 sent=4096 [cut|exit]
Failures print `http_server: ...` on stderr and exit 1 (2 for bad arguments).
"""
import argparse
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024


def die(msg, code=1):
    sys.stderr.write(f"http_server: {msg}\n")
    sys.stderr.flush()
    os._exit(code)


class State:
    lock = threading.Lock()
    sent_total = 0


def parse_range(header, size):
    """(start, end_inclusive) for a single `bytes=` range; None = no usable range (serve all);
    'unsatisfiable' when it starts past the end."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":  # suffix: the last N bytes
        n = int(m.group(2))
        if n == 0:
            return "unsatisfiable"
        return (max(0, size - n), size - 1)
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return (start, min(end, size - 1))


def make_handler(args, root):
    is_file = os.path.isfile(root)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "vidinfer-test-http/1"

        def log_message(self, fmt, *a):  # the REQ lines replace the default log
            pass

        def log_req(self, status, what, sent, note=""):
            rng = self.headers.get("Range", "-")
            line = f"REQ {self.command} {self.path} range={rng} -> {status} {what} sent={sent}"
            sys.stderr.write(line + (f" {note}" if note else "") + "\n")
            sys.stderr.flush()

        def resolve(self):
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            if is_file:
                return root if path.lstrip("/") == os.path.basename(root) else None
            full = os.path.realpath(os.path.join(root, path.lstrip("/")))
            if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
                return None
            return full

        def do_HEAD(self):
            self.serve(body=False)

        def do_GET(self):
            self.serve(body=True)

        def serve(self, body):
            path = self.resolve()
            if path is None:
                self.send_error(404)
                self.log_req(404, "not found", 0)
                return
            size = os.path.getsize(path)
            rng = None
            if not (args.no_range or args.live):
                rng = parse_range(self.headers.get("Range"), size)
            if rng == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.log_req(416, f"bytes */{size}", 0)
                return
            start, end = rng if rng else (0, size - 1)
            length = end - start + 1 if size else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Type", "application/octet-stream")
            if not (args.no_range or args.live):
                self.send_header("Accept-Ranges", "bytes")
            if rng:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            if args.live:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            what = f"bytes={start}-{end}/{size}" if rng else f"whole/{size}"
            if not body:
                self.log_req(206 if rng else 200, what, 0)
                return
            sent, note = 0, ""
            t0 = time.monotonic()
            with open(path, "rb") as f:
                f.seek(start)
                while sent < length:
                    n = min(CHUNK, length - sent)
                    if args.rate:
                        n = min(n, max(1, args.rate // 10))
                    if args.cut_after is not None:
                        n = min(n, args.cut_after - sent)
                    exit_now = False
                    if args.exit_after is not None:
                        with State.lock:
                            n = min(n, args.exit_after - State.sent_total)
                            State.sent_total += max(n, 0)
                            exit_now = State.sent_total >= args.exit_after
                    if n > 0:
                        data = f.read(n)
                        if not data:
                            break
                        try:
                            self.wfile.write(data)
                            self.wfile.flush()
                        except (BrokenPipeError, ConnectionResetError):
                            note = "client-gone"
                            break
                        sent += len(data)
                    if exit_now:
                        self.log_req(206 if rng else 200, what, sent, "exit")
                        os._exit(0)
                    if args.cut_after is not None and sent >= args.cut_after and sent < length:
                        note = "cut"
                        # Abrupt: RST-free close, short of Content-Length.
                        self.close_connection = True
                        try:
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        break
                    if args.rate:
                        ahead = sent / args.rate - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
            self.log_req(206 if rng else 200, what, sent, note)

    return Handler


def main():
    ap = argparse.ArgumentParser(description="HTTP test server with Range (127.0.0.1 only)")
    ap.add_argument("root")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--no-range", action="store_true")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--cut-after", type=int)
    ap.add_argument("--exit-after", type=int)
    a = ap.parse_args()
    for name in ("cut_after", "exit_after"):
        v = getattr(a, name)
        if v is not None and v < 1:
            die(f"--{name.replace('_', '-')} must be >= 1", 2)
    if a.rate < 0:
        die("--rate must be >= 0", 2)

    t = threading.Timer(a.max_seconds, lambda: die(f"--max-seconds {a.max_seconds} reached", 0))
    t.daemon = True
    t.start()

    root = os.path.abspath(a.root)
    if not os.path.exists(root):
        die(f"no such file or directory: {root}", 2)

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True  # SO_REUSEADDR: a restarted server gets its port back
        daemon_threads = True

    try:
        httpd = Server(("127.0.0.1", a.port), make_handler(a, root))
    except OSError as e:
        die(f"cannot listen on 127.0.0.1:{a.port}: {e}")
    port = httpd.server_address[1]
    print(f"LISTENING port={port} url=http://127.0.0.1:{port}/", flush=True)
    httpd.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
