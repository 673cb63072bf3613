"""A plain (not editable) install of the wheel works from any folder: one `newsqa` package, prompts inside."""

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

from helpers import REPO, SEED_FILE, SEED_TITLE

from newsqa.service.answering.schemas import ChatResponse


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_wheel_installs_into_a_fresh_venv_and_answers_from_there(tmp_path, openai_stub):
    run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path)
    [wheel] = tmp_path.glob("newsqa-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"newsqa", "newsqa-0.1.0.dist-info"}  # nothing else top-level
    assert "newsqa/prompts/answer.system.txt" in names
    assert {"newsqa/service/api/web/index.html", "newsqa/service/api/web/app.js",
            "newsqa/service/api/web/style.css"} <= set(names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python, newsqa = venv / "bin" / "python", venv / "bin" / "newsqa"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel)
    # The dependencies (torch & co., gigabytes) come from this environment's site-packages as a plain path:
    # its editable newsqa is not on it, so only the wheel's newsqa can be imported.
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSQA_", "SLACK_", "PYTHON"))}
    env.update(NEWSQA_DATA_DIR=str(tmp_path / "data"), NEWSQA_LLM_PROVIDER="openai",
               NEWSQA_LLM_BASE_URL=openai_stub.url + "/v1", NEWSQA_LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")
    where = run(python, "-c", "import newsqa.service.answering.prompts as p; print(p.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(site))

    ingested = run(newsqa, "ingest", SEED_FILE, cwd=tmp_path, env=env)
    assert ingested.stdout.startswith("articles: 1 added")
    openai_stub.replies.append("1,383")
    asked = run(newsqa, "ask", "--json", "How many civilians were killed in coastal Syria?", cwd=tmp_path, env=env)
    response = ChatResponse.model_validate_json(asked.stdout)
    assert not response.refused and "1,383" in response.answer
    assert response.citations[0].title == SEED_TITLE and "1,383 civilians" in response.citations[0].quote
    # the packaged prompt reached the model
    assert "using only the numbered passages" in openai_stub.requests[0]["messages"][0]["content"]


def test_every_code_folder_installs_under_newsqa_without_links():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join((package, *init.parent.relative_to(REPO / folder).parts))
             for package, folder in setuptools["package-dir"].items()
             for init in (REPO / folder).glob("**/__init__.py")}
    assert found == set(setuptools["packages"])
    tracked = run("git", "ls-files", "--stage", cwd=REPO).stdout.splitlines()
    assert [line for line in tracked if line.startswith("120000")] == []  # no symlinks: Windows clones work


def test_a_top_level_folder_is_not_a_second_copy_of_the_package():
    done = subprocess.run([sys.executable, "-c", "import service"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 1 and "import newsqa.service, not service" in done.stderr


def test_the_readme_tree_names_every_module_and_folder_there_is():
    tree = (REPO / "README.md").read_text().split("## How it works")[1].split("Processes of a deployment")[0]
    folders = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()
    tracked = [Path(f) for f in run("git", "ls-files", "*.py", cwd=REPO).stdout.split()]
    modules = {f.stem for f in tracked if f.parts[0] in folders and not f.stem.startswith("__")}
    assert {m for m in modules if not re.search(rf"\b{m}\b", tree)} == set()
    named = re.findall(r"^(?:  )?([a-z_]+)/ ", tree, re.MULTILINE)  # a folder at the top, or one in service/
    assert [f for f in named if not (REPO / f).is_dir() and not (REPO / "service" / f).is_dir()] == []
