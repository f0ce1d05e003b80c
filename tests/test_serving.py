"""HTTP limits of `displayd serve`, on raw sockets against the real command.

One server (SQLite, a 2 s head deadline, 1 s keep-alive) serves most tests; the connection
cap gets a second one with `max_connections = 4`. Both start with a low soft open-file limit,
which `displayd serve` must raise to the hard limit by itself.
"""

from __future__ import annotations

import re
import resource
import selectors
import socket
import subprocess
import time
import weakref
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli import DISPLAYD, ROOT, run_displayd
from tests.servers import free_port, server_env

HEAD_TIMEOUT = 2.0
KEEP_ALIVE = 1
LOW_SOFT_LIMIT = 256
GET = b"GET /healthz HTTP/1.1\r\nHost: displayd\r\n"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.settimeout(10)
        return sock


def _low_soft_limit() -> None:  # in the child, before exec: as a shell with `ulimit -n 256` would
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT_LIMIT, hard))


@contextmanager
def serve(database_url: str, log_dir: Path, **settings: str) -> Iterator[Served]:
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    env = server_env(database_url, DISPLAYD_SCHEDULER_ENABLED="false", **settings)
    with log.open("wb") as out:
        process = subprocess.Popen([DISPLAYD, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_low_soft_limit)
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{served.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready:\n{log.read_text()}"
            time.sleep(0.1)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """A migrated SQLite database and an admin key for it."""
    tmp = tmp_path_factory.mktemp("serving")
    url = f"sqlite+aiosqlite:///{tmp / 'serving.db'}"
    run_displayd("db", "upgrade", database_url=url)
    key = run_displayd("keys", "create", "--role", "admin", "--name", "Quản trị", database_url=url)
    return url, key.stdout.strip().splitlines()[-1], tmp


@pytest.fixture(scope="module")
def served(database: tuple[str, str, Path]) -> Iterator[Served]:
    url, admin, tmp = database
    with serve(url, tmp, DISPLAYD_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT),
               DISPLAYD_KEEP_ALIVE_SECONDS=str(KEEP_ALIVE)) as server:
        made = httpx.post(f"{server.url}/api/v1/boards", headers={"Authorization": f"Bearer {admin}"}, timeout=10,
                          json={"id": "bang-sanh", "name": "Bảng sảnh", "delivery": "poll"})
        assert made.status_code == 201, made.text
        server.token = made.json()["token"]
        yield server


# What a read brought beyond the response it completed: the start of the next (pipelining).
_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket) -> tuple[int | None, bytes]:
    """(status, body) of the next response; (None, b"") if the server closed without answering."""
    data = _unread.pop(sock, b"")
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return (None, b"") if not data else (_status(data), b"")
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    except ConnectionResetError:
        return None, b""
    _unread[sock] = rest[length:]
    return _status(head), rest[:length]


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (whatever it said first); fails after `seconds`."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection was still open after {seconds} s")
    return time.monotonic() - start


def test_open_file_limit_is_raised_to_the_hard_limit(served: Served) -> None:
    limits = Path(f"/proc/{served.process.pid}/limits").read_text()
    soft, hard = re.search(r"Max open files\s+(\d+)\s+(\d+)", limits).groups()  # type: ignore[union-attr]
    assert int(hard) > LOW_SOFT_LIMIT, "the machine's hard limit is too low to tell"
    assert soft == hard


def test_a_request_head_over_16_kib_gets_431(served: Served) -> None:
    with served.connect() as sock:  # sent at once
        sock.sendall(GET + b"X-Padding: " + b"a" * 20 * 1024 + b"\r\n\r\n")
        assert read_response(sock)[0] in (431, None)
        closed_within(sock, 2)
    with served.connect() as sock:  # one header that never ends: refused without waiting for its end
        sock.sendall(GET + b"X-Padding: " + b"a" * 20 * 1024)
        assert read_response(sock)[0] == 431
    with served.connect() as sock:  # dripped a header at a time: refused before the end
        status = None
        try:
            for n in range(40):
                sock.sendall(b"X-Padding-%d: %s\r\n" % (n, b"b" * 1000) if n else GET)
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status = read_response(sock)[0]
        assert status in (431, None)
    with served.connect() as sock:  # 15 KiB of headers is still a request
        sock.sendall(GET + b"X-Padding: " + b"a" * 15 * 1024 + b"\r\n\r\n")
        assert read_response(sock) == (200, b'{"status":"ok"}')


