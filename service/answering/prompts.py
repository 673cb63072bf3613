"""Prompt files, loaded by name: `<name>.system.txt` + `<name>.user.txt`, or `<name>.txt`.

They ship inside the package (newsqa/prompts) and are read through importlib.resources, so an installed
wheel has them; NEWSQA_PROMPTS_DIR points at another folder to try new wording without a release.
"""

from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from langchain_core.prompts import ChatPromptTemplate


def prompts_root(prompts_dir: Path | None) -> Traversable:
    return prompts_dir or files("newsqa.prompts")


@lru_cache
def load_text(prompts_dir: Path | None, name: str) -> str:
    path = prompts_root(prompts_dir) / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"prompt {name!r} not found: expected {path}")
    return path.read_text(encoding="utf-8").strip()


def chat_prompt(prompts_dir: Path | None, name: str) -> ChatPromptTemplate:
    return ChatPromptTemplate.from_messages(
        [("system", load_text(prompts_dir, f"{name}.system")), ("human", load_text(prompts_dir, f"{name}.user"))]
    )


def fenced(text: str) -> str:
    """Article text for a prompt's ``` fence: its own backticks become ' so it can't close the fence and write
    lines of the prompt (the fence is in the prompt files: answer.user, verify.user)."""
    return text.replace("`", "'")
