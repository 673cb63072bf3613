"""Loading articles from files: every supported format, the shared data as-is, and clear errors for bad input."""

import json
from pathlib import Path

import pytest
from conftest import DEMO_DIR, DEV_SET, SEED_FILE, SEED_SOURCE, SEED_TITLE

from newsqa.ingest.loaders import LoadError, load_path, load_paths
from newsqa.store.models import Article

DEV_ARTICLES = DEV_SET / "articles.jsonl"


def load(path: Path) -> tuple[list[Article], list[LoadError]]:
    items = list(load_path(path) if path.is_file() or not path.exists() else load_paths([path]))
    return [i for i in items if isinstance(i, Article)], [i for i in items if isinstance(i, LoadError)]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- each format ---------------------------------------------------------------------------------


def test_seed_article_loads_with_headline_source_and_no_page_furniture():
    [article], errors = load(SEED_FILE)
    assert errors == []
    assert article.title == SEED_TITLE
    assert article.source == SEED_SOURCE
    assert article.body.startswith("Asaad al-Shaibani, the interim foreign minister of Syria's new government")
    assert article.body.endswith("accused of supporting terrorist groups and violence in Syria.")
    assert "Post Comment" not in article.body
    assert "Original Source" not in article.body
    assert article.title not in article.body


def test_txt_in_seed_shape_takes_source_from_its_line_and_drops_what_follows(tmp_path):
    path = write(tmp_path / "story.txt", "Harbour Reopens After Storm\n\nThe harbour reopened on Monday.\n\n"
                 "Ferries resume on Tuesday.\nOriginal Source: https://www.Example-News.com/harbour\n"
                 "Share this article\nPost Comment")
    [article], errors = load(path)
    assert errors == []
    assert article.title == "Harbour Reopens After Storm"
    assert article.source == "example-news.com"
    assert article.body == "The harbour reopened on Monday.\n\nFerries resume on Tuesday."
    assert article.origin == str(path)


def test_txt_without_source_line_still_drops_trailing_comment_prompt(tmp_path):
    [article], _ = load(write(tmp_path / "a.txt", "Headline\nBody sentence one.\n\nPost Comment\n"))
    assert article.source is None
    assert article.body == "Body sentence one."


def test_markdown_heading_becomes_the_title(tmp_path):
    [article], errors = load(write(tmp_path / "a.md", "# Council Votes On Parks\n\nThe council voted 5-4.\n"))
    assert errors == []
    assert article.title == "Council Votes On Parks"
    assert article.body == "The council voted 5-4."


def test_json_object_file_gives_one_article_with_all_fields(tmp_path):
    record = {"id": "x1", "title": "Bridge Opens", "body": "The bridge opened.", "source": "https://www.Gazette.example/b",
              "url": "https://www.gazette.example/b", "published_at": "2025-03-01T08:00:00"}
    [article], errors = load(write(tmp_path / "one.json", json.dumps(record)))
    assert errors == []
    assert (article.id, article.key, article.title, article.body) == ("x1", "x1", "Bridge Opens", "The bridge opened.")
    assert article.source == "gazette.example"
    assert article.url == "https://www.gazette.example/b"
    assert article.published_iso == "2025-03-01"


def test_json_list_loads_every_record_and_names_the_bad_one_by_position(tmp_path):
    records = [{"title": "First", "body": "One."}, {"title": "Second"}, {"title": "Third", "body": "Three."}]
    path = write(tmp_path / "many.json", json.dumps(records))
    articles, errors = load(path)
    assert [a.title for a in articles] == ["First", "Third"]
    assert [a.origin for a in articles] == [f"{path}[0]", f"{path}[2]"]
    assert [str(e) for e in errors] == [f"{path}[1]: article 'Second' has no body text"]


def test_json_without_source_takes_it_from_the_url(tmp_path):
    [article], _ = load(write(tmp_path / "a.jsonl", json.dumps(
        {"title": "T", "body": "B.", "url": "https://www.wire.example/t"})))
    assert article.source == "wire.example"


def test_non_string_fields_in_json_do_not_crash_the_loader(tmp_path):
    path = write(tmp_path / "odd.jsonl", json.dumps({"title": 2025, "body": "Body.", "source": 7, "id": 42}))
    [article], errors = load(path)
    assert errors == []
    assert (article.title, article.id, article.source) == ("2025", "42", "7")


def test_html_page_yields_the_article_text_without_navigation_or_footer():
    [article], errors = load(DEMO_DIR / "storm-valewick-flooding.html")
    assert errors == []
    assert article.title == "Storm Edda Floods Valewick as River Tam Reaches Record Level"
    assert "112 millimetres of rain" in article.body
    assert "damaged embankment" in article.body
    for furniture in ("Subscribe to the Courier", "All rights reserved", "Privacy policy",
                      "Ten best beach walks", "independent voice on the coast"):
        assert furniture not in article.body
    assert article.url == "https://coastlinecourier.example/weather/storm-edda-valewick-floods"
    assert article.published_iso == "2025-02-09"


def test_html_without_article_text_is_an_error(tmp_path):
    path = write(tmp_path / "empty.html", "<html><body><nav><a href='/'>Home</a></nav></body></html>")
    articles, [error] = load(path)
    assert articles == []
    assert str(error) == f"{path}: no article text found in the HTML"


