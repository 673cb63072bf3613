"""The polite HTTP client for feeds and pages: a User-Agent, bounded time and size (as sent and decompressed),
retries with backoff, robots.txt, a pause between two requests to one host, and redirects followed one hop at
a time (each hop is checked against robots.txt and paced, and a loop is named as one). Every way a fetch fails
is a FetchFailed naming the url and the reason.

Time is bounded twice: each read (a server that stops answering) and a url's whole fetch, redirects and retries
included (a server that sends a byte at a time, headers or body, never lets a read time out).

Feeds and pages name any url they like, so every connection (each hop, each redirect, robots.txt) is made to
an address checked to be public: not this machine, not the newsroom's network, not a cloud's metadata service.
The check is made on the address connected to, after our own single DNS lookup, so a name that changes its
answer between a check and the connection (DNS rebinding) gains nothing."""

import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import tenacity
from protego import Protego

from newsqa.settings import Settings

HTML_TYPES = {"text/html", "application/xhtml+xml"}
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchFailed(Exception):
    """A url that could not be fetched; `str()` is "url: reason", for the round's report."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


class AddressRefused(FetchFailed):
    """A url whose host is not a public address, while NEWSQA_FETCH_ALLOW_PRIVATE is off."""


class _NotPublic(Exception):
    """Raised where the connection is made, which knows the host but not the url."""


class _Retryable(Exception):
    """An answer worth asking again: the server is busy or broken for now."""

    def __init__(self, status: int) -> None:
        self.status = status


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    status: int  # 200, or 304 for a conditional GET that found nothing new
    headers: httpx.Headers
    body: bytes


class PoliteClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._network = _PublicBackend(settings.fetch_allow_private)
        self._http = httpx.Client(
            timeout=settings.fetch_timeout_s, follow_redirects=False,
            headers={"User-Agent": settings.fetch_user_agent, "Accept-Encoding": "gzip"},
            transport=_CheckedTransport(self._network),
            trust_env=False,  # a proxy from the environment would make the connections, unchecked
        )
        self._robots: dict[str, Protego] = {}  # per scheme://host
        # RFC 9309 matches groups on the product token ("newsqa"), not the whole User-Agent line
        self._robots_name = settings.fetch_user_agent.split("/")[0].split()[0]
        self._last_request: dict[str, float] = {}  # host → monotonic time of its latest request
        self._max_bytes = int(settings.fetch_max_mb * 1e6)

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.close()

    def get(self, url: str, headers: dict[str, str] | None = None, html_only: bool = False,
            obey_robots: bool = True) -> Fetched:
        """GET `url`, following redirects, within NEWSQA_FETCH_DEADLINE_S (a robots.txt read on the way
        included); raises FetchFailed for anything but a 200 or 304."""
        if self._network.deadline is not None:  # robots.txt, read on the way to a page: within its deadline
            return self._get(url, headers, html_only, obey_robots)
        self._network.deadline = time.monotonic() + self.settings.fetch_deadline_s
        try:
            return self._get(url, headers, html_only, obey_robots)
        finally:
            self._network.deadline = None

    def _get(self, url: str, headers: dict[str, str] | None, html_only: bool, obey_robots: bool) -> Fetched:
        visited = [url]
        for _ in range(self.settings.fetch_max_redirects + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise FetchFailed(visited[0], f"not an http(s) url: {url}")
            try:
                if obey_robots and not self._allowed(url):
                    raise FetchFailed(url, "disallowed by the site's robots.txt")
                status, response_headers, body = self._with_retries(url, headers or {}, html_only)
            except AddressRefused as exc:
                if url == visited[0]:
                    raise
                raise AddressRefused(visited[0], f"redirected to {url}, {exc.reason}") from None
            if status in _REDIRECTS and "location" in response_headers:
                url = urljoin(url, response_headers["location"])
                if url in visited:
                    raise FetchFailed(visited[0], f"redirect loop ({' → '.join([*visited, url])})")
                visited.append(url)
                continue
            if status >= 400 or status not in (200, 304):
                raise FetchFailed(url, f"HTTP {status}", status)
            return Fetched(url, status, response_headers, body)
        raise FetchFailed(visited[0], f"more than {self.settings.fetch_max_redirects} redirects")

    def _with_retries(self, url: str, headers: dict[str, str], html_only: bool) -> tuple[int, httpx.Headers, bytes]:
        tries = self.settings.fetch_retries + 1
        backoff = tenacity.wait_exponential(multiplier=self.settings.fetch_backoff_s, max=60)
        retrying = tenacity.Retrying(
            stop=lambda state: state.attempt_number >= tries or self._network.left() <= 0,
            wait=lambda state: min(backoff(state), max(self._network.left(), 0)),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Retryable)), reraise=True,
        )
        timeout = self.settings.fetch_timeout_s
        try:
            return retrying(self._once, url, headers, html_only)
        except httpx.TimeoutException:
            if self._network.left() <= 0:
                raise FetchFailed(url, f"not fetched within the {self.settings.fetch_deadline_s:g} s deadline "
                                       "(NEWSQA_FETCH_DEADLINE_S)") from None
            raise FetchFailed(url, f"no response within {timeout:g} s ({tries} tries)") from None
        except httpx.TransportError as exc:
            raise FetchFailed(url, f"could not connect ({exc or type(exc).__name__}; {tries} tries)") from None
        except _Retryable as exc:
            raise FetchFailed(url, f"HTTP {exc.status} ({tries} tries)", exc.status) from None
        except _NotPublic as exc:
            raise AddressRefused(url, str(exc)) from None

    def _once(self, url: str, headers: dict[str, str], html_only: bool) -> tuple[int, httpx.Headers, bytes]:
        """One request, its body read only when it is wanted, within the size cap and the time limit."""
        self._pace(urlsplit(url).netloc)
        with self._http.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status >= 500 or status == 429:
                raise _Retryable(status)
            if status != 200:
                return status, response.headers, b""
            kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if html_only and kind and kind not in HTML_TYPES:
                raise FetchFailed(url, f"not an HTML page ({kind})")
            declared = int(response.headers.get("content-length") or 0)
            if declared > self._max_bytes:
                raise FetchFailed(url, f"{declared / 1e6:,.1f} MB, over the {self.settings.fetch_max_mb:g} MB limit "
                                       f"(NEWSQA_FETCH_MAX_MB)")
            return status, response.headers, self._read_body(url, response)

    def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """The body as sent, decompressed here rather than by httpx so both what arrives and what it expands
        to stop at the cap as they stream: a 2 MB gzip body can hold 2 GB."""
        encoding = response.headers.get("content-encoding", "").strip().lower() or "identity"
        if encoding not in ("identity", "gzip", "x-gzip", "deflate"):  # gzip is asked for; br, zstd are not
            raise FetchFailed(url, f"unsupported Content-Encoding {encoding!r}")
        inflate = None if encoding == "identity" else zlib.decompressobj(47)  # 47: a gzip or zlib header
        limit, received, body = self._max_bytes, 0, bytearray()
        over = f"over the {self.settings.fetch_max_mb:g} MB limit (NEWSQA_FETCH_MAX_MB)"
        for part in response.iter_raw():  # a missing or false Content-Length is caught here
            received += len(part)
            if received > limit:
                raise FetchFailed(url, over)
            try:  # at most one byte past the cap comes out of each part, however much it holds
                body += inflate.decompress(part, limit + 1 - len(body)) if inflate else part
            except zlib.error as exc:
                raise FetchFailed(url, f"broken {encoding} body ({exc})") from None
            if len(body) > limit:
                raise FetchFailed(url, f"{over} once decompressed")
        return bytes(body)

    def _pace(self, host: str) -> None:
        wait = self._last_request.get(host, -1e9) + self.settings.fetch_host_delay_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request[host] = time.monotonic()

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self._robots:
            try:
                self._robots[site] = self._read_robots(site)
            except AddressRefused as exc:  # the page is refused for the same reason, named as itself
                raise AddressRefused(url, exc.reason) from None
        return self._robots[site].can_fetch(url, self._robots_name)

    def _read_robots(self, site: str) -> Protego:
        """RFC 9309, by protego (wildcards, `$`, the longest match winning): no robots.txt (a 4xx) allows
        everything; one that can't be read (5xx, no answer) allows nothing for now."""
        try:
            fetched = self.get(f"{site}/robots.txt", obey_robots=False)
            return Protego.parse(fetched.body.decode("utf-8", "replace"))
        except AddressRefused:
            raise
        except FetchFailed as exc:
            unavailable = exc.status is not None and 400 <= exc.status < 500
            return Protego.parse("" if unavailable else "User-agent: *\nDisallow: /")


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's own transport, its connections made by `_PublicBackend`."""

    def __init__(self, network: "_PublicBackend") -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend of its own; httpcore's pool, which it wraps, does
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                             network_backend=network)


