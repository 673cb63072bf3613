"""The only module that talks to Chroma: client, metadata schema, upsert/delete, the writer lock.

Two collections: the chunks (text, vector, ChunkMeta) and one record per article, written only after all of
that article's chunks. A chunk counts only when its article's record names its version: that is what makes an
article all or nothing, whatever a writer was killed by."""

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import chromadb
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.api.types import Where
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

from newsqa.errors import StoreLocked, StoreUnavailable
from newsqa.settings import Settings
from newsqa.store.models import Article, Chunk, ChunkMeta, headed

log = logging.getLogger(__name__)
PAGE = 5000  # records per read: Chroma answers large gets in pages
_WRITING = "writing"  # "1" on the article records while a writer works; left so if it dies


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
    def of(cls, article: Article, chunks: int) -> "StoredArticle":
        utc = article.published_utc
        return cls(article.key, article.content_hash, chunks, article.title, article.source,
                   int(utc.timestamp()) if utc else None)


def open_index(settings: Settings, fresh: bool = False) -> "Index":
    """The configured store: the embedded one under the data dir, or a Chroma server.

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
        return Index(client, settings.collection)
    except Exception as exc:  # Chroma raises many types here; what they mean to a user is one thing
        log.exception("opening the store at %s failed", settings.chroma_host or settings.chroma_dir)
        raise StoreUnavailable("the article store could not be opened") from exc


class Index:
    def __init__(self, client: chromadb.ClientAPI, collection_name: str):
        self.client = client
        self.collection = client.get_or_create_collection(
            collection_name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        # Records are only ever read by id or metadata; Chroma still wants a vector for each, so they get [0].
        self.records = client.get_or_create_collection(f"{collection_name}_articles", embedding_function=None)

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
                records[rid] = StoredArticle(id=rid, **{k: meta.get(k) for k in _RECORD_FIELDS})  # type: ignore[arg-type]
        return records

    def all_chunks(self, with_text: bool = True) -> Iterator[StoredChunk]:
        """Every stored chunk, debris included; without text for a cheap scan."""
        include: list[Any] = ["documents", "metadatas"] if with_text else ["metadatas"]
        for offset in range(0, self.count(), PAGE):
            got = self.collection.get(include=include, limit=PAGE, offset=offset)
            yield from _stored(got["ids"], got["documents"] or [""] * len(got["ids"]), got["metadatas"])

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

    def write_interrupted(self) -> bool:
        """A writer died part-way since the last complete write: `check` will find its debris."""
        fresh = self.client.get_collection(self.records.name)
        return (fresh.metadata or {}).get(_WRITING) == "1"

    def legacy(self) -> bool:
        """Chunks written before article records existed: no writer of this version has marked the store."""
        fresh = self.client.get_collection(self.records.name)
        return _WRITING not in (fresh.metadata or {}) and self.count() > 0

    # --- writes (hold the writer lock) -----------------------------------------------------------

    def upsert(self, chunks: list[Chunk], texts: list[str], vectors: list[Sequence[float]]) -> None:
        step = self.client.get_max_batch_size()
        for i in range(0, len(chunks), step):
            batch = chunks[i : i + step]
            self.collection.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors[i : i + step],
                documents=texts[i : i + step],
                metadatas=[ChunkMeta.of(c).to_store() for c in batch],
            )

    def delete_stale(self, article_id: str, content_hash: str) -> None:
        """Drop an article's chunks from older versions; called after the new ones are stored."""
        self.collection.delete(
            where=_where({"$and": [{"article_id": article_id}, {"content_hash": {"$ne": content_hash}}]})
        )

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Marks the store while a write is under way; a write that raises leaves the mark for repair."""
        _set_metadata(self.records, _WRITING, "1")
        yield
        _set_metadata(self.records, _WRITING, "0")
        _set_metadata(self.collection, "generation", str(time.time_ns()))  # readers: look again

    def record(self, articles: Sequence[StoredArticle]) -> None:
        """Declare these articles complete: call only once all of their chunks are stored."""
        placeholders: list[Sequence[float]] = [[0.0]] * len(articles)
        self.records.upsert(
            ids=[a.id for a in articles], embeddings=placeholders,
            metadatas=[{k: v for k in _RECORD_FIELDS if (v := getattr(a, k)) is not None} for a in articles],
        )

    def delete_chunks(self, ids: Sequence[str]) -> None:
        for i in range(0, len(ids), PAGE):
            self.collection.delete(ids=list(ids[i : i + PAGE]))

    def remove(self, article_ids: Sequence[str]) -> None:
        """Records first: from then on readers ignore the chunks, whenever they are deleted."""
        for i in range(0, len(article_ids), PAGE):
            part = list(article_ids[i : i + PAGE])
            self.records.delete(ids=part)
            self.collection.delete(where=_where({"article_id": {"$in": part}}))


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """One writer per data dir: two processes writing one Chroma directory corrupt it."""
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


def _set_metadata(collection: chromadb.Collection, key: str, value: str) -> None:
    """Chroma replaces a collection's metadata whole: keep the rest (but its fixed index settings)."""
    metadata = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
    collection.modify(metadata={**metadata, key: value})


def _stored(
    ids: Sequence[str], texts: Sequence[str | None] | None, metas: Sequence[Mapping[str, Any]] | None
) -> Iterator[StoredChunk]:
    for cid, text, meta in zip(ids, texts or [], metas or [], strict=True):
        yield StoredChunk(cid, text or "", ChunkMeta.from_store(meta or {}))


def _where(clause: dict[str, Any] | None) -> Where | None:
    """Chroma's `Where` is a union of nested dict types that checkers can't infer from a literal."""
    return cast(Where | None, clause)