def test_only_the_head_counts_towards_the_limit(served: Served) -> None:
    """A body, and the requests before it on the same connection, are not part of a head."""
    with served.connect() as sock:  # a 12 KiB body, then a 12 KiB head, in one write (pipelined)
        body = b"x" * 12 * 1024
        post = b"POST /healthz HTTP/1.1\r\nHost: displayd\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        sock.sendall(post + GET + b"X-Padding: " + b"a" * 12 * 1024 + b"\r\n\r\n")
        assert read_response(sock)[0] == 405  # /healthz is GET only: answered, and the connection kept
        assert read_response(sock) == (200, b'{"status":"ok"}')
    with served.connect() as sock:  # one request after another, each under the limit, 40 KiB in all
        for _ in range(4):
            sock.sendall(GET + b"X-Padding: " + b"a" * 10 * 1024 + b"\r\n\r\n")
            assert read_response(sock)[0] == 200
    with served.connect() as sock:  # the head of the second of two pipelined requests is too large
        sock.sendall(GET + b"\r\n" + GET + b"X-Padding: " + b"a" * 20 * 1024 + b"\r\n\r\n")
        assert read_response(sock)[0] == 200
        assert read_response(sock)[0] in (431, None)
        closed_within(sock, 2)


def test_a_head_not_sent_in_time_gets_408_and_the_connection_closes(served: Served) -> None:
    with served.connect() as sock:
        start = time.monotonic()
        sock.sendall(b"GET / HT")
        assert read_response(sock)[0] == 408
        assert HEAD_TIMEOUT - 0.2 < time.monotonic() - start < HEAD_TIMEOUT + 2
        closed_within(sock, 1)
    with served.connect() as sock:  # a byte now and then does not buy more time
        start = time.monotonic()
        try:
            for byte in GET:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_response(sock)[0] in (408, None)
        assert time.monotonic() - start < HEAD_TIMEOUT + 2
    for first in (b"", GET + b"\r\n"):  # line breaks alone are no head either, first or after a request
        with served.connect() as sock:
            if first:
                sock.sendall(first)
                assert read_response(sock)[0] == 200
            start = time.monotonic()
            try:
                for _ in range(40):
                    sock.sendall(b"\r\n")
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert read_response(sock)[0] in (408, None)
            assert time.monotonic() - start < HEAD_TIMEOUT + 2
    with served.connect() as sock:  # the second request on a kept-alive connection too
        sock.sendall(GET + b"\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        start = time.monotonic()
        assert read_response(sock)[0] == 408
        assert HEAD_TIMEOUT - 0.2 < time.monotonic() - start < HEAD_TIMEOUT + 2


def test_an_idle_keep_alive_connection_closes(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(GET + b"\r\n")
        assert read_response(sock)[0] == 200
        sock.sendall(GET + b"\r\n")  # kept alive: a second request on it is answered
        assert read_response(sock)[0] == 200
        waited = closed_within(sock, KEEP_ALIVE + 2)
        assert waited > KEEP_ALIVE - 0.2


def test_a_thousand_half_open_sockets_do_not_stop_polls(served: Served) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:  # this test process holds the thousand sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    poll = {"Authorization": f"Bearer {served.token}"}
    with ExitStack() as stack:
        sockets = []
        for _ in range(1000):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", served.port), timeout=5))
            sock.sendall(b"GET / HT")
            sockets.append(sock)
        opened = time.monotonic()
        with httpx.Client(base_url=served.url, timeout=2) as http:
            for _ in range(5):
                response = http.get("/api/v1/boards/bang-sanh/current", headers=poll)
                assert response.status_code == 200 and response.json()["board_id"] == "bang-sanh"
        assert time.monotonic() - opened < HEAD_TIMEOUT, "the polls were not made while the sockets were held"
        # And the server lets go of every one of them by itself.
        selector = selectors.DefaultSelector()
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        open_ones, deadline = set(sockets), time.monotonic() + HEAD_TIMEOUT + 5
        while open_ones and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.5):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    if ready.recv(65536):  # the 408, then the end
                        continue
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    pass
                selector.unregister(ready)
                open_ones.discard(ready)
        selector.close()
        assert not open_ones, f"{len(open_ones)} half-open sockets still held"


def test_the_connection_cap_closes_the_oldest_idle_connection_or_answers_503(
        database: tuple[str, str, Path]) -> None:
    url, _, tmp = database
    with (serve(url, tmp, DISPLAYD_MAX_CONNECTIONS="4", DISPLAYD_KEEP_ALIVE_SECONDS="30") as server,
          ExitStack() as stack):
        idle = []
        for _ in range(4):
            sock = stack.enter_context(server.connect())
            sock.sendall(GET + b"\r\n")
            assert read_response(sock)[0] == 200
            idle.append(sock)
            time.sleep(0.05)
        newcomer = stack.enter_context(server.connect())
        newcomer.sendall(GET + b"\r\n")
        assert read_response(newcomer)[0] == 200
        closed_within(idle[0], 2)  # the one idle the longest made room
        idle[1].sendall(GET + b"\r\n")  # the others are untouched
        assert read_response(idle[1])[0] == 200
        for sock in (*idle[1:], newcomer):
            sock.close()
        time.sleep(0.3)
        busy = []
        for _ in range(4):  # none idle: each holds half a request
            sock = stack.enter_context(server.connect())
            sock.sendall(b"GET / HT")
            busy.append(sock)
        time.sleep(0.2)
        with server.connect() as refused:
            assert read_response(refused)[0] == 503


def test_nginx_keeps_upstream_connections_for_less_than_displayd_does() -> None:
    """Otherwise nginx may send a request on a connection displayd is closing: a 502."""
    from displayd.config import Settings

    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream displayd \{(.*?)\}", nginx, re.S)
    assert upstream is not None
    timeout = re.search(r"keepalive_timeout\s+(\d+)s;", upstream.group(1))
    assert timeout is not None, "the upstream block must set keepalive_timeout"
    assert int(timeout.group(1)) < Settings.model_fields["keep_alive_seconds"].default


def failed_sign_ins(server: Served, forwarded_for: str, count: int) -> list[int]:
    """`count` wrong staff keys, as a client behind a proxy that says who it is."""
    headers = {"Authorization": "Bearer dk_wrong-key-for-the-limit", "X-Forwarded-For": forwarded_for}
    return [httpx.get(f"{server.url}/api/v1/boards", headers=headers, timeout=10).status_code for _ in range(count)]


@pytest.mark.parametrize("trusted", [True, False])
def test_the_sign_in_limit_holds_the_client_a_trusted_proxy_names(database: tuple[str, str, Path],
                                                                     trusted: bool) -> None:
    """Behind nginx every request comes from the proxy: trusted, its X-Forwarded-For names the
    guesser, who alone is held; untrusted, the header is ignored (anyone could forge it)."""
    url, admin, tmp = database
    proxies = '["127.0.0.1/32"]' if trusted else '["192.0.2.0/24"]'
    with serve(url, tmp, DISPLAYD_TRUSTED_PROXIES=proxies) as server:
        assert failed_sign_ins(server, "203.0.113.7", 21)[-1] == 429
        colleague = httpx.get(f"{server.url}/api/v1/boards", timeout=10,
                              headers={"Authorization": f"Bearer {admin}", "X-Forwarded-For": "203.0.113.8"})
        assert colleague.status_code == (200 if trusted else 429), colleague.text
