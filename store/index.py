"""The only module that talks to Chroma: client, metadata schema, upsert/delete, the writer lock.

Two collections: the chunks (text, vector, ChunkMeta) and one record per article, written only after all of
that article's chunks. A chunk counts only when its article's record names its version: that is what makes an
article all or nothing, whatever a writer was killed by.

Writers hold a lease in a third collection while they write (renewed in the background) and tag the chunks they
store with it, so that on a Chroma server with several writers a repair clears only what dead writers left.
Every delete names the versions it takes (an article id alone would take the version a live writer is
storing), and whoever deletes chunks or records an article looks again afterwards (`settle`): of two writers
racing over one version, one of them sees a record whose chunks are gone, and withdraws it.

The chunks' collection records the settings that define what it holds (`definition`), and the store refuses to
be opened with other values."""

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.api.types import Where
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

from newsqa.errors import IndexSettingsDiffer, NewsqaError, StoreLocked, StoreUnavailable
from newsqa.settings import Settings, env_name
from newsqa.store.embedding import model_name
from newsqa.store.models import Article, Chunk, ChunkMeta, headed

log = logging.getLogger(__name__)
PAGE = 5000  # records per read: Chroma answers large gets in pages
ID_BATCH = 500  # ids per `$in` filter
# On the article records' metadata: present once a writer of records has written ("0"); "1" is what a killed
# writer of the single-writer format (before leases) left, so an upgrade still repairs it.
_WRITING = "writing"
_DEFINED = "defined_by:"  # on the chunks' metadata, before each setting of `definition`
_HOST = socket.gethostname()


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    meta: ChunkMeta

    @property
    def headed_text(self) -> str:
        return headed(self.meta.title, self.text)

    def counts_in(self, versions: Mapping[str, str]) -> bool:
        """Whether its article's record (article id → content hash) names this chunk's version."""
        return versions.get(self.meta.article_id) == self.meta.content_hash


@dataclass(frozen=True)
class StoredArticle:
    """An article's completeness record: its stored version and how many chunks that version has."""

    id: str
    content_hash: str
    chunks: int
    title: str
    source: str | None = None
    published_ts: int | None = None

    @classmethod
    def read(cls, rid: str, meta: Mapping[str, Any]) -> "StoredArticle":
        """A record as the store keeps it."""
        return cls(id=rid, **{k: meta.get(k) for k in _RECORD_FIELDS})  # type: ignore[arg-type]

    @classmethod
    def of(cls, article: Article, chunks: int) -> "StoredArticle":
        utc = article.published_utc
        return cls(article.key, article.content_hash, chunks, article.title, article.source,
                   int(utc.timestamp()) if utc else None)


def definition(settings: Settings) -> dict[str, str | int]:
    """The settings that decide what a store holds, by name, which the article hash doesn't see: chunks cut or
    embedded otherwise would not compare with the stored ones. (Another setting that does, say the embedder's
    provider, joins here: stores recorded before it take the current value on their next open.)"""
    return {"chunk_tokens": settings.chunk_tokens, "chunk_overlap_tokens": settings.chunk_overlap_tokens,
            "embedding_model_path": model_name(settings)}


def open_index(settings: Settings, fresh: bool = False) -> "Index":
    """The configured store: the embedded one under the data dir, or a Chroma server; refused when it was built
    with another `definition`, for reading as for writing.

    `fresh`: read the embedded store as it is now. Chroma keeps one client system per path and process, and
    that system never sees vectors another process wrote after it loaded them; handles already given out
    keep working on the old one."""
    chroma = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma)
        else:
            settings.chroma_dir.mkdir(parents=True, exist_ok=True)
            if fresh:
                SharedSystemClient._identifier_to_system.pop(str(settings.chroma_dir), None)
            client = chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma)
        index = Index(client, settings.collection, settings.writer_lease_seconds)
        differences = index.keep_definition(definition(settings))
    except NewsqaError:
        raise
    except Exception as exc:  # Chroma raises many types here; what they mean to a user is one thing
        log.exception("opening the store at %s failed", settings.chroma_host or settings.chroma_dir)
        raise StoreUnavailable("the article store could not be opened") from exc
    if differences:
        where = (f"collection {settings.collection} on {settings.chroma_host}:{settings.chroma_port}"
                 if settings.chroma_host else str(settings.chroma_dir.resolve()))
        built = ", ".join(f"{env_name(name)} {stored!r} (now {now!r})" for name, (stored, now) in differences.items())
        raise IndexSettingsDiffer(
            f"the store at {where} was built with {built}: its chunks and new ones would not compare. Set "
            f"{' and '.join(map(env_name, differences))} back, or ingest into a new store (another "
            "NEWSQA_DATA_DIR, or NEWSQA_COLLECTION)")
    return index


