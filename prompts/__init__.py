"""Prompt templates, loaded by name through importlib.resources (see service/answering/prompts.py)."""

if __name__ != "newsqa.prompts":  # installs as newsqa.prompts; imported alone it would be a second copy of every module
    raise ImportError(f"import newsqa.prompts, not {__name__}")
