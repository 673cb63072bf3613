"""News sources end to end: fixture RSS/Atom feeds and pages served on 127.0.0.1 (SiteStub), fetched by the
polite client, stored in real Chroma with the real embedder; `ingest --feed/--url` and `watch` as real
processes."""

import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fixtures.stubs import SiteStub
from helpers import make_settings

from newsqa.errors import UsageError
from newsqa.ingest import fetch, loaders
from newsqa.ingest.feeds import FeedConfig, read_feeds_file
from newsqa.ingest.refresh import FeedReport, ingest_urls, refresh_feeds
from newsqa.ingest.removal import remove_articles
from newsqa.ingest.watch import watch
from newsqa.settings import Settings
from newsqa.store.check import find_problems
from newsqa.store.index import open_index
from newsqa.store.models import ChunkMeta, source_key, url_key

SITE = Path(__file__).parent / "fixtures" / "feeds"
# Short enough to keep every test bounded, long enough for a loopback server on a busy 2-core machine. The
# site is on 127.0.0.1, which only an intranet setting may fetch from.
FAST = {"fetch_timeout_s": 1.0, "fetch_retries": 1, "fetch_backoff_s": 0.01, "fetch_host_delay_s": 0.0,
        "fetch_max_mb": 0.01, "feed_full_text_words": 60, "fetch_allow_private": True}


@pytest.fixture
def site():
    with SiteStub(SITE) as stub:
        stub.values.update(riverton_built="Mon, 03 Mar 2025 10:00:00 GMT", valley_updated="2025-03-06T10:00:00Z",
                           market_hall_updated="2025-03-06T09:30:00Z", traders="thirty-two")
        stub.redirects["/story"] = "/news/market-hall.html"  # the Atom feed links through a short url
        yield stub


@pytest.fixture
def fast(tmp_path) -> Settings:
    return make_settings(tmp_path / "data", **FAST)


def feed(site: SiteStub, name: str, **fields: object) -> FeedConfig:
    return FeedConfig.model_validate({"url": f"{site.base_url}/{name}", **fields})


def refresh(feeds: list[FeedConfig], settings: Settings) -> dict[str, FeedReport]:
    return {report.url.rsplit("/", 1)[-1]: report for report in refresh_feeds(feeds, settings)}


def counts(report: FeedReport) -> tuple[int, int, int, int]:
    return report.new, report.updated, report.unchanged, report.failed


def metas_by_title(settings: Settings) -> dict[str, ChunkMeta]:
    return {c.meta.title: c.meta for c in open_index(settings).all_chunks(with_text=False)}


def page_requests(site: SiteStub, since: int = 0) -> list[str]:
    return [p for p in site.paths()[since:] if p.startswith(("/news/", "/amp/", "/story", "/private/"))]


def test_a_round_stores_rss_and_atom_stories_once_each_with_their_metadata(site, fast):
    reports = refresh([feed(site, "riverton.rss"), feed(site, "valley.atom", source="Valley Herald")], fast)

    assert counts(reports["riverton.rss"]) == (3, 0, 0, 0)
    # the bridge story came through both feeds, under two links: its AMP page names the same canonical url
    assert counts(reports["valley.atom"]) == (1, 0, 1, 0)
    assert len(open_index(fast).articles()) == 4
    requested = page_requests(site)
    assert "/news/night-bus.html" not in requested  # the feed carried the whole story
    assert {"/news/bridge-repairs.html", "/amp/bridge-repairs.html"} <= set(requested)  # utm_* dropped

    metas, base = metas_by_title(fast), site.base_url
    market = metas["Market Hall Reopens After Roof Works"]
    assert (market.url, market.author, market.published_at, market.site_name, market.source) == (
        f"{base}/news/market-hall.html", "Ilse Okafor", "2025-03-06", "Valley Herald", source_key(base))
    night_bus = metas["Riverton Council Approves Night Bus Pilot"]
    assert (night_bus.author, night_bus.published_at, night_bus.site_name) == (
        "Mara Lindqvist", "2025-03-03", "Riverton Post")  # outlet: the feed's own title when none is configured
    library = metas["Riverton Library Extends Evening Hours"]
    assert (library.author, library.url) == ("Ada Quist", f"{base}/news/library-hours.html")  # from the page
    assert metas["Old Mill Bridge Closes for Repairs"].url == f"{base}/news/bridge-repairs.html"  # no utm_*


