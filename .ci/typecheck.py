"""mypy over the package as it installs. pyproject's package-dir makes the top-level folders newsqa's
subpackages; mypy can't follow the editable install's import hook, so each file is given its module name here."""

import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def sources() -> Iterator[BuildSource]:
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for package, folder in package_dir.items():
        for path in sorted((ROOT / folder).glob("**/*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            yield BuildSource(str(path), ".".join((package, *parts)).removesuffix(".__init__"))


def main() -> int:
    _, options = process_options(["--config-file", str(ROOT / "pyproject.toml")], require_targets=False)
    found = list(sources())
    try:
        result = build.build(found, options)
    except CompileError as e:
        print("\n".join(e.messages), file=sys.stderr)
        return 2
    print("\n".join(result.errors))
    print(f"{len(result.errors)} problems in {len(found)} files" if result.errors else f"Success: {len(found)} files")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
