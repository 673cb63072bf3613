"""The polite HTTP client for feeds and pages: a User-Agent, bounded time and size, retries with backoff,
robots.txt, a pause between two requests to one host, and redirects followed one hop at a time (each hop is
checked against robots.txt and paced, and a loop is named as one). Every way a fetch fails is a FetchFailed
naming the url and the reason."""

import time
import urllib.robotparser
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx
import tenacity

from newsqa.settings import Settings

HTML_TYPES = {"text/html", "application/xhtml+xml"}
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchFailed(Exception):
    """A url that could not be fetched; `str()` is "url: reason", for the round's report."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


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
        self._http = httpx.Client(
            timeout=settings.fetch_timeout_s, follow_redirects=False,
            headers={"User-Agent": settings.fetch_user_agent},
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}  # per scheme://host
        self._last_request: dict[str, float] = {}  # host → monotonic time of its latest request
        self._max_bytes = int(settings.fetch_max_mb * 1e6)

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._http.close()

    def get(self, url: str, headers: dict[str, str] | None = None, html_only: bool = False,
            obey_robots: bool = True) -> Fetched:
        """GET `url`, following redirects; raises FetchFailed for anything but a 200 or 304."""
        visited = [url]
        for _ in range(self.settings.fetch_max_redirects + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise FetchFailed(visited[0], f"not an http(s) url: {url}")
            if obey_robots and not self._allowed(url):
                raise FetchFailed(url, "disallowed by the site's robots.txt")
            status, response_headers, body = self._with_retries(url, headers or {}, html_only)
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
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(tries),
            wait=tenacity.wait_exponential(multiplier=self.settings.fetch_backoff_s, max=60),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, _Retryable)), reraise=True,
        )
        timeout = self.settings.fetch_timeout_s
        try:
            return retrying(self._once, url, headers, html_only)
        except httpx.TimeoutException:
            raise FetchFailed(url, f"no response within {timeout:g} s ({tries} tries)") from None
        except httpx.TransportError as exc:
            raise FetchFailed(url, f"could not connect ({exc or type(exc).__name__}; {tries} tries)") from None
        except _Retryable as exc:
            raise FetchFailed(url, f"HTTP {exc.status} ({tries} tries)", exc.status) from None

    def _once(self, url: str, headers: dict[str, str], html_only: bool) -> tuple[int, httpx.Headers, bytes]:
        """One request, its body read only when it is wanted, within the size cap and the time limit."""
        self._pace(urlsplit(url).netloc)
        started = time.monotonic()
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
            body = bytearray()
            for part in response.iter_bytes():  # a missing or false Content-Length is caught here
                body += part
                if len(body) > self._max_bytes:
                    raise FetchFailed(url, f"over the {self.settings.fetch_max_mb:g} MB limit (NEWSQA_FETCH_MAX_MB)")
                if time.monotonic() - started > self.settings.fetch_timeout_s:  # a server that trickles
                    raise httpx.ReadTimeout("body too slow")
            return status, response.headers, bytes(body)

    def _pace(self, host: str) -> None:
        wait = self._last_request.get(host, -1e9) + self.settings.fetch_host_delay_s - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request[host] = time.monotonic()

    def _allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self._robots:
            self._robots[site] = self._read_robots(site)
        return self._robots[site].can_fetch(self.settings.fetch_user_agent, url)

    def _read_robots(self, site: str) -> urllib.robotparser.RobotFileParser:
        """RFC 9309: no robots.txt (a 4xx) allows everything; one that can't be read (5xx, no answer)
        allows nothing for now."""
        robots = urllib.robotparser.RobotFileParser(f"{site}/robots.txt")
        try:
            fetched = self.get(f"{site}/robots.txt", obey_robots=False)
            robots.parse(fetched.body.decode("utf-8", "replace").splitlines())
        except FetchFailed as exc:
            unavailable = exc.status is not None and 400 <= exc.status < 500
            robots.parse([] if unavailable else ["User-agent: *", "Disallow: /"])
        return robots
