"""HTTP/1.1 on one asyncio event loop: keep-alive connections, requests answered in order.

Why not http.server: a thread per connection makes 32 clients 32 threads taking turns at the GIL,
and each request pays thread hand-offs. Here one loop thread does the Python work of every
connection (HTTP parsing, JSON) and the model runs on worker threads, where TensorFlow releases
the GIL. The handler answers through a callback, at once or later (when the model is done), so a
request costs no coroutine or task.
"""

import asyncio
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

# http.server's limits: a request line or header line of at most 64 KiB, at most 100 headers;
# ours: at most 1 MiB of head in all.
MAX_LINE = 65536
MAX_HEADERS = 100
MAX_HEAD = 1024 * 1024
RECV_SIZE = 65536
HEAD_END = re.compile(rb"\r?\n\r?\n")
# libevent's evhttp_send_error() pages, which TF Serving's HTTP server sends (404, bad requests).
ERROR_PAGE = "<HTML><HEAD>\n<TITLE>{0}</TITLE>\n</HEAD><BODY>\n<H1>{1}</H1>\n</BODY></HTML>\n"
# Reason phrases as http.server sends them; 499 is TF Serving's CANCELLED (nginx's phrase).
REASONS = {status.value: status.phrase for status in HTTPStatus} | {499: "Client Closed Request"}


@dataclass
class Request:
    method: str
    target: str  # as sent: path and query
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False  # close the connection after this answer


# The application: called on the loop thread with a request and the function that answers it.
Handler = Callable[[Request, Callable[[Response], None]], None]


def error_page(status: int) -> Response:
    reason = REASONS.get(status, "Error")
    text = ERROR_PAGE.format(f"{status} {reason}", reason)
    return Response(status, text.encode(), "text/html; charset=ISO-8859-1", close=True)


class BadRequest(Exception):
    """A request we answer with `response` and then close the connection."""

    def __init__(self, response: Response):
        self.response = response


@dataclass
class _Head:
    method: str
    target: str
    headers: dict[str, str]
    keep_alive: bool
    chunked: bool
    length: int
    body_start: int
    chunks: list[bytes] = field(default_factory=list)  # chunked bodies: the chunks read so far
    chunk_pos: int = 0  # where the next chunk-size line starts in the buffer
    chunk_total: int = 0


class _Connection(asyncio.BufferedProtocol):
    """One client connection: parses requests from its buffer, one at a time, in order."""

    def __init__(self, server: "HttpServer"):
        self.server = server
        self.buffer = bytearray()
        # Reads land here (recv_into): asyncio's plain recv() allocates 256 KiB for every read,
        # which costs more than reading a whole 28x28 request.
        self.landing = memoryview(bytearray(RECV_SIZE))
        self.head: _Head | None = None
        self.busy = False  # a request is with the handler
        self.dispatching = False  # inside the handler call (an answer may come back at once)
        self.closed = False
        self.last_active = time.monotonic()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.landing

    def buffer_updated(self, nbytes: int) -> None:
        self.buffer += self.landing[:nbytes]
        self.last_active = time.monotonic()
        if not self.busy:
            self._process()
        elif len(self.buffer) > self.server.max_body_bytes + MAX_HEAD:
            self.transport.pause_reading()  # a client sending ahead while we answer

    def _process(self) -> None:
        while not self.busy and not self.closed:
            try:
                request = self._parse()
            except BadRequest as e:
                self._write(e.response, keep_alive=False)
                return
            if request is None:
                return
            self.busy, self.dispatching = True, True
            try:
                self.server.handler(request, self._answer)
            finally:
                self.dispatching = False

    def _answer(self, response: Response) -> None:
        head, self.head = self.head, None
        self.busy = False
        self._write(response, keep_alive=head.keep_alive and not response.close, method=head.method)
        self.last_active = time.monotonic()
        if self.closed:
            return
        self.transport.resume_reading()
        if not self.dispatching:  # answered later: look for the next request in the buffer
            self._process()

    def _write(self, response: Response, keep_alive: bool, method: str = "") -> None:
        if self.closed:
            return  # the client went away; nothing to tell it
        # One write for head and body: no Nagle/delayed-ACK stall between them.
        head = (
            f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}\r\n"
            f"Content-Type: {response.content_type}\r\nContent-Length: {len(response.body)}\r\n"
        )
        if not keep_alive:
            head += "Connection: close\r\n"
        body = b"" if method == "HEAD" else response.body
        self.transport.write(head.encode() + b"\r\n" + body)
        if not keep_alive:
            self.closed = True
            self.transport.close()

    # ------------------------------------------------------------ parsing

    def _parse(self) -> Request | None:
        """The next complete request in the buffer (consumed), or None while it is incomplete."""
        head = self.head = self.head or self._parse_head()
        if head is None:
            return None
        if head.chunked:
            body = self._parse_chunks(head)
            if body is None:
                return None
        else:
            end = head.body_start + head.length
            if len(self.buffer) < end:
                return None
            body = bytes(self.buffer[head.body_start : end])
            del self.buffer[:end]
        return Request(head.method, head.target, head.headers, body)

    def _parse_head(self) -> _Head | None:
        while self.buffer[:2] == b"\r\n" or self.buffer[:1] == b"\n":
            del self.buffer[: 2 if self.buffer[:1] == b"\r" else 1]  # RFC 9112: ignore blank lines
        match = HEAD_END.search(self.buffer)
        if match is None:
            line_end = self.buffer.find(b"\n")
            if (line_end < 0 and len(self.buffer) > MAX_LINE) or line_end > MAX_LINE:
                raise BadRequest(error_page(414))
            if len(self.buffer) > MAX_HEAD:
                raise BadRequest(error_page(431))
            return None
        lines = str(self.buffer[: match.start()], "iso-8859-1").split("\n")
        request_line = lines[0].rstrip("\r")
        if len(request_line) > MAX_LINE:
            raise BadRequest(error_page(414))
        words = request_line.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            raise BadRequest(error_page(400))
        method, target, version = words
        if len(lines) - 1 > MAX_HEADERS or any(len(line) > MAX_LINE for line in lines):
            raise BadRequest(error_page(431))
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = 0
        if not chunked:
            try:
                length = int(headers.get("content-length") or 0)
                if length < 0:
                    raise ValueError
            except ValueError:
                raise BadRequest(self.server.error(400, "Invalid Content-Length")) from None
            if length > self.server.max_body_bytes:
                raise BadRequest(self.server.too_large(length))
        if headers.get("expect", "").lower() == "100-continue" and version == "HTTP/1.1":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for it
        start = match.end()
        return _Head(method, target, headers, keep_alive, chunked, length, start, chunk_pos=start)

    def _parse_chunks(self, head: _Head) -> bytes | None:
        """Chunked transfer coding: the whole body once its last chunk is in, else None."""
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\n", head.chunk_pos)
            if line_end < 0:
                return None
            size_text = bytes(buffer[head.chunk_pos : line_end]).split(b";")[0].strip()
            try:
                size = int(size_text or b"0", 16)
                if size < 0:
                    raise ValueError
            except ValueError:
                message = "Invalid chunked transfer encoding"
                raise BadRequest(self.server.error(400, message)) from None
            if size == 0:
                # Trailer fields, then an empty line.
                pos = line_end + 1
                while True:
                    end = buffer.find(b"\n", pos)
                    if end < 0:
                        return None
                    if buffer[pos:end].strip() == b"":
                        del buffer[: end + 1]
                        return b"".join(head.chunks)
                    pos = end + 1
            head.chunk_total += size
            if head.chunk_total > self.server.max_body_bytes:
                raise BadRequest(self.server.too_large(head.chunk_total))
            data_end = line_end + 1 + size
            next_line = buffer.find(b"\n", data_end)
            if next_line < 0:
                head.chunk_total -= size
                return None
            head.chunks.append(bytes(buffer[line_end + 1 : data_end]))
            head.chunk_pos = next_line + 1


