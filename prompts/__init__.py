"""Prompt templates, loaded by name through importlib.resources (see service/prompts.py)."""