def test_the_second_round_sends_the_validators_and_writes_nothing(site, fast):
    feeds = [feed(site, "riverton.rss"), feed(site, "valley.atom")]
    refresh(feeds, fast)
    generation, seen = open_index(fast).generation(), len(site.requests)

    reports = refresh(feeds, fast)

    assert all(r.not_modified and r.line().endswith("not modified") for r in reports.values())
    assert site.paths()[seen:] == ["/riverton.rss", "/valley.atom"]  # no page, not even robots.txt
    for path in ("/riverton.rss", "/valley.atom"):
        again = site.headers_of(path)[-1]
        assert again["If-None-Match"] and again["If-Modified-Since"]
    assert open_index(fast).generation() == generation


def test_a_changed_feed_fetches_only_stories_removed_or_edited_since(site, fast):
    feeds = [feed(site, "riverton.rss"), feed(site, "valley.atom")]
    refresh(feeds, fast)
    library_url = f"{site.base_url}/news/library-hours.html"
    assert remove_articles(fast, [url_key(library_url)]) == [url_key(library_url)]
    site.values.update(riverton_built="Tue, 04 Mar 2025 10:00:00 GMT", valley_updated="2025-03-07T10:00:00Z")
    seen = len(site.requests)

    reports = refresh(feeds, fast)  # a new run: what was stored is read back from the state file and the store

    assert counts(reports["riverton.rss"]) == (1, 0, 2, 0)
    assert counts(reports["valley.atom"]) == (0, 0, 2, 0)
    # the market hall is known by its guid (its link, /story?id=2208, is not its canonical url)
    assert page_requests(site, seen) == ["/news/library-hours.html"]

    site.values.update(market_hall_updated="2025-03-07T08:00:00Z", traders="thirty-four")  # the story is edited
    reports = refresh(feeds, fast)

    assert counts(reports["valley.atom"]) == (0, 1, 1, 0)
    texts = [c.text for c in open_index(fast).all_chunks() if c.meta.title.startswith("Market Hall")]
    assert texts and all("thirty-four traders" in t for t in texts)
    assert len(open_index(fast).articles()) == 4


def test_every_failure_is_reported_with_its_url_and_reason_and_the_round_goes_on(site, fast):
    base = site.base_url
    site.statuses["/news/server-error.html"] = 500
    site.delays["/news/slow.html"] = 2.5
    site.streamed["/news/huge.html"] = b"<html><body><article>" + b"<p>Filler words for a page.</p>" * 2000
    site.redirects.update({"/news/loop-a.html": "/news/loop-b.html", "/news/loop-b.html": "/news/loop-a.html"})

    reports = refresh([feed(site, n) for n in ("troubles.rss", "broken.xml", "missing.rss", "riverton.rss")], fast)

    troubles = reports["troubles.rss"]
    assert counts(troubles) == (1, 0, 0, 7)
    expected = {
        "gone.html": "HTTP 404",
        "server-error.html": "HTTP 500 (2 tries)",
        "slow.html": "no response within 1 s (2 tries)",
        "report.pdf": "not an HTML page (application/pdf)",
        "huge.html": "over the 0.01 MB limit (NEWSQA_FETCH_MAX_MB)",
        "loop-a.html": "redirect loop",
        "memo.html": "disallowed by the site's robots.txt",
    }
    for page, reason in expected.items():
        [error] = [e for e in troubles.errors if e.split(": ", 1)[0].endswith(f"/{page}")]  # "url: reason"
        assert error.startswith(f"{base}/") and reason in error, error
    assert site.paths().count("/news/server-error.html") == 2  # retried once
    assert "/private/memo.html" not in site.paths()
    assert counts(reports["broken.xml"]) == (0, 0, 0, 1)
    assert reports["broken.xml"].errors[0].startswith(f"{base}/broken.xml: broken feed XML")
    assert reports["missing.rss"].errors == [f"{base}/missing.rss: HTTP 404"]
    assert counts(reports["riverton.rss"]) == (3, 0, 0, 0)
    assert "Harbour Dredging Finishes Early" in metas_by_title(fast)


