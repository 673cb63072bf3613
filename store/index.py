"""The only module that talks to Chroma: client, metadata schema, upsert/delete, the writer lock."""

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import chromadb
from chromadb.api.types import Where
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

from newsqa.errors import StoreLocked, StoreUnavailable
from newsqa.settings import Settings
from newsqa.store.models import Chunk, ChunkMeta, headed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    meta: ChunkMeta

    @property
    def headed_text(self) -> str:
        return headed(self.meta.title, self.text)


def open_index(settings: Settings) -> "Index":
    """The configured store: the embedded one under the data dir, or a Chroma server."""
    chroma = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma)
        else:
            settings.chroma_dir.mkdir(parents=True, exist_ok=True)
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

    # --- reads -------------------------------------------------------------------------------

    def count(self) -> int:
        return self.collection.count()

    def article_hashes(self) -> dict[str, str]:
        """article id → content hash, from each article's first chunk."""
        got = self.collection.get(where={"chunk_index": 0}, include=["metadatas"])
        return {str(m["article_id"]): str(m["content_hash"]) for m in got["metadatas"] or []}

    def all_chunks(self, page: int = 5000) -> Iterator[StoredChunk]:
        for offset in range(0, self.count(), page):
            got = self.collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            yield from _stored(got["ids"], got["documents"], got["metadatas"])

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

    def bump_generation(self) -> None:
        metadata = {k: v for k, v in (self.collection.metadata or {}).items() if not k.startswith("hnsw:")}
        self.collection.modify(metadata={**metadata, "generation": str(time.time_ns())})


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


def _stored(
    ids: Sequence[str], texts: Sequence[str | None] | None, metas: Sequence[Mapping[str, Any]] | None
) -> Iterator[StoredChunk]:
    for cid, text, meta in zip(ids, texts or [], metas or [], strict=True):
        yield StoredChunk(cid, text or "", ChunkMeta.from_store(meta or {}))


def _where(clause: dict[str, Any] | None) -> Where | None:
    """Chroma's `Where` is a union of nested dict types that checkers can't infer from a literal."""
    return cast(Where | None, clause)
