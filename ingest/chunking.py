"""Articles → sentence-aware, token-bounded, overlapping Chunks that know where they came from."""

from langchain_text_splitters import RecursiveCharacterTextSplitter

from newsqa.settings import Settings
from newsqa.store.embedding import get_embedder
from newsqa.store.models import Article, Chunk

# Paragraphs first, then sentences, then clauses: a chunk ends at the largest boundary that fits.
SEPARATORS = ["\n\n", "\n", r"(?<=[.!?])\s+", r"(?<=[;:])\s+", r"(?<=,)\s+", r"\s+", ""]


class Chunker:
    """Counts in the embedder's own word pieces, so no chunk is cut short when it is embedded."""

    def __init__(self, settings: Settings):
        self.splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            get_embedder(settings).tokenizer,
            chunk_size=settings.chunk_tokens,
            chunk_overlap=min(settings.chunk_overlap_tokens, settings.chunk_tokens // 2),
            separators=SEPARATORS,
            is_separator_regex=True,
            keep_separator="end",  # without it, regex separators are joined back in as their pattern text
        )

    def chunks(self, article: Article) -> list[Chunk]:
        chunks, cursor = [], 0
        for index, text in enumerate(self.splitter.split_text(article.body)):
            # Each chunk starts after the previous one's start (overlap may go back, never before it).
            start = article.body.index(text, cursor)
            chunks.append(Chunk(article, index, text, start, start + len(text)))
            cursor = start + 1
        return chunks