def test_pages_are_fetched_politely(site, tmp_path):
    settings = make_settings(tmp_path / "data", **{**FAST, "fetch_host_delay_s": 0.5})
    pages = [f"{site.base_url}/news/{name}.html" for name in ("harbour-dredging", "market-hall", "claims-elsewhere")]

    started = time.monotonic()
    summary = ingest_urls(pages, settings)

    assert summary.added == 3
    assert site.paths() == ["/robots.txt", *(urlsplit(page).path for page in pages)]
    # The k-th request is sent at least k delays after the start, and arrives no sooner than it is sent: a bound
    # a busy machine can't break (it only delays arrivals), which gaps between arrivals are not.
    arrivals = [arrived - started for _, _, arrived in site.requests]
    assert all(at >= 0.5 * k for k, at in enumerate(arrivals)), arrivals
    assert {headers["User-Agent"] for _, headers, _ in site.requests} == {settings.fetch_user_agent}
    # a page may not pass itself off as another outlet's story through its canonical link
    ferry = metas_by_title(settings)["Ferry Timetable Changes for Spring"]
    assert (ferry.url, ferry.source) == (pages[2], source_key(site.base_url))


def test_feeds_files_in_toml_or_yaml_and_their_mistakes_named(tmp_path):
    toml = tmp_path / "feeds.toml"
    toml.write_text('[[feeds]]\nurl = "https://example.org/rss"\nsource = "Example"\nrefresh_minutes = 15\n\n'
                    '[[feeds]]\nurl = "https://example.net/atom.xml"\n')
    yaml = tmp_path / "feeds.yaml"
    yaml.write_text("feeds:\n  - url: https://example.org/rss\n    refresh_minutes: 5\n")

    assert [(str(f.url), f.source, f.refresh_minutes) for f in read_feeds_file(toml)] == [
        ("https://example.org/rss", "Example", 15), ("https://example.net/atom.xml", None, None)]
    assert read_feeds_file(yaml)[0].refresh_minutes == 5
    toml.write_text('[[feeds]]\nsource = "No url"\n')
    with pytest.raises(UsageError, match=r"feeds\.toml: feeds\.0\.url: Field required"):
        read_feeds_file(toml)
    toml.write_text('[[feeds]]\nurl = "ftp://example.org/rss"\n')
    with pytest.raises(UsageError, match=r"feeds\.0\.url: URL scheme should be 'http' or 'https'"):
        read_feeds_file(toml)


def cli_env(settings: Settings) -> dict[str, str]:
    values = {"data_dir": settings.data_dir, **FAST}
    return {**os.environ, **{f"NEWSQA_{name.upper()}": str(value) for name, value in values.items()}}


def test_ingest_command_takes_feeds_and_pages(site, fast):
    base = site.base_url
    done = subprocess.run(
        [sys.executable, "-m", "newsqa", "ingest", "--feed", f"{base}/riverton.rss", "--feed", f"{base}/broken.xml",
         "--url", f"{base}/news/harbour-dredging.html"],
        env=cli_env(fast), capture_output=True, text=True, timeout=180,
    )

    assert done.returncode == 0, done.stderr
    assert "articles: 1 added" in done.stdout
    assert f"feed {base}/riverton.rss: 3 new, 0 updated, 0 unchanged, 0 failed" in done.stdout
    assert f"failed: {base}/broken.xml: broken feed XML" in done.stderr
    assert len(open_index(fast).articles()) == 4


