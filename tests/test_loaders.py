"""Loading articles from files: every supported format, the shared data as-is, and clear errors for bad input."""

import json
from pathlib import Path

import pytest
from helpers import DEMO_DIR, DEV_SET, SEED_FILE, SEED_SOURCE, SEED_TITLE, make_settings

from newsqa.ingest.loaders import LoadError, load_path, load_paths
from newsqa.settings import Settings
from newsqa.store.models import Article

DEV_ARTICLES = DEV_SET / "articles.jsonl"
SETTINGS = make_settings(Path("data"))  # the loaders read only the size limits; nothing is written


def load(path: Path, settings: Settings = SETTINGS) -> tuple[list[Article], list[LoadError]]:
    items = list(load_path(path, settings) if path.is_file() or not path.exists() else load_paths([path], settings))
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
    assert (article.id, article.title, article.body) == ("x1", "Bridge Opens", "The bridge opened.")
    assert article.key == "gazette.example:x1"  # scoped by source, see the id-collision test
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
    assert (article.source, article.site_name) == (None, "Coastline Courier")  # what the page says of itself


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
    # one scraped page holds nothing but a video ad's feedback form: furniture, so no body is left
    [error] = errors
    assert str(error).startswith(f"{DEV_ARTICLES}:") and str(error).endswith("has no body text")
    assert len(articles) == 321
    assert len({a.key for a in articles}) == 321
    assert all(a.title and a.body and a.source for a in articles)
    assert not any("%27" in a.body for a in articles)  # URL-escaped bodies are unescaped
    assert not any("How relevant is this ad to you" in a.body for a in articles)


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
    [error] = list(load_paths([tmp_path / "nowhere.txt"], SETTINGS))
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


# --- one bad record fails alone, with its line and the reason -------------------------------------


def feed_with_bad_second_line(path: Path, bad_line: bytes) -> Path:
    good = [json.dumps({"title": title, "body": f"{title} happened."}).encode() for title in ("Before", "After")]
    path.write_bytes(b"\n".join([good[0], bad_line, good[1]]) + b"\n")
    return path


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b'{"title": "Huge", "body": "B.", "views": ' + b"9" * 5000 + b"}",
         "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion"),
        (b'{"title": "Deep", "body": "B.", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
         "invalid JSON: nested too deeply"),
        ('{"title": "Caf\u00e9", "body": "Opened."}'.encode("latin-1"),
         "not valid UTF-8 (byte 14 of the line); re-save the file as UTF-8"),
    ],
    ids=["number-with-5000-digits", "nested-100000-deep", "latin-1-byte"],
)
def test_a_malformed_jsonl_line_fails_alone_naming_its_line(tmp_path, bad_line, reason):
    path = feed_with_bad_second_line(tmp_path / "feed.jsonl", bad_line)
    articles, [error] = load(path)
    assert [a.title for a in articles] == ["Before", "After"]
    assert str(error) == f"{path}:2: {reason}"


def test_a_deeply_nested_json_file_is_one_error_not_an_aborted_batch(tmp_path):
    write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    write(tmp_path / "good.txt", "Good Story\nBody.")
    articles, [error] = load(tmp_path)
    assert [a.title for a in articles] == ["Good Story"]
    assert str(error) == f"{tmp_path / 'deep.json'}: invalid JSON: nested too deeply"


def test_an_article_over_the_size_limit_is_rejected_naming_the_limit_and_the_setting(tmp_path):
    settings = make_settings(tmp_path / "data", max_record_chars=1_000)
    # a body with no space to split at: chunking it would go letter by letter
    wall = json.dumps({"title": "Wall", "body": "x" * 5_000}).encode()
    path = feed_with_bad_second_line(tmp_path / "feed.jsonl", wall)
    long_txt = write(tmp_path / "long.txt", "Long Story\n" + "A sentence of news. " * 60)
    articles, [error] = load(path, settings)
    assert [a.title for a in articles] == ["Before", "After"]
    assert str(error) == (f"{path}:2: article is 5,004 characters, over the 1,000-character limit "
                          "(NEWSQA_MAX_RECORD_CHARS)")
    assert [e.origin for e in load(long_txt, settings)[1]] == [str(long_txt)]


def test_a_file_over_the_size_limit_is_rejected_unread_and_the_folder_still_loads(tmp_path):
    settings = make_settings(tmp_path / "data", max_file_mb=0.1)
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"title": "Big", "body": "word " * 40_000}) + "\n", encoding="utf-8")
    write(tmp_path / "small.txt", "Small Story\nBody.")
    articles, [error] = load(tmp_path, settings)
    assert [a.title for a in articles] == ["Small Story"]
    assert str(error) == f"{big}: file is 0.2 MB, over the 0.1 MB limit (NEWSQA_MAX_FILE_MB)"


