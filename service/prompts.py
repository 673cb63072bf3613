"""Prompt files in prompts/, loaded by name: `<name>.system.txt` + `<name>.user.txt`, or `<name>.txt`."""

from functools import lru_cache
from pathlib import Path

from langchain_core.prompts import ChatPromptTemplate


@lru_cache
def load_text(prompts_dir: Path, name: str) -> str:
    path = prompts_dir / f"{name}.txt"
    if not path.exists():
        raise FileNotFoundError(f"prompt {name!r} not found: expected {path}")
    return path.read_text(encoding="utf-8").strip()


def chat_prompt(prompts_dir: Path, name: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", load_text(prompts_dir, f"{name}.system")), ("human", load_text(prompts_dir, f"{name}.user"))]
    )