def test_watch_stops_between_items_on_sigterm_and_stores_what_it_fetched_whole(site, fast, tmp_path):
    feeds_file = tmp_path / "feeds.toml"
    feeds_file.write_text(f'[[feeds]]\nurl = "{site.base_url}/riverton.rss"\nrefresh_minutes = 60\n')
    held = site.gates["/news/library-hours.html"] = threading.Event()  # the second item: the first is full text
    watcher = subprocess.Popen([sys.executable, "-m", "newsqa", "watch", "--feeds", str(feeds_file)],
                               env=cli_env(fast), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert site.wait_for("/news/library-hours.html", timeout=120)
        watcher.send_signal(signal.SIGTERM)  # while the second item's page is being fetched
        held.set()
        _, log = watcher.communicate(timeout=180)
    finally:
        held.set()
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()

    assert watcher.returncode == 0, log
    assert f"feed {site.base_url}/riverton.rss: 2 new, 0 updated, 0 unchanged, 0 failed (stopped)" in log
    assert "watch stopped" in log
    assert not any(p.startswith("/news/bridge-repairs") for p in site.paths())  # the third item: never started
    assert sorted(a.title for a in open_index(fast).articles().values()) == [
        "Riverton Council Approves Night Bus Pilot", "Riverton Library Extends Evening Hours"]
    assert not find_problems(open_index(fast))


def test_robots_txt_missing_allows_pages_and_unreadable_allows_none(site, fast):
    page = f"{site.base_url}/news/harbour-dredging.html"
    site.statuses["/robots.txt"] = 503  # the site is down for crawlers: RFC 9309 says stay out

    refused = ingest_urls([page], fast)

    assert refused.failed == 1 and refused.errors == [f"{page}: disallowed by the site's robots.txt"]
    assert page_requests(site) == []
    site.statuses["/robots.txt"] = 404  # no robots.txt at all: everything may be fetched
    assert ingest_urls([page], fast).added == 1


def test_robots_txt_is_read_as_rfc_9309_says(site, tmp_path):
    settings = make_settings(tmp_path / "data", **{**FAST, "fetch_user_agent": "pickybot/1.0 (own rules)"})
    base = site.base_url
    allowed = {
        f"{base}/news/harbour-dredging.html": True,  # its Allow is longer than `Disallow: /news/` before it
        f"{base}/news/market-hall.html": False,
        f"{base}/amp/bridge-repairs.html": True,  # `Allow: /amp/*.html$`
        f"{base}/amp/bridge-repairs.html?print=1": False,  # `$`: the path must end there
    }

    summary = ingest_urls(list(allowed), settings)

    refused = [url for url, ok in allowed.items() if not ok]
    assert summary.errors == [f"{url}: disallowed by the site's robots.txt" for url in refused]
    assert summary.added == 2
    assert page_requests(site) == ["/news/harbour-dredging.html", "/amp/bridge-repairs.html"]


def test_watch_refreshes_each_feed_on_its_schedule_and_logs_a_line_per_feed_per_round(site, fast, caplog):
    feeds = [feed(site, "riverton.rss", refresh_minutes=0.01), feed(site, "valley.atom", refresh_minutes=60)]
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(feeds, fast, stop))
    with caplog.at_level(logging.INFO, logger="newsqa.ingest.watch"):
        watcher.start()
        try:  # riverton's second round is due 0.6 s after its first; valley's not within this test
            assert wait_until(lambda: site.paths().count("/riverton.rss") == 2, timeout=60)
        finally:
            stop.set()
            watcher.join(timeout=60)

    assert not watcher.is_alive()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feed ")]
    assert lines[:3] == [f"feed {site.base_url}/riverton.rss: 3 new, 0 updated, 0 unchanged, 0 failed",
                         f"feed {site.base_url}/valley.atom: 1 new, 0 updated, 1 unchanged, 0 failed",
                         f"feed {site.base_url}/riverton.rss: not modified"]
    assert site.paths().count("/valley.atom") == 1


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_feed_body_is_data_never_a_path(site, fast):
    site.values["local_feed"] = str(SITE / "riverton.rss")  # a feed-shaped file on this machine

    reports = refresh([feed(site, "path-zero.rss"), feed(site, "path-local.rss"), feed(site, "riverton.rss")], fast)

    for name in ("path-zero.rss", "path-local.rss"):  # each read as the few bytes it is, and failed alone
        assert counts(reports[name]) == (0, 0, 0, 1)
        [error] = reports[name].errors
        assert error.startswith(f"{site.base_url}/{name}: broken feed XML"), error
    assert counts(reports["riverton.rss"]) == (3, 0, 0, 0)
    assert len(open_index(fast).articles()) == 3  # nothing from the local file


# Addresses a test's DNS hands out; the network delivers a connection to any of them to the loopback site, so
# a request the fetcher failed to refuse would show in the site's log.
PUBLIC_IP, INTRANET_IP, METADATA_IP = "93.184.215.14", "10.20.30.40", "169.254.169.254"