@dataclass(frozen=True)
class Lease:
    """A writer's claim to be alive: renewed while it writes, removed when it finishes."""

    writer: str
    host: str
    pid: int
    expires: float  # epoch seconds

    def alive(self, now: float) -> bool:
        """Not expired, and not held by a process of this host that has gone (a kill is seen at once)."""
        return self.expires > now and (self.host != _HOST or _process_exists(self.pid))


class Index:
    def __init__(self, client: chromadb.ClientAPI, collection_name: str, lease_seconds: float = 30.0):
        self.client = client
        self.lease_seconds = lease_seconds
        self.writer: str | None = None  # this process's lease while it writes
        self._held_until = 0.0  # monotonic time the lease is known good until
        self.collection = client.get_or_create_collection(
            collection_name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        # Records are only ever read by id or metadata; Chroma still wants a vector for each, so they get [0].
        self.records = client.get_or_create_collection(f"{collection_name}_articles", embedding_function=None)
        self.leases = client.get_or_create_collection(f"{collection_name}_writers", embedding_function=None)

    def keep_definition(self, current: Mapping[str, str | int]) -> dict[str, tuple[Any, str | int]]:
        """Where the recorded definition differs from `current`: {setting: (recorded, current)}. A store without
        chunks, or a setting it has no record of yet (a store made before it was recorded), takes `current`."""
        metadata = self.collection.metadata or {}
        recorded = {k.removeprefix(_DEFINED): v for k, v in metadata.items() if k.startswith(_DEFINED)}
        empty = self.count() == 0
        new = {k: v for k, v in current.items() if (empty or k not in recorded) and recorded.get(k) != v}
        if new:
            _set_metadata(self.collection, {_DEFINED + k: v for k, v in new.items()})
        return {k: (recorded[k], v) for k, v in current.items() if k not in new and recorded.get(k, v) != v}

    # --- reads -------------------------------------------------------------------------------

    def count(self) -> int:
        """Chunks stored, crash debris included (readers skip it; see `articles`)."""
        return self.collection.count()

    def articles(self) -> dict[str, StoredArticle]:
        """The complete articles: id → record."""
        records: dict[str, StoredArticle] = {}
        for offset in range(0, self.records.count(), PAGE):
            got = self.records.get(include=["metadatas"], limit=PAGE, offset=offset)
            for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                records[rid] = StoredArticle.read(rid, meta)
        return records

    def all_chunks(self, with_text: bool = True) -> Iterator[StoredChunk]:
        """Every stored chunk, debris included; without text for a cheap scan."""
        include: list[Any] = ["documents", "metadatas"] if with_text else ["metadatas"]
        for offset in range(0, self.count(), PAGE):
            got = self.collection.get(include=include, limit=PAGE, offset=offset)
            yield from _stored(got["ids"], got["documents"] or [""] * len(got["ids"]), got["metadatas"])

    def chunks_of_articles(self, article_ids: Sequence[str], with_text: bool = True) -> Iterator[StoredChunk]:
        """Every stored chunk of these articles, debris included."""
        include: list[Any] = ["documents", "metadatas"] if with_text else ["metadatas"]
        for i in range(0, len(article_ids), ID_BATCH):
            where = {"article_id": {"$in": list(article_ids[i : i + ID_BATCH])}}
            got = self.collection.get(where=_where(where), include=include)
            yield from _stored(got["ids"], got["documents"] or [""] * len(got["ids"]), got["metadatas"])

    def records_of(self, article_ids: Sequence[str]) -> dict[str, StoredArticle]:
        """The records of these articles that exist: id → record."""
        records: dict[str, StoredArticle] = {}
        for i in range(0, len(article_ids), ID_BATCH):
            got = self.records.get(ids=list(article_ids[i : i + ID_BATCH]), include=["metadatas"])
            for rid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                records[rid] = StoredArticle.read(rid, meta)
        return records

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None) -> list[StoredChunk]:
        """The k nearest chunks, nearest first."""
        if self.count() == 0:
            return []
        got = self.collection.query(
            query_embeddings=[vector], n_results=k, where=_where(where),
            include=["documents", "metadatas"],
        )
        [texts], [metas] = got["documents"] or [[]], got["metadatas"] or [[]]
        return list(_stored(got["ids"][0], texts, metas))

    def generation(self) -> str:
        """Changes whenever the stored chunks change; readers use it to refresh derived indexes."""
        fresh = self.client.get_collection(self.collection.name)  # another process may have written
        return str((fresh.metadata or {}).get("generation", "0"))

    def writers(self) -> list[Lease]:
        got = self.leases.get(include=["metadatas"])
        return [Lease(wid, **{k: meta[k] for k in ("host", "pid", "expires")})  # type: ignore[arg-type]
                for wid, meta in zip(got["ids"], got["metadatas"] or [], strict=True)]

    def write_interrupted(self) -> bool:
        """A writer died part-way: `check` will find its debris."""
        fresh = self.client.get_collection(self.records.name)
        now = time.time()
        return (fresh.metadata or {}).get(_WRITING) == "1" or any(not w.alive(now) for w in self.writers())

    def chunks_of(self, article: StoredArticle) -> int:
        """How many chunks of this version of the article are stored."""
        where = {"$and": [{"article_id": article.id}, {"content_hash": article.content_hash}]}
        return len(self.collection.get(where=_where(where), include=[])["ids"])

    def legacy(self) -> bool:
        """Chunks written before article records existed: no writer of this version has marked the store."""
        fresh = self.client.get_collection(self.records.name)
        return _WRITING not in (fresh.metadata or {}) and self.count() > 0

    # --- writes (hold the writer lock) -----------------------------------------------------------

    def upsert(self, chunks: list[Chunk], texts: list[str], vectors: list[Sequence[float]]) -> None:
        writer = self._lease_held()
        step = self.client.get_max_batch_size()
        for i in range(0, len(chunks), step):
            batch = chunks[i : i + step]
            self.collection.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors[i : i + step],
                documents=texts[i : i + step],
                metadatas=[ChunkMeta.of(c, writer).to_store() for c in batch],
            )

    def delete_stale(self, articles: Sequence[StoredArticle]) -> list[str]:
        """Called once `articles` are recorded: drop their other versions' chunks, but a live writer's (it may
        record its version after ours: then ours goes, by its hand or, if it finishes first, by ours). A
        version of ours that another writer's record (or a removal) has since replaced goes too. Returns the
        ids of articles found incomplete and withdrawn (see `settle`)."""
        ours = {a.id: a.content_hash for a in articles}
        chunks = list(self.chunks_of_articles(list(ours), with_text=False))
        now = time.time()  # leases read after the chunks: a writer whose chunk we saw was registered before it
        alive = {w.writer for w in self.writers() if w.alive(now)} - {self.writer}
        recorded = {a.id: a.content_hash for a in self.records_of(list(ours)).values()}

        def stale(meta: ChunkMeta) -> bool:
            mine = ours[meta.article_id]
            if recorded.get(meta.article_id) == mine:
                return meta.content_hash != mine and meta.writer not in alive
            return meta.content_hash == mine and meta.writer == self.writer

        return self.delete_chunks([c for c in chunks if stale(c.meta)], settle=list(ours))

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Holds a lease while a write is under way, renewed every third of its term; one that raises gives its
        lease up as expired, for repair. Readers are told to look again either way."""
        self.writer = uuid.uuid4().hex
        self._renew()
        if (self.records.metadata or {}).get(_WRITING) != "0":  # the store has records (see `legacy`)
            _set_metadata(self.records, {_WRITING: "0"})
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._keep_renewing, args=(stop,), daemon=True, name="lease")
        heartbeat.start()
        finished = False
        try:
            yield
            finished = True
        finally:
            stop.set()
            heartbeat.join()
            if finished:
                self.leases.delete(ids=[self.writer])
            else:
                with suppress(Exception):  # an unreachable store: the lease then runs out by itself
                    self._renew(expires=0.0)
            self.writer = None
            _set_metadata(self.collection, {"generation": str(time.time_ns())})  # readers: look again

    def end_leases(self, writers: Sequence[str]) -> None:
        """Forget dead writers once what they left is repaired."""
        if writers:
            self.leases.delete(ids=list(writers))

    def record(self, articles: Sequence[StoredArticle]) -> None:
        """Declare these articles complete: call only once all of their chunks are stored."""
        self._lease_held()
        step = self.client.get_max_batch_size()
        for i in range(0, len(articles), step):
            batch = articles[i : i + step]
            placeholders: list[Sequence[float]] = [[0.0]] * len(batch)
            self.records.upsert(
                ids=[a.id for a in batch], embeddings=placeholders,
                metadatas=[{k: v for k in _RECORD_FIELDS if (v := getattr(a, k)) is not None} for a in batch],
            )

    def delete_chunks(self, chunks: Sequence[StoredChunk], settle: Sequence[str] = ()) -> list[str]:
        """Delete these chunks, then `settle` their articles and those named; returns the ids withdrawn."""
        ids = [c.id for c in chunks]
        for i in range(0, len(ids), PAGE):
            self.collection.delete(ids=ids[i : i + PAGE])
        return self.settle(sorted({c.meta.article_id for c in chunks} | set(settle)))

    def remove(self, articles: Sequence[StoredArticle]) -> None:
        """These versions of these articles, records first (from then on readers ignore the chunks, whenever
        they are deleted). Another version, one a live writer stores meanwhile, is its own and stays."""
        for i in range(0, len(articles), ID_BATCH):
            part = articles[i : i + ID_BATCH]
            versions = {a.id: a.content_hash for a in part}
            # the version as a filter too: deleting a newer record would leave its chunks nothing to count in
            self.records.delete(ids=list(versions),
                                where=_where({"content_hash": {"$in": sorted(set(versions.values()))}}))
            doomed = [c for c in self.chunks_of_articles(list(versions), with_text=False)
                      if versions[c.meta.article_id] == c.meta.content_hash]
            self.delete_chunks(doomed, settle=list(versions))

    def settle(self, article_ids: Sequence[str]) -> list[str]:
        """Withdraw the records of these articles that name chunks no longer stored, and return their ids.

        A delete can race another writer's record of the same version (a removal, or a stale version's delete,
        while someone stores that version again). Each side settles after its own write, so one of them sees the
        record with its chunks gone; the article then goes whole, and its next ingest stores it afresh."""
        records = self.records_of(article_ids)
        versions = {a.id: a.content_hash for a in records.values()}
        present = Counter(c.meta.article_id for c in self.chunks_of_articles(list(versions), with_text=False)
                          if c.counts_in(versions))
        short = [a for a in records.values() if present[a.id] < a.chunks]
        if short:
            log.warning("withdrew %d articles whose chunks another writer deleted meanwhile: %s", len(short),
                        ", ".join(a.id for a in short))
            self.records.delete(ids=[a.id for a in short],
                                where=_where({"content_hash": {"$in": sorted({a.content_hash for a in short})}}))
        return [a.id for a in short]

    def _renew(self, expires: float | None = None) -> None:
        assert self.writer, "renewing a lease outside `writing()`"
        deadline = time.time() + self.lease_seconds if expires is None else expires
        started = time.monotonic()
        placeholder: list[Sequence[float]] = [[0.0]]  # as for records: Chroma wants a vector
        self.leases.upsert(ids=[self.writer], embeddings=placeholder,
                           metadatas=[{"host": _HOST, "pid": os.getpid(), "expires": deadline}])
        self._held_until = started + self.lease_seconds

    def _keep_renewing(self, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            try:
                self._renew()
            except Exception:  # the server may be restarting: try again; writes stop once the lease runs out
                log.warning("renewing the write lease failed; retrying", exc_info=True)

    def _lease_held(self) -> str:
        """This writer's id; fails once its lease has run out unrenewed, as another writer may then have
        cleared its unfinished chunks as a dead writer's."""
        if self.writer is None:
            raise RuntimeError("writes happen inside `writing()`")
        if time.monotonic() >= self._held_until:
            raise StoreUnavailable("the write lease on the article store ran out (the store did not answer); "
                                   "run the ingest again")
        return self.writer


