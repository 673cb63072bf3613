"""Articles → sentence-aware, token-bounded, overlapping Chunks that know where they came from."""

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.models import Article, Chunk

# Paragraphs first, then sentences, then clauses: a chunk ends at the largest boundary that fits.
SEPARATORS = ["\n\n", "\n", r"(?<=[.!?])\s+", r"(?<=[;:])\s+", r"(?<=,)\s+", r"\s+", ""]


class Chunker:
    def __init__(self, tokenizer, chunk_tokens: int, overlap_tokens: int):
        self.splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_tokens,
            chunk_overlap=min(overlap_tokens, chunk_tokens // 2),
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


def embedding_text(chunk: Chunk) -> str:
    """The headline rides along, so a passage is found by the story's subject, not only its words."""
    return f"{chunk.article.title}\n{chunk.text}"
