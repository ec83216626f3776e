"""The HTTP stack's own ceiling on this machine: aiohttp on uvloop (what our server runs on)
answering the v2 calls perf_analyzer makes for the MLP of issue 14 (server and model
metadata, config, infer)
with a canned response: no model, no decoding, no engine. Whatever our server does per
request comes on top of this; what perf_analyzer measures against it bounds every ratio the
HTTP targets ask for.

    python bench/http_floor.py --port 8300 &
    perf_analyzer -m mlp -u 127.0.0.1:8300 -i http --shape input:1,64 --concurrency-range 64

With ``--httptools`` the same answers come from a bare asyncio protocol over httptools'
parser (uvicorn's; ``pip install httptools``): the floor of a Python HTTP stack with nothing
but parsing and one write per response.
"""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

METADATA = {"name": "mlp", "versions": ["1"], "platform": "onnxruntime_onnx",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}],
            "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]}
CONFIG = {"name": "mlp", "platform": "onnxruntime_onnx", "max_batch_size": 64,
          "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [64]}],
          "output": [{"name": "output", "data_type": "TYPE_FP32", "dims": [10]}],
          "dynamic_batching": {"max_queue_delay_microseconds": 500}}
SERVER = {"name": "http-floor", "version": "0", "extensions": []}
ANSWER = orjson.dumps({"model_name": "mlp", "model_version": "1",
                       "outputs": [{"name": "output", "datatype": "FP32", "shape": [1, 10], "data": [0.0] * 10}]})


async def server(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(SERVER), content_type="application/json")


async def metadata(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(METADATA), content_type="application/json")


async def config(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(CONFIG), content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def infer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


def serve_httptools(port: int) -> None:
    """A bare HTTP/1.1 keep-alive protocol: parse with httptools, answer from a table."""
    import asyncio

    import httptools  # type: ignore[import-not-found]
    import uvloop

    def response(body: bytes, status: bytes = b"200 OK") -> bytes:
        return b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body

    routes = {b"/v2": response(orjson.dumps(SERVER)), b"/v2/health/ready": response(b""), b"/v2/models/mlp": response(orjson.dumps(METADATA)),
              b"/v2/models/mlp/config": response(orjson.dumps(CONFIG)), b"/v2/models/mlp/infer": response(ANSWER)}
    missing = response(b'{"error": "not found"}', b"404 Not Found")

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_message_complete(self) -> None:
            self.transport.write(routes.get(self.url, missing))  # type: ignore[attr-defined]
            self.url = b""

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Protocol, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--httptools", action="store_true", help="a bare asyncio protocol over httptools instead of aiohttp")
    args = parser.parse_args()
    if args.httptools:
        serve_httptools(args.port)
        return
    app = web.Application()
    app.router.add_get("/v2", server)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_get("/v2/models/mlp", metadata)
    app.router.add_get("/v2/models/mlp/config", config)
    app.router.add_post("/v2/models/mlp/infer", infer)
    import uvloop

    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
