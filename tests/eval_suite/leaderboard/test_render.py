"""Markdown, CSV and HTML outputs agree with the JSON records; the HTML sorts/filters in Chromium."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from eval_suite.leaderboard import make_leaderboard
from tests.eval_suite.leaderboard._factory import make_record, standard_records, write_results


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    records = standard_records(seeds=(0, 1)) + [
        make_record("ssl-strong", skill=2.5, protocol="linear"),
        make_record("ssl-weak", skill=0.6, protocol="linear"),
    ]
    folder = write_results(tmp / "results", records)
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    rep = make_leaderboard([folder], tmp / "out", n_resamples=100, plots=False)
    return rep, records


def _expected(records):
    """(protocol group, checkpoint) -> (mean, n) straight from the JSON records."""
    out: dict[tuple[str, str], list[float]] = {}
    for r in records:
        proto = "finetune" if r["protocol"]["name"] == "scratch" else r["protocol"]["name"]
        out.setdefault((proto, r["checkpoint"]["name"]), []).append(r["metrics"]["balanced_accuracy"])
    return {k: (float(np.mean(v)), len(v)) for k, v in out.items()}


def test_csv_numbers_equal_the_records(report):
    rep, records = report
    rows = list(csv.DictReader(io.StringIO(rep.csv.read_text(encoding="utf-8"))))
    expected = _expected(records)
    assert len(rows) == len(expected)
    for row in rows:
        mean, n = expected[(row["protocol"], row["checkpoint"])]
        assert float(row["mean"]) == pytest.approx(mean, abs=1e-12)
        assert int(row["n_seeds"]) == n
        assert row["metric"] == "balanced_accuracy"
    assert {r["is_baseline"] for r in rows if r["checkpoint"].startswith("scratch")} == {"True"}


def test_markdown_numbers_equal_the_records(report):
    rep, records = report
    text = rep.markdown.read_text(encoding="utf-8")
    expected = _expected(records)
    for (proto, name), (mean, n) in expected.items():
        section = text.split(f"· {proto} ·")[1].split("\n## ")[0]
        line = next(ln for ln in section.splitlines() if ln.startswith("|") and f" {name}" in ln)
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2].split(" ± ")[0] == f"{mean:.4f}", (line, mean)
        assert cells[4] == str(n)
    # the malformed record is reported, with a count, not silently dropped
    assert "Skipped inputs (1)" in text and "broken.json" in text


class _Cells(HTMLParser):
    """Collect <tr> rows of the leaderboard table as {data-key: data-value}."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-index" in a:
            self.rows.append({"_index": a["data-index"], "protocol": a.get("data-protocol", "")})
        if tag == "td" and self.rows and "data-key" in a:
            self.rows[-1][a["data-key"]] = a.get("data-value", "")
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])


def test_html_numbers_equal_the_records_and_need_no_network(report):
    rep, records = report
    html = rep.html.read_text(encoding="utf-8")
    parser = _Cells()
    parser.feed(html)
    assert parser.external == []  # self-contained: no external scripts, styles or images
    assert not re.search(r"https?://", html)
    expected = _expected(records)
    assert len(parser.rows) == len(expected)
    for row in parser.rows:
        mean, n = expected[(row["protocol"], row["checkpoint"])]
        assert float(row["mean"]) == pytest.approx(mean, abs=1e-12)
        assert int(row["n_seeds"]) == n


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _dump_dom(browser: str, page: Path, fragment: str, profile: Path, width: int | None = None) -> str:
    cmd = [
        browser,
        "--headless",
        *([f"--window-size={width},900"] if width else []),
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri() + fragment,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_sorts_and_filters_in_headless_chromium(report, tmp_path):
    rep, records = report
    browser = _chromium()
    assert browser is not None
    dom = _dump_dom(browser, rep.html, "#sort=mean&dir=asc", tmp_path / "profile1")
    assert 'data-ready="1"' in dom and 'data-sort="mean"' in dom and 'data-dir="asc"' in dom
    parser = _Cells()
    parser.feed(dom)
    assert len(parser.rows) == len(_expected(records))
    by_group: dict[str, list[dict[str, str]]] = {}
    for r in parser.rows:
        by_group.setdefault(r["protocol"], []).append(r)
    reordered = False
    for rows in by_group.values():  # rows sort within their setting (group header rows)
        means = [float(r["mean"]) for r in rows]
        assert means == sorted(means)
        reordered |= [int(r["_index"]) for r in rows] != sorted(int(r["_index"]) for r in rows)
    assert reordered  # the script reordered rows away from the default (ranked) order

    dom = _dump_dom(browser, rep.html, "#sort=mean&dir=desc&protocol=linear", tmp_path / "profile2")
    parser = _Cells()
    parser.feed(dom)
    means = [float(r["mean"]) for r in parser.rows if r["protocol"] == "linear"]
    assert len(means) == 2 and means == sorted(means, reverse=True)
    assert 'data-visible="2"' in dom  # two linear-probe rows pass the filter


_MEASURE = """<script>
(function () {
  var delta = document.querySelector('thead th[data-key="delta"]');
  var dci = document.querySelector('thead th[data-key="delta_ci_low"]');
  var p = document.querySelector('thead th[data-key="p_value"]');
  var b = document.body;
  b.setAttribute("data-inner-width", String(window.innerWidth));
  b.setAttribute("data-delta-right", String(delta.getBoundingClientRect().right));
  b.setAttribute("data-dci-right", String(dci.getBoundingClientRect().right));
  b.setAttribute("data-p-right", String(p.getBoundingClientRect().right));
  b.setAttribute("data-scroll-width", String(document.documentElement.scrollWidth));
  b.setAttribute("data-settings", String(document.querySelectorAll("tr.setting").length));
})();
</script>
</body>"""


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_html_comparison_fits_a_1400px_window_in_headless_chromium(tmp_path):
    """The Δ column, its CI and p lie inside a 1400 px viewport (no horizontal scrolling), with
    long checkpoint names and the setting as a group header instead of repeated columns."""
    records = standard_records(seeds=(0, 1)) + [
        make_record(
            "a-rather-long-checkpoint-name-simclr-resnet50-breastmnist-224px-800ep",
            skill=2.0,
            protocol="linear",
        ),
        make_record("ssl-weak", skill=0.6, protocol="linear"),
    ]
    rep = make_leaderboard(
        [write_results(tmp_path / "results", records)], tmp_path / "out", n_resamples=50, plots=False
    )
    html = rep.html.read_text(encoding="utf-8")
    assert '<th data-key="dataset"' not in html and 'class="setting"' in html  # a header, not a column
    page = tmp_path / "measure.html"
    page.write_text(html.replace("</body>", _MEASURE), encoding="utf-8")
    dom = _dump_dom(_chromium(), page, "", tmp_path / "profile", width=1400)
    attrs = dict(re.findall(r'data-([a-z-]+)="([0-9.]+)"', dom.split("<body", 1)[1].split(">", 1)[0]))
    inner = float(attrs["inner-width"])
    assert 1300 <= inner <= 1400, attrs
    for key in ("delta-right", "dci-right", "p-right"):
        assert 0 < float(attrs[key]) <= inner, (key, attrs)
    assert float(attrs["scroll-width"]) <= inner, attrs
    assert int(attrs["settings"]) >= 2