@contextmanager
def writer_lock(settings: Settings) -> Iterator[None]:
    """One writer per data dir for the embedded store: two processes writing one Chroma directory corrupt it.
    A Chroma server takes concurrent writers (leases keep them from repairing each other's work)."""
    if settings.chroma_host:
        yield
        return
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / "writer.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StoreLocked(
            f"another newsqa process is writing to {data_dir} (lock {lock.lock_file}); "
            "wait for it to finish, or run a Chroma server (NEWSQA_CHROMA_HOST) for concurrent writers"
        ) from None
    try:
        yield
    finally:
        lock.release()


_RECORD_FIELDS = ("content_hash", "chunks", "title", "source", "published_ts")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def _set_metadata(collection: chromadb.Collection, values: Mapping[str, str | int]) -> None:
    """Chroma replaces a collection's metadata whole: keep the rest (but its fixed index settings)."""
    metadata = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
    collection.modify(metadata={**metadata, **values})


def _stored(
    ids: Sequence[str], texts: Sequence[str | None] | None, metas: Sequence[Mapping[str, Any]] | None
) -> Iterator[StoredChunk]:
    for cid, text, meta in zip(ids, texts or [], metas or [], strict=True):
        yield StoredChunk(cid, text or "", ChunkMeta.from_store(meta or {}))


def _where(clause: dict[str, Any] | None) -> Where | None:
    """Chroma's `Where` is a union of nested dict types that checkers can't infer from a literal."""
    return cast(Where | None, clause)
