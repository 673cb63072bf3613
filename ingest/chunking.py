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
            keep_separator=False,
            add_start_index=True,
        )

    def chunks(self, article: Article) -> list[Chunk]:
        docs = self.splitter.create_documents([article.body])
        chunks = []
        for index, doc in enumerate(docs):
            start = doc.metadata["start_index"]
            chunks.append(Chunk(article, index, doc.page_content, start, start + len(doc.page_content)))
        return chunks


def embedding_text(chunk: Chunk) -> str:
    """The headline rides along, so a passage is found by the story's subject, not only its words."""
    return f"{chunk.article.title}\n{chunk.text}"
