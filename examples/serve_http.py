"""
Serving an exported model over HTTP
===================================

Serve an exported skembedrec model over HTTP with the Python standard library.

Export a fitted model first (:meth:`skembedrec.EmbeddingRatingRegressor.export`)::

    est.export("served_model")

then serve it (TensorFlow is the only dependency: skembedrec is not imported)::

    python examples/serve_http.py served_model --port 8080

and send JSON to one endpoint per signature; each answers with the signature's outputs::

    curl -s 127.0.0.1:8080/predict -d '{"user": [1, 2], "item": [10, 99999]}'
    {"rating": [3.91, 3.55]}
    curl -s 127.0.0.1:8080/recommend -d '{"user": [1], "k": 3}'
    {"items": [[50, 181, 100]], "ratings": [[4.6, 4.5, 4.5]], "valid": [[true, true, true]]}
    curl -s 127.0.0.1:8080/similar_items -d '{"item": [50], "k": 2}'

The server listens on 127.0.0.1 only and handles one JSON body of at most 1 MiB per
request: a sketch for local use and tests. For production, serve the same directory with
TensorFlow Serving (see the Serving guide). ``--port 0`` picks a free port; the first line
printed says which.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow: no C++ log lines

import numpy as np
import tensorflow as tf

_MAX_BODY = 1 << 20
SIGNATURES = ("predict", "recommend", "similar_items")


def load_signatures(path: str) -> dict:
    """The serving signatures of the SavedModel at ``path``, by name."""
    loaded = tf.saved_model.load(path)
    return {name: loaded.signatures[name] for name in SIGNATURES}


def _tensor(value, spec: tf.TensorSpec) -> tf.Tensor:
    array = np.asarray(value, dtype=object if spec.dtype == tf.string else None)
    if spec.dtype == tf.string:
        array = array.astype(str)
    return tf.constant(array, dtype=spec.dtype)


def _plain(tensor: tf.Tensor):
    values = tensor.numpy()
    if values.dtype.kind in "OS":  # string ids come back as bytes
        return np.vectorize(lambda v: v.decode("utf-8"), otypes=[object])(values).tolist()
    return values.tolist()


def call(signature, body: dict) -> dict:
    """Run one signature on a decoded JSON body; a ValueError for bad input."""
    specs = signature.structured_input_signature[1]
    missing = sorted(set(specs) - set(body))
    if missing:
        raise ValueError(f"missing input(s) {missing}; expected {sorted(specs)}")
    inputs = {name: _tensor(body[name], spec) for name, spec in specs.items()}
    return {name: _plain(value) for name, value in signature(**inputs).items()}


def make_server(path: str, port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` answering for the SavedModel at ``path``."""
    signatures = load_signatures(path)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # the name http.server calls
            name = self.path.strip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if name not in signatures:
                return self._reply(404, {"error": f"unknown endpoint; use {list(SIGNATURES)}"})
            if length > _MAX_BODY:
                return self._reply(413, {"error": f"body over {_MAX_BODY} bytes"})
            try:
                body = json.loads(self.rfile.read(length))
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                return self._reply(200, call(signatures[name], body))
            except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
                message = getattr(exc, "message", None) or str(exc)
                return self._reply(400, {"error": message.splitlines()[0][:500]})

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # quiet: one line per request is noise here
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="directory written by EmbeddingRatingRegressor.export")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = make_server(args.model, args.port)
    print(f"Serving {args.model} on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
