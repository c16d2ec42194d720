"""Names from records (checkpoint and dataset names) holding markup, quotes, newlines or ``---``
render as text in leaderboard.html (nothing runs in headless Chromium) and in the Markdown/CSV."""

from __future__ import annotations

import csv
import io

import pytest

from eval_suite.leaderboard import make_leaderboard
from tests.eval_suite.leaderboard._factory import make_record, write_results
from tests.eval_suite.leaderboard.test_render import _chromium, _dump_dom

PAYLOAD = (
    "<script>document.title='pwned';document.body.setAttribute('data-pwned','1')</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\">\"'\n---\n"
)


@pytest.fixture
def hostile(tmp_path):
    records = [
        make_record("scratch-base", skill=1.0, random_init=True, protocol="linear", seed=s) for s in (0, 1)
    ] + [make_record(f"ssl{PAYLOAD}", skill=2.0, protocol="linear", seed=s) for s in (0, 1)]
    rep = make_leaderboard([write_results(tmp_path / "results", records)], tmp_path / "out", plots=False)
    return rep


def test_hostile_names_are_escaped_in_the_html_source(hostile):
    html = hostile.html.read_text(encoding="utf-8")
    assert "<script>document.title" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.title=" in html


def test_hostile_names_stay_text_in_markdown_and_csv(hostile):
    rows = list(csv.DictReader(io.StringIO(hostile.csv.read_text(encoding="utf-8"))))
    assert any(r["checkpoint"] == f"ssl{PAYLOAD}" for r in rows)  # CSV quotes, round-trips exactly
    md = hostile.markdown.read_text(encoding="utf-8")
    assert "<script>" not in md and "<img" not in md and "\n---\n" not in md
    row = next(line for line in md.splitlines() if "&lt;script&gt;" in line)
    assert row.count(" | ") == 8  # the name stays inside its cell: one table row of 9 cells


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_hostile_names_do_not_run_in_headless_chromium(hostile, tmp_path):
    dom = _dump_dom(_chromium(), hostile.html, "", tmp_path / "profile")
    assert 'data-ready="1"' in dom  # the page's own script ran to the end
    assert "data-pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]
    assert "<title>pwned</title>" not in dom
    assert "&lt;script&gt;document.title='pwned'" in dom  # shown literally, as text