def test_symlinks_leading_out_of_the_folder_are_reported_not_followed(tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "news"
    (outside / "private").mkdir(parents=True)
    write(outside / "secret.txt", "Secret Notes\nNot for the index.")
    write(outside / "private" / "diary.txt", "Dear Diary\nAlso not for the index.")
    (folder / "real").mkdir(parents=True)
    write(folder / "real" / "story.txt", "Inside Story\nBody.")
    (folder / "secret.txt").symlink_to(outside / "secret.txt")
    (folder / "private").symlink_to(outside / "private")
    (folder / "alias").symlink_to(folder / "real")  # inside the folder: its files are read once, where they are
    articles, errors = load(folder)
    assert [a.title for a in articles] == ["Inside Story"]
    assert sorted(str(e) for e in errors) == [
        f"{folder / 'private'}: symlink to {outside / 'private'}, outside {folder}: not followed",
        f"{folder / 'secret.txt'}: symlink to {outside / 'secret.txt'}, outside {folder}: not followed",
    ]


# --- identity: ids are scoped by source; a page cannot name its own source ------------------------


def test_two_sources_numbering_items_alike_keep_apart(tmp_path):
    path = write(tmp_path / "feeds.jsonl", "\n".join(json.dumps(r) for r in [
        {"id": "123", "source": "www.north-gazette.example", "title": "Dam Opens", "body": "The dam opened."},
        {"id": 123, "source": "south-herald.example", "title": "Mayor Resigns", "body": "The mayor resigned."},
        {"id": "feed item 9", "source": "south-herald.example", "title": "Odd Id", "body": "An id with spaces."},
    ]))
    articles, errors = load(path)
    assert errors == []
    assert [a.key for a in articles[:2]] == ["north-gazette.example:123", "south-herald.example:123"]
    odd = articles[2].key
    assert odd.startswith("i_") and len(odd) == 18 and load(path)[0][2].key == odd  # short, safe and stable


def html_page(site_name: str, url: str) -> str:
    paragraphs = "".join(
        f"<p>{text}</p>" for text in (
            "The harbour authority in Kelmarsh said on Friday that the new ferry terminal would open in June.",
            "Officials said the terminal cost 40 million pounds and would handle two million passengers a year.",
            "Local traders welcomed the news, saying the old terminal had been too small for summer crowds.",
        ))
    return (f'<html><head><title>Ferry Terminal To Open In June</title>'
            f'<meta property="og:site_name" content="{site_name}"><meta property="og:url" content="{url}">'
            f"</head><body><article><h1>Ferry Terminal To Open In June</h1>{paragraphs}</article></body></html>")


def test_an_html_page_claiming_another_outlet_neither_becomes_it_nor_replaces_its_article(tmp_path):
    url = "https://www.reuters.example/world/ferry-terminal"
    write(tmp_path / "page.html", html_page("Reuters", url))
    write(tmp_path / "feed.jsonl", json.dumps({"title": "Ferry Terminal To Open In June", "body": "The real story.",
                                               "url": url}))
    articles, errors = load(tmp_path)
    assert errors == []
    feed, page = sorted(articles, key=lambda a: a.origin)
    assert (feed.source, feed.site_name) == ("reuters.example", None)
    assert (page.source, page.site_name, page.url) == (None, "Reuters", url)  # no source filter lets it pass
    assert page.key != feed.key  # the same url from a page file does not overwrite the outlet's own article


# --- scraped furniture ----------------------------------------------------------------------------


def test_furniture_lines_anywhere_in_a_body_are_removed_and_news_lines_kept(tmp_path):
    news = [
        "The council voted on Tuesday to ban advertisement hoardings within 200 metres of schools.",
        "Readers who subscribe to the newsletter pay 5 pounds a month, the publisher said.",
        "Comments from residents at the meeting were mixed.",
        "Share prices of the billboard firm fell 3% after the vote.",
        "More: the ban takes effect in January, officials added, and covers 14 sites.",
    ]
    furniture = [
        "Advertisement",
        "1. How relevant is this ad to you?",
        "Video player was slow to load content Video content never loaded Ad froze or did not finish loading "
        "Other issues",
        "Get our weekly newsletter Sign up for the Gazette's politics newsletter. Join us on social media",
        "(You can get the morning briefing delivered to your inbox daily. Sign up here.)",
        "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
        "Share on Facebook",
        "Leave a comment",
        "Read more",
        "MORE:Council delays vote on parking charges",
        "Related: Council delays vote on parking charges",
    ]
    body = "\n\n".join(line for i, item in enumerate(news) for line in (item, *furniture[i::len(news)]))
    path = write(tmp_path / "story.jsonl", json.dumps({"title": "Council Bans School Billboards", "body": body}))
    [article], _ = load(path)
    assert article.body == "\n\n".join(news)