class HttpServer:
    """Listens on an address; serve_forever() runs the loop in the calling thread."""

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        max_body_bytes: int,
        error: Callable[[int, str], Response],
        idle_timeout: float = 60.0,
    ):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        # Bound here, so a port in use fails at construction; SOMAXCONN: many clients at once.
        self.socket = socket.create_server(address, family=family, backlog=socket.SOMAXCONN)
        self.server_address = self.socket.getsockname()
        self.handler = handler
        self.max_body_bytes = max_body_bytes
        self.error = error  # the answer to a body we refuse: (status, message) -> response
        self.idle_timeout = idle_timeout
        self.connections: set[_Connection] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._handoff_lock = threading.Lock()
        self._handed_over: list[tuple[Callable, tuple]] = []  # see call_soon()

    def serve_forever(self) -> None:
        """Serves until shutdown() (from another thread) or KeyboardInterrupt."""
        self.loop = loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                loop.create_server(lambda: _Connection(self), sock=self.socket)
            )
            loop.call_later(1.0, self._close_idle)
            if not self._stopping.is_set():
                loop.run_forever()
            server.close()
            for connection in list(self.connections):
                connection.transport.close()
            loop.run_until_complete(asyncio.sleep(0))  # let the transports close
        finally:
            loop.close()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stops serve_forever() and waits for it to return."""
        self._stopping.set()
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass  # the loop closed meanwhile
            self._stopped.wait()

    def too_large(self, size: int) -> Response:
        message = (
            f"Request body of {size} bytes is larger than the limit of {self.max_body_bytes} bytes"
        )
        return self.error(413, message)

    def server_close(self) -> None:
        self.socket.close()

    def waiting_connections(self) -> int:
        """How many connections have a request with the handler, waiting for its answer."""
        return sum(1 for connection in self.connections if connection.busy)

    def call_soon(self, callback: Callable, *args) -> None:
        """Runs callback(*args) on the loop thread; callable from any thread.

        Calls that arrive while earlier ones still wait run in the same wake-up of the loop: a
        finished batch hands back all its answers for the price of one (each wake-up is a write
        to the loop's self-pipe, a system call, and a turn of the loop)."""
        with self._handoff_lock:
            self._handed_over.append((callback, args))
            if len(self._handed_over) > 1:
                return  # the wake-up asked for by the first one will run this too
        try:
            self.loop.call_soon_threadsafe(self._run_handed_over)
        except RuntimeError:
            pass  # the loop is closed: the server stopped and nobody waits for the answer

    def _run_handed_over(self) -> None:
        with self._handoff_lock:
            calls, self._handed_over = self._handed_over, []
        for callback, args in calls:
            try:
                callback(*args)
            except Exception as e:  # as asyncio does for a failing callback: log it, go on
                self.loop.call_exception_handler({"message": "handed-over call", "exception": e})

    def _close_idle(self) -> None:
        # An idle connection, or one sending its body slower than the timeout allows, is closed.
        limit = time.monotonic() - self.idle_timeout
        for connection in list(self.connections):
            if not connection.busy and connection.last_active < limit:
                connection.closed = True
                connection.transport.close()
        self.loop.call_later(1.0, self._close_idle)