@pytest.fixture
def network(site, monkeypatch):
    """DNS and routing are boundaries: news.example is public, intranet.example a private name."""
    port = int(site.base_url.rsplit(":", 1)[1])
    names = {"news.example": PUBLIC_IP, "intranet.example": INTRANET_IP}
    monkeypatch.setattr(fetch, "_resolve", lambda host, _port: [names.get(host, host)], raising=False)
    connect = socket.create_connection

    def routed(address, *args, **kwargs):
        host = address[0]
        return connect(("127.0.0.1", port) if host in (PUBLIC_IP, INTRANET_IP, METADATA_IP) else address,
                       *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", routed)
    site.values.update(public=f"http://news.example:{port}", port=str(port))
    return site


def test_no_fetch_reaches_the_fetchers_own_network(network, tmp_path):
    site, base, port = network, network.base_url, network.values["port"]
    public = site.values["public"]
    site.redirects["/news/leak.html"] = f"{base}/news/night-bus.html"  # a public page sending us home
    settings = make_settings(tmp_path / "data", **{**FAST, "fetch_allow_private": False})

    [report] = refresh_feeds([FeedConfig.model_validate({"url": f"{public}/ssrf.rss"})], settings)

    assert counts(report) == (1, 0, 0, 5), report.errors
    refused = {error.split(": ", 1)[0]: error.split(": ", 1)[1] for error in report.errors}
    why = "not a public address (NEWSQA_FETCH_ALLOW_PRIVATE)"
    assert refused == {
        f"{base}/news/market-hall.html": f"refused: 127.0.0.1 is {why}",
        "http://169.254.169.254/latest/meta-data/": f"refused: 169.254.169.254 is {why}",
        f"http://[::ffff:127.0.0.1]:{port}/news/bridge-repairs.html": f"refused: ::ffff:127.0.0.1 is {why}",
        f"{public}/news/leak.html": f"redirected to {base}/news/night-bus.html, refused: 127.0.0.1 is {why}",
        f"http://intranet.example:{port}/news/library-hours.html":
            f"refused: intranet.example resolves to {INTRANET_IP}, which is {why}",
    }
    # only the public site was asked, by its own name: every refused url was refused before connecting
    assert site.paths() == ["/ssrf.rss", "/robots.txt", "/news/leak.html", "/news/harbour-dredging.html"]
    assert {headers["Host"] for _, headers, _ in site.requests} == {f"news.example:{port}"}
    assert [a.title for a in open_index(settings).articles().values()] == ["Harbour Dredging Finishes Early"]


def gzip_bomb(megabytes: int) -> bytes:
    """A valid gzip body of `megabytes` MiB of zeros, built without compressing them all: after a full flush a
    deflate block is byte-aligned and refers to nothing before it, so one compressed MiB can be repeated."""
    zeros, deflate = bytes(1 << 20), zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(zeros, crc)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + block * megabytes + deflate.flush()
            + struct.pack("<II", crc, (megabytes << 20) & 0xFFFFFFFF))


def zstd_bomb(megabytes: int) -> bytes:
    import zstandard  # httpx decodes zstd when this is installed: a server may send it unasked

    compressor, zeros = zstandard.ZstdCompressor().compressobj(), bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(megabytes)) + compressor.flush()


# One fetch in a process of its own, so its peak memory is its own: what it says, its peak's growth, its time.
# With "feed" after the url, the body is also read as a feed.
FETCH_ONE = """
import resource, sys, time
from newsqa.ingest.feeds import parse_feed
from newsqa.ingest.fetch import FetchFailed, PoliteClient
from newsqa.settings import Settings

settings = Settings(_env_file=None, fetch_allow_private=True, fetch_retries=0, fetch_timeout_s=60)
peak, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
with PoliteClient(settings) as client:
    try:
        body = client.get(sys.argv[1], obey_robots=False).body
        if sys.argv[2:] == ["feed"]:
            parsed = parse_feed(body, sys.argv[1], settings.feed_max_items)
            print(len(parsed.items), "items read,", parsed.unread, "more not read")
        else:
            print(len(body), "bytes read")
    except FetchFailed as exc:
        print(exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) // 1024, time.monotonic() - started)
"""