def test_demo_corpus_loads_cleanly_in_every_format():
    articles, errors = load(DEMO_DIR)
    assert errors == []
    assert {Path(a.origin.split(":")[0]).suffix for a in articles} == {".txt", ".md", ".jsonl", ".html"}
    assert len(articles) == 8  # the README beside them is not an article
    assert len({a.key for a in articles}) == 8
    assert len({a.source for a in articles}) == 8
    [syria] = [a for a in articles if "Baghdad" in a.title]
    for fact in ("Asaad al-Shaibani", "Mohammed Shia al-Sudani", "Abdullah Makki Muslih al-Rufayi",
                 "1,383 civilians", "Alawites", "at least 13 Syrians", "U.S.-led coalition"):
        assert fact in syria.body


@pytest.mark.skipif(not DEV_ARTICLES.is_file(), reason=f"dev set not found at {DEV_ARTICLES}")
def test_shared_dev_set_loads_as_is():
    articles, errors = load(DEV_ARTICLES)
    assert [str(e) for e in errors] == []
    assert len(articles) == 322
    assert len({a.key for a in articles}) == 322
    assert all(a.title and a.body and a.source for a in articles)
    assert not any("%27" in a.body for a in articles)  # URL-escaped bodies are unescaped


# --- bad input: a LoadError naming the file (and line) and the reason --------------------------------


def test_invalid_json_line_names_the_line_and_the_other_lines_still_load(tmp_path):
    good = json.dumps({"title": "Good", "body": "Fine."})
    broken = '{"title": "Broken", "body": '
    path = write(tmp_path / "feed.jsonl", f"{good}\n{broken}\n\n{good.replace('Good', 'Also')}\n")
    articles, [error] = load(path)
    assert [a.title for a in articles] == ["Good", "Also"]
    assert [a.origin for a in articles] == [f"{path}:1", f"{path}:4"]
    assert error.origin == f"{path}:2"
    assert str(error).startswith(f"{path}:2: invalid JSON")


def test_invalid_json_file_names_the_line_of_the_fault(tmp_path):
    path = write(tmp_path / "bad.json", '[\n  {"title": "A", "body": "B"},\n  {"title": oops}\n]')
    articles, [error] = load(path)
    assert articles == []
    assert str(error).startswith(f"{path}:3: invalid JSON")


@pytest.mark.parametrize(
    ("name", "content", "origin_suffix", "reason"),
    [
        ("empty.txt", b"", "", "empty file"),
        ("blank.md", b"  \n\n\t\n", "", "empty file"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "", "binary file, not text"),
        ("notes.pdf", b"%PDF-1.7", "", "unsupported file type '.pdf'"),
        ("README", b"text", "", "unsupported file type '(none)'"),
        ("cafe.txt", "Caf\u00e9 Opens\nThe caf\u00e9 opened.".encode("latin-1"), "", "not valid UTF-8 (byte 3)"),
        ("headline-only.txt", b"Just A Headline\n\n", "", "article 'Just A Headline' has no body text"),
        ("no-body.jsonl", b'{"title": "Lonely Title", "body": ""}', ":1", "article 'Lonely Title' has no body text"),
        ("no-title.jsonl", b'{"body": "A body without a headline."}', ":1", "article has no title"),
        ("list-line.jsonl", b'["title", "body"]', ":1", "expected an object with title and body, got list"),
        ("bad-date.json", b'{"title": "T", "body": "B", "published_at": "next Tuesday-ish"}', "",
         "unreadable published_at 'next Tuesday-ish'"),
    ],
)
def test_bad_input_is_a_load_error_naming_file_and_reason(tmp_path, name, content, origin_suffix, reason):
    path = tmp_path / name
    path.write_bytes(content)
    articles, [error] = load(path)
    assert articles == []
    assert error.origin == f"{path}{origin_suffix}"
    assert str(error).startswith(f"{path}{origin_suffix}: {reason}")


def test_missing_path_is_a_load_error(tmp_path):
    [error] = list(load_paths([tmp_path / "nowhere.txt"]))
    assert str(error) == f"{tmp_path / 'nowhere.txt'}: no such file or folder"


def test_folder_loading_skips_hidden_files_and_readmes_in_a_stable_order(tmp_path):
    write(tmp_path / "b.txt", "Second Story\nBody b.")
    write(tmp_path / "a.md", "# First Story\nBody a.")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.txt", "Third Story\nBody c.")
    write(tmp_path / ".draft.txt", "Hidden Draft\nNot ready.")
    (tmp_path / ".cache").mkdir()
    write(tmp_path / ".cache" / "d.txt", "Cached Copy\nStale.")
    write(tmp_path / "README.md", "# About this folder\nNotes, not news.")
    articles, errors = load(tmp_path)
    assert errors == []
    assert [a.title for a in articles] == ["First Story", "Second Story", "Third Story"]


def test_folder_with_one_bad_file_still_loads_the_rest(tmp_path):
    write(tmp_path / "good.txt", "Good Story\nBody.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa broken")
    articles, [error] = load(tmp_path)
    assert [a.title for a in articles] == ["Good Story"]
    assert error.origin == str(tmp_path / "bad.txt")
