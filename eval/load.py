"""Load drill: N concurrent clients ask for S seconds while a prober times /healthz; prints the figures.

    python -m newsqa.eval.load --url http://127.0.0.1:8000 --clients 20 --seconds 60

A client that gets 503 waits what Retry-After says, as a polite client does. Loopback use only: it is a
drill for this service, not a load generator for anyone else's."""

import argparse
import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from newsqa.service.answering.schemas import ChatResponse

QUESTION = "Who killed al-Rufayi?"
UVICORN_KEEP_ALIVE_S = 5  # uvicorn's timeout_keep_alive, which `newsqa serve` leaves at its default


@dataclass
class LoadFigures:
    statuses: Counter[int] = field(default_factory=Counter)
    answer_ms: list[float] = field(default_factory=list)  # of 200s
    health_ms: list[float] = field(default_factory=list)
    malformed: int = 0  # 200s whose body is not a ChatResponse
    health_failures: int = 0

    def lines(self) -> list[str]:
        done = sorted(self.answer_ms)
        health = sorted(self.health_ms)
        return [
            f"requests: {sum(self.statuses.values())}  by status: {dict(sorted(self.statuses.items()))}",
            f"answered (200): {len(done)}, p50 {_pct(done, 50):.0f} ms, p95 {_pct(done, 95):.0f} ms; "
            f"malformed: {self.malformed}",
            f"/healthz: {len(health)} probes, p50 {_pct(health, 50):.1f} ms, max {max(health, default=0):.1f} ms, "
            f"failed: {self.health_failures}",
        ]


def _pct(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(pct / 100 * (len(values) - 1)))]


async def _client(http: httpx.AsyncClient, until: float, figures: LoadFigures) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await http.post("/v1/chat", json={"question": QUESTION})
        figures.statuses[response.status_code] += 1
        if response.status_code == 200:
            figures.answer_ms.append((time.perf_counter() - started) * 1000)
            try:
                ChatResponse.model_validate(response.json())
            except ValueError:
                figures.malformed += 1
        elif response.status_code == 503 and "Retry-After" in response.headers:
            await asyncio.sleep(min(float(response.headers["Retry-After"]), max(0.0, until - time.monotonic())))


async def _prober(http: httpx.AsyncClient, until: float, figures: LoadFigures) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await http.get("/healthz")
        figures.health_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            figures.health_failures += 1
        await asyncio.sleep(0.2)


async def drive(url: str, clients: int, seconds: float, timeout_s: float = 120.0) -> LoadFigures:
    figures = LoadFigures()
    until = time.monotonic() + seconds
    # uvicorn closes a connection idle for 5 s: a client that slept a Retry-After of 5 s and sent on the connection
    # as the server closed it got a ReadError (seen in CI). Idle connections are dropped on this side first.
    limits = httpx.Limits(max_connections=clients + 2, keepalive_expiry=UVICORN_KEEP_ALIVE_S - 1)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as http:
        await asyncio.gather(_prober(http, until, figures), *(_client(http, until, figures) for _ in range(clients)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    figures = asyncio.run(drive(args.url, args.clients, args.seconds))
    print("\n".join(figures.lines()))


if __name__ == "__main__":
    main()
