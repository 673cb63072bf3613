"""The only module that talks to Chroma: client, metadata schema, upsert/delete, the writer lock."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import chromadb
from chromadb.config import Settings as ChromaSettings
from filelock import FileLock, Timeout

from ingest.models import Chunk


class IndexLocked(RuntimeError):
    pass


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict


def chunk_metadata(chunk: Chunk) -> dict:
    article = chunk.article
    meta = {
        "article_id": article.key,
        "content_hash": article.content_hash,
        "title": article.title,
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
    }
    # Chroma rejects None values: absent fields are simply left out.
    if article.source:
        meta["source"] = article.source
    if article.url:
        meta["url"] = article.url
    if article.published_at:
        meta["published_at"] = article.published_iso
        meta["published_ts"] = int(article.published_utc.timestamp())  # UTC: filters don't shift with the zone
    return meta


class Index:
    def __init__(self, client: chromadb.ClientAPI, collection_name: str):
        self.client = client
        self.collection = client.get_or_create_collection(
            collection_name, metadata={"hnsw:space": "cosine"}, embedding_function=None
        )

    @classmethod
    def open(cls, chroma_dir: Path, collection: str, host: str | None = None, port: int = 8000) -> "Index":
        settings = ChromaSettings(anonymized_telemetry=False)
        if host:
            client = chromadb.HttpClient(host=host, port=port, settings=settings)
        else:
            chroma_dir.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(chroma_dir), settings=settings)
        return cls(client, collection)

    # --- reads -------------------------------------------------------------------------------

    def count(self) -> int:
        return self.collection.count()

    def article_hashes(self) -> dict[str, str]:
        """article id → content hash, from each article's first chunk."""
        got = self.collection.get(where={"chunk_index": 0}, include=["metadatas"])
        return {m["article_id"]: m["content_hash"] for m in got["metadatas"]}

    def all_chunks(self, page: int = 5000) -> Iterator[StoredChunk]:
        for offset in range(0, self.count(), page):
            got = self.collection.get(include=["documents", "metadatas"], limit=page, offset=offset)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield StoredChunk(cid, text, meta)

    def query(self, vector: list[float], k: int, where: dict | None) -> list[StoredChunk]:
        """The k nearest chunks, nearest first."""
        if self.count() == 0:
            return []
        got = self.collection.query(
            query_embeddings=[vector], n_results=k, where=where,
            include=["documents", "metadatas"],
        )
        rows = zip(got["ids"][0], got["documents"][0], got["metadatas"][0], strict=True)
        return [StoredChunk(cid, text, meta) for cid, text, meta in rows]

    def generation(self) -> str:
        """Changes whenever the stored chunks change; readers use it to refresh derived indexes."""
        fresh = self.client.get_collection(self.collection.name)  # another process may have written
        return str((fresh.metadata or {}).get("generation", "0"))

    # --- writes (hold the writer lock) -----------------------------------------------------------

    def upsert(self, chunks: list[Chunk], texts: list[str], vectors) -> None:
        step = self.client.get_max_batch_size()
        for i in range(0, len(chunks), step):
            batch = chunks[i : i + step]
            self.collection.upsert(
                ids=[c.id for c in batch],
                embeddings=vectors[i : i + step],
                documents=texts[i : i + step],
                metadatas=[chunk_metadata(c) for c in batch],
            )

    def delete_stale(self, article_id: str, content_hash: str) -> None:
        """Drop an article's chunks from older versions; called after the new ones are stored."""
        self.collection.delete(
            where={"$and": [{"article_id": article_id}, {"content_hash": {"$ne": content_hash}}]}
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
        raise IndexLocked(
            f"another newsqa process is writing to {data_dir} (lock {lock.lock_file}); "
            "wait for it to finish, or run a Chroma server (NEWSQA_CHROMA_HOST) for concurrent writers"
        ) from None
    try:
        yield
    finally:
        lock.release()