class _PublicBackend(httpcore.SyncBackend):
    """Resolves the host once, refuses it unless every address is public, and connects to those addresses
    (TLS still names the host: httpcore sends it as SNI and checks the certificate against it). Its
    connections stop at `deadline` (monotonic time), whatever each read's timeout."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.deadline: float | None = None  # of the fetch under way

    def left(self) -> float:
        """Seconds until the deadline (none: as long as a read may take)."""
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._connect_public(host, port, self.bounded(timeout, httpcore.ConnectTimeout),
                                                    local_address, socket_options), self)

    def bounded(self, timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
        """`timeout` cut to the time left; `expired` raised when there is none."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise expired("the fetch's deadline has passed")
        return left if timeout is None else min(timeout, left)

    def _connect_public(self, host: str, port: int, timeout: float | None, local_address: str | None,
                        socket_options: Iterable[Any] | None) -> httpcore.NetworkStream:
        try:
            addresses = _resolve(host, port)
        except OSError as exc:  # no such name, or no answer: retried like a refused connection
            raise httpcore.ConnectError(f"cannot resolve {host} ({exc})") from exc
        refused = [a for a in addresses if not (self.allow_private or _is_public(a))]
        if refused:  # one private answer refuses the name: no choosing the public one
            named = refused[0] if refused[0] == host else f"{host} resolves to {refused[0]}, which"
            raise _NotPublic(f"refused: {named} is not a public address (NEWSQA_FETCH_ALLOW_PRIVATE)")
        for address in addresses[:-1]:  # as the stdlib's create_connection: the first that answers
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue
        return super().connect_tcp(addresses[-1], port, timeout, local_address, socket_options)


def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses, from the system resolver (an address literal is its own answer)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _is_public(address: str) -> bool:
    """Globally reachable unicast: not loopback, private (RFC 1918, IPv6 ULA), link-local (169.254/16, where
    clouds serve instance metadata), shared (100.64/10), multicast, unspecified or reserved."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 zone ("fe80::1%eth0") names a link
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # ::ffff:127.0.0.1 is 127.0.0.1
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write waits no later than its backend's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, network: _PublicBackend) -> None:
        self._stream, self._network = stream, network

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._network.bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._network.bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        bounded = self._network.bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, bounded), self._network)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