def fetch_one(url: str, *feed: str) -> tuple[str, int, float]:
    """What FETCH_ONE says, how many MB its peak memory grew by, and how many seconds it took."""
    done = subprocess.run([sys.executable, "-c", FETCH_ONE, url, *feed], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said, measures = done.stdout.splitlines()
    return said, int(measures.split()[0]), float(measures.split()[1])


@pytest.mark.parametrize("encoding, bomb, refusal", [
    ("gzip", gzip_bomb, "over the 5 MB limit (NEWSQA_FETCH_MAX_MB) once decompressed"),
    ("zstd", zstd_bomb, "unsupported Content-Encoding 'zstd'"),
])
def test_a_small_body_that_expands_to_gigabytes_stops_at_the_cap(site, encoding, bomb, refusal):
    body = bomb(2048)  # 2 GiB of zeros
    assert len(body) < 2.2e6
    site.streamed["/news/bomb.html"], site.encodings["/news/bomb.html"] = body, encoding

    said, grown_mb, seconds = fetch_one(f"{site.base_url}/news/bomb.html")

    assert said == f"{site.base_url}/news/bomb.html: {refusal}"
    assert grown_mb < 100 and seconds < 10, (grown_mb, seconds)


def test_a_page_sent_a_byte_at_a_time_stops_at_the_fetch_deadline_and_the_feed_goes_on(site, tmp_path):
    # a byte every 0.1 s: never a read that waits the 1 s timeout, and never an end
    site.trickled.update({"/news/loris-body.html": (0.1, False), "/news/loris-headers.html": (0.1, True)})
    settings = make_settings(tmp_path / "data", **{**FAST, "fetch_deadline_s": 3.0})

    reports = refresh([feed(site, "loris.rss"), feed(site, "riverton.rss")], settings)

    assert counts(reports["loris.rss"]) == (1, 0, 0, 2)
    assert reports["loris.rss"].errors == [
        f"{site.base_url}/news/{page}: not fetched within the 3 s deadline (NEWSQA_FETCH_DEADLINE_S)"
        for page in ("loris-body.html", "loris-headers.html")]
    assert counts(reports["riverton.rss"]) == (3, 0, 0, 0)
    arrived = {path: at for path, _, at in site.requests}
    for page, then in ("loris-body", "loris-headers"), ("loris-headers", "harbour-dredging"):
        took = arrived[f"/news/{then}.html"] - arrived[f"/news/{page}.html"]
        assert 2.9 < took < 5, (page, took)  # the deadline, not a read timeout, and not never


def endless_feed(base: str, items: int, first: list[str], atom: bool = False) -> bytes:
    """A feed of `items` items: the pages `first` (paths on the site), then made-up ones."""
    links = [*first, *(f"/news/story-{i}.html" for i in range(items - len(first)))]
    if atom:
        entries = "".join(f'<entry><link href="{link}"/></entry>' for link in links)
        return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
                f'xml:base="{base}/"><title>Endless Wire</title>{entries}</feed>').encode()
    entries = "".join(f"<item><link>{link}</link></item>" for link in links)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Endless Wire</title>'
            f"<link>{base}/</link>{entries}</channel></rss>").encode()


def test_a_feed_of_100k_items_is_read_to_its_cap_in_bounded_time_and_memory(site):
    site.streamed["/endless.rss"] = endless_feed(site.base_url, 100_000, [])
    assert len(site.streamed["/endless.rss"]) < 5e6  # under the default NEWSQA_FETCH_MAX_MB

    said, grown_mb, seconds = fetch_one(f"{site.base_url}/endless.rss", "feed")

    assert said == "500 items read, 99500 more not read"  # NEWSQA_FEED_MAX_ITEMS
    assert grown_mb < 100 and seconds < 30, (grown_mb, seconds)  # all of it in feedparser: ~150 MB, ~2 min


def test_a_feed_over_the_item_cap_stores_its_first_items_and_names_the_cap(site, tmp_path):
    first = ["/news/harbour-dredging.html", "/story?id=2208", "/news/claims-elsewhere.html"]
    site.streamed["/endless.atom"] = endless_feed(site.base_url, 100_000, first, atom=True)
    settings = make_settings(tmp_path / "data", **{**FAST, "fetch_max_mb": 10, "feed_max_items": 3})

    reports = refresh([feed(site, "endless.atom"), feed(site, "riverton.rss")], settings)

    assert reports["endless.atom"].line() == (f"feed {site.base_url}/endless.atom: 3 new, 0 updated, 0 unchanged, "
                                              "0 failed, 99997 more not read (NEWSQA_FEED_MAX_ITEMS)")
    assert counts(reports["riverton.rss"]) == (3, 0, 0, 0)
    assert not any(path.startswith("/news/story-") for path in site.paths())
    assert {"Harbour Dredging Finishes Early", "Market Hall Reopens After Roof Works",
            "Ferry Timetable Changes for Spring"} <= set(metas_by_title(settings))


def test_one_bad_item_fails_alone_in_watch(site, fast, caplog, monkeypatch):
    extract = loaders.trafilatura.bare_extraction

    def choking(html, **options):  # a library bug met in one page's content
        if b"Ferry" in (html if isinstance(html, bytes) else html.encode()):
            raise RuntimeError("extractor choked")
        return extract(html, **options)

    monkeypatch.setattr(loaders.trafilatura, "bare_extraction", choking)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=([feed(site, "odd-items.rss", refresh_minutes=60)], fast, stop))
    line = f"feed {site.base_url}/odd-items.rss: "
    with caplog.at_level(logging.INFO):
        watcher.start()
        try:
            assert wait_until(lambda: any(r.getMessage().startswith(line) for r in caplog.records), timeout=120)
        finally:
            stop.set()
            watcher.join(timeout=60)

    messages = [r.getMessage() for r in caplog.records]
    assert f"{line}1 new, 0 updated, 0 unchanged, 2 failed" in messages
    assert f"failed {site.base_url}/news/market-hall.html: unreadable feed item (year 0 is out of range)" in messages
    assert (f"failed {site.base_url}/news/claims-elsewhere.html: failed unexpectedly (RuntimeError: extractor "
            f"choked)") in messages
    assert [a.title for a in open_index(fast).articles().values()] == ["Harbour Dredging Finishes Early"]


def test_one_bad_item_stops_neither_its_feed_nor_the_next_in_ingest(site, fast, tmp_path):
    feeds_file = tmp_path / "feeds.toml"
    feeds_file.write_text("".join(f'[[feeds]]\nurl = "{site.base_url}/{name}"\n'
                                  for name in ("odd-items.rss", "riverton.rss")))

    done = subprocess.run([sys.executable, "-m", "newsqa", "ingest", "--feeds", str(feeds_file)],
                          env=cli_env(fast), capture_output=True, text=True, timeout=180)

    assert done.returncode == 0, done.stderr
    assert f"feed {site.base_url}/odd-items.rss: 2 new, 0 updated, 0 unchanged, 1 failed" in done.stdout
    assert f"failed: {site.base_url}/news/market-hall.html: unreadable feed item (year 0" in done.stderr
    assert f"feed {site.base_url}/riverton.rss: 3 new, 0 updated, 0 unchanged, 0 failed" in done.stdout
    assert len(open_index(fast).articles()) == 5


def test_a_guid_is_known_within_its_own_feed_only(site, fast):
    feeds = [feed(site, "valley.atom"), feed(site, "shadow.atom")]  # shadow reuses valley's market-hall guid

    reports = refresh(feeds, fast)

    assert counts(reports["shadow.atom"]) == (1, 0, 0, 0)
    assert "Harbour Dredging Finishes Early" in metas_by_title(fast)


def test_items_remembered_before_feeds_were_scoped_are_claimed_by_the_feed_listing_them(site, fast):
    feeds = [feed(site, "riverton.rss"), feed(site, "valley.atom")]
    refresh(feeds, fast)
    path = fast.data_dir / "feeds-state.json"
    scoped = json.loads(path.read_text())["feed_items"]
    # the file as written before items were scoped, without validators: the next round reads every feed whole
    unscoped = {identity: record for items in scoped.values() for identity, record in items.items()}
    path.write_text(json.dumps({"validators": {}, "items": unscoped}))
    seen = len(site.requests)

    reports = refresh(feeds, fast)

    assert counts(reports["riverton.rss"]) == (0, 0, 3, 0) and counts(reports["valley.atom"]) == (0, 0, 2, 0)
    assert page_requests(site, seen) == []  # the market hall known by its guid still: /story?id=2208 not fetched
    state = json.loads(path.read_text())
    assert state["items"] == {} and state["feed_items"] == scoped


def test_a_full_text_item_is_its_links_outlet_only_where_the_feed_speaks_for_it(site, tmp_path):
    claimed = "https://www.other-outlet.example/coast/lighthouse.html"
    for hosts, source in (None, source_key(site.base_url)), (["other-outlet.example"], "other-outlet.example"):
        settings = make_settings(tmp_path / str(source), **FAST)
        [report] = refresh_feeds([feed(site, "claims.rss", **({"hosts": hosts} if hosts else {}))], settings)

        assert counts(report) == (1, 0, 0, 0)

        lighthouse = metas_by_title(settings)["Lighthouse Keepers Return to Cape Morrow"]
        assert (lighthouse.url, lighthouse.source) == (claimed, source)
    assert not any("other-outlet" in p for p in site.paths())  # no page fetched: the item carried the story
