"""Self-contained HTML leaderboard: one file, inline CSS/JS, plots embedded as data URIs, no network.

Laid out as people read it: each setting (dataset · protocol · regime · policy, and the ranking
metric) is a group header row, not four repeated columns, so the comparison -- mean ± std, CI, Δ vs
the baseline, its CI and p -- fits a 1400 px window without horizontal scrolling (checked in headless
Chromium by the tests). The rows sort within their setting (click a header) and the settings filter
by dataset, protocol and data regime. The state lives in the URL hash, so a link (or a headless browser) can open a given view:
``leaderboard.html#sort=mean&dir=desc&dataset=breastmnist%20(28px)&protocol=linear&regime=...``.
Every numeric cell carries its full-precision value in ``data-value`` (sorting uses it; the text is
rounded). After applying the state, the script sets ``data-sort``/``data-dir``/``data-visible`` on
``<body>`` so automated checks can confirm it ran.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from eval_suite.leaderboard.render_md import (
    ci_text,
    delta_ci_text,
    delta_text,
    fmt,
    fmt_p,
    mean_text,
    params_text,
)
from eval_suite.leaderboard.table import Leaderboard

# (key, header, numeric?): the columns of every setting's rows
COLUMNS: list[tuple[str, str, bool]] = [
    ("rank", "rank", True),
    ("checkpoint", "checkpoint", False),
    ("mean", "mean ± std", True),
    ("ci_low", "95% CI", True),
    ("n_seeds", "seeds", True),
    ("delta", "Δ vs baseline", True),
    ("delta_ci_low", "Δ 95% CI", True),
    ("p_value", "p", True),
    ("trainable_params", "trainable params", True),
]

_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; }
p.note { color: #555; font-size: .85rem; max-width: 70rem; }
.filters { margin: .8rem 0; display: flex; gap: 1rem; flex-wrap: wrap; font-size: .85rem; }
table { border-collapse: collapse; font-size: .82rem; max-width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: left; white-space: nowrap; }
td.checkpoint { white-space: normal; overflow-wrap: anywhere; min-width: 10rem; max-width: 24rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { cursor: pointer; background: #f3f3f3; position: sticky; top: 0; user-select: none; }
tr.setting th { background: #e8eef6; text-align: left; font-weight: 600; white-space: normal; cursor: default; }
tr.setting .meta { font-weight: 400; color: #444; }
th[aria-sort="ascending"]::after { content: " ▲"; }
th[aria-sort="descending"]::after { content: " ▼"; }
tr.baseline td { color: #666; font-style: italic; }
tr.tied td.rank { color: #a15c00; }
.sig { color: #0a7a28; font-weight: 600; }
.figs { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; border: 1px solid #e5e5e5; padding: .4rem; max-width: 40rem; }
figure img { max-width: 100%; }
figcaption { font-size: .75rem; color: #444; }
ul.problems { font-size: .8rem; color: #8a1c1c; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="note">{{ n_entries }} results in {{ n_groups }} settings, from {{ n_records }} result records and
{{ n_card_rows }} model-card results{% if problems %}; {{ problems|length }} inputs skipped (listed below){% endif %}.
Ranked by the mean over seeds; <b>=k</b> marks a tie (95 % CIs overlap). CI: t-interval over seeds when there
are ≥ 2 seeds, else bootstrap over test samples. Δ vs baseline: paired bootstrap against the same-seed scratch
baseline, with its 95 % CI; * p&lt;0.05, ** p&lt;0.01, *** p&lt;0.001. Click a column header to sort.</p>
<div class="filters">
{% for key, label, options in filters %}
<label>{{ label }} <select id="f-{{ key }}" data-filter="{{ key }}"><option value="">all</option>
{% for o in options %}<option value="{{ o }}">{{ o }}</option>{% endfor %}
</select></label>
{% endfor %}
<span id="count"></span>
</div>
<table id="leaderboard">
<thead><tr>{% for key, header, numeric in columns %}<th data-key="{{ key }}" data-numeric="{{ 1 if numeric else 0 }}">{{ header }}</th>{% endfor %}</tr></thead>
{% for g in groups %}<tbody class="group" data-dataset="{{ g.dataset }}" data-protocol="{{ g.protocol }}" data-regime="{{ g.regime }}">
<tr class="setting"><th colspan="{{ columns|length }}" scope="rowgroup">{{ g.dataset }} · {{ g.protocol }} · {{ g.regime }} · <span class="meta">policy {{ g.policy }} · ranked by <b>{{ g.metric }}</b> ({{ g.direction }} is better)</span></th></tr>
{% for r in g.rows %}<tr data-index="{{ r.index }}" data-dataset="{{ g.dataset }}" data-protocol="{{ g.protocol }}" data-regime="{{ g.regime }}" data-policy="{{ g.policy }}" data-metric="{{ g.metric }}" class="entry {{ r.classes }}">
<td data-key="rank" class="num rank" data-value="{{ r.rank }}">{{ r.rank_label }}</td>
<td data-key="checkpoint" class="checkpoint" data-value="{{ r.checkpoint }}">{{ r.checkpoint }}{% if r.is_baseline %} (baseline){% endif %}</td>
<td data-key="mean" class="num" data-value="{{ r.mean }}" data-std="{{ r.std }}">{{ r.mean_text }}</td>
<td data-key="ci_low" class="num" data-value="{{ r.ci_low }}" data-high="{{ r.ci_high }}">{{ r.ci_text }}</td>
<td data-key="n_seeds" class="num" data-value="{{ r.n_seeds }}">{{ r.n_seeds }}</td>
<td data-key="delta" class="num" data-value="{{ r.delta }}"><span>{{ r.delta_text }}</span></td>
<td data-key="delta_ci_low" class="num" data-value="{{ r.delta_ci_low }}" data-high="{{ r.delta_ci_high }}">{{ r.delta_ci_text }}</td>
<td data-key="p_value" class="num" data-value="{{ r.p_value }}">{{ r.p_text }}</td>
<td data-key="trainable_params" class="num" data-value="{{ r.trainable_params }}">{{ r.params_text }}</td>
</tr>
{% endfor %}</tbody>
{% endfor %}</table>
{% if figures %}
<h2>Plots</h2>
<div class="figs">
{% for f in figures %}<figure data-dataset="{{ f.dataset }}" data-protocol="{{ f.protocol }}" data-regime="{{ f.regime }}">
<img alt="{{ f.title }}" src="data:image/png;base64,{{ f.data }}"><figcaption>{{ f.title }}</figcaption></figure>
{% endfor %}</div>
{% endif %}
{% if problems %}
<h2>Skipped inputs ({{ problems|length }})</h2>
<ul class="problems">{% for p in problems %}<li>{{ p }}</li>{% endfor %}</ul>
{% endif %}
<script>
(function () {
  "use strict";
  var table = document.getElementById("leaderboard");
  var bodies = Array.prototype.slice.call(table.tBodies);
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var state = { sort: "", dir: "asc" };

  function cellValue(row, key, numeric) {
    var cell = row.querySelector('td[data-key="' + key + '"]');
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (!numeric) { return raw; }
    var v = parseFloat(raw);
    return isNaN(v) ? null : v;
  }

  function sortBy(key, dir) {
    var th = headers.filter(function (h) { return h.getAttribute("data-key") === key; })[0];
    if (!th) { return; }
    var numeric = th.getAttribute("data-numeric") === "1";
    var sign = dir === "desc" ? -1 : 1;
    bodies.forEach(function (tbody) {  // rows sort within their setting; the header row stays first
      var rows = entries(tbody);
      rows.sort(function (a, b) {
        var va = cellValue(a, key, numeric), vb = cellValue(b, key, numeric);
        if (va === null || va === "") { return (vb === null || vb === "") ? idx(a) - idx(b) : 1; }  // missing last
        if (vb === null || vb === "") { return -1; }
        var c = numeric ? va - vb : String(va).localeCompare(String(vb));
        return c !== 0 ? sign * c : idx(a) - idx(b);
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    });
    headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === "desc" ? "descending" : "ascending");
    state.sort = key; state.dir = dir;
  }
  function idx(row) { return parseInt(row.getAttribute("data-index"), 10); }
  function entries(tbody) {
    return Array.prototype.slice.call(tbody.rows).filter(function (r) { return r.hasAttribute("data-index"); });
  }

  function applyFilters() {
    var active = {};
    selects.forEach(function (s) { if (s.value) { active[s.getAttribute("data-filter")] = s.value; } });
    var visible = 0;
    function match(el) {
      return Object.keys(active).every(function (k) {
        var v = el.getAttribute("data-" + k);  // a plot spanning several regimes has none: always shown
        return v === null || v === "" || v === active[k];
      });
    }
    var total = 0;
    bodies.forEach(function (tbody) {
      var show = match(tbody), n = entries(tbody).length;
      tbody.style.display = show ? "" : "none"; total += n; if (show) { visible += n; }
    });
    Array.prototype.slice.call(document.querySelectorAll("figure[data-dataset]")).forEach(function (f) {
      f.style.display = match(f) ? "" : "none";
    });
    document.getElementById("count").textContent = visible + " of " + total + " rows";
    document.body.setAttribute("data-visible", String(visible));
  }

  function writeHash() {
    var parts = [];
    if (state.sort) { parts.push("sort=" + encodeURIComponent(state.sort), "dir=" + state.dir); }
    selects.forEach(function (s) {
      if (s.value) { parts.push(s.getAttribute("data-filter") + "=" + encodeURIComponent(s.value)); }
    });
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", parts.length ? "#" + parts.join("&") : window.location.pathname);
    }
    document.body.setAttribute("data-sort", state.sort);
    document.body.setAttribute("data-dir", state.dir);
  }

  function readHash() {
    var params = {};
    window.location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      if (!kv) { return; }
      var i = kv.indexOf("=");
      var k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      params[k] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
    });
    selects.forEach(function (s) {
      var k = s.getAttribute("data-filter");
      if (params[k] !== undefined) { s.value = params[k]; }
    });
    if (params.sort) { sortBy(params.sort, params.dir === "desc" ? "desc" : "asc"); }
  }

  headers.forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.getAttribute("data-key");
      var dir = state.sort === key && state.dir === "asc" ? "desc" : "asc";
      sortBy(key, dir); writeHash();
    });
  });
  selects.forEach(function (s) { s.addEventListener("change", function () { applyFilters(); writeHash(); }); });
  readHash();
  applyFilters();
  writeHash();
  document.body.setAttribute("data-ready", "1");
})();
</script>
</body>
</html>
"""


def render_html(lb: Leaderboard, *, plots: Sequence = (), title: str = "Leaderboard") -> str:
    """The leaderboard as one self-contained HTML page (see the module docstring)."""
    from jinja2 import Environment

    env = Environment(autoescape=True, keep_trailing_newline=True)
    template = env.from_string(_TEMPLATE)
    groups, index = [], 0
    for g in lb.groups:
        s = g.setting
        rows = []
        for e in g.entries:
            classes = " ".join(c for c, on in (("baseline", e.is_baseline), ("tied", e.tied)) if on)
            rows.append(
                {
                    "index": index,
                    "rank": e.rank,
                    "rank_label": e.rank_label,
                    "checkpoint": e.checkpoint,
                    "is_baseline": e.is_baseline,
                    "mean": _num(e.mean),
                    "std": _num(e.std),
                    "mean_text": mean_text(e),
                    "ci_low": _num(e.ci_low),
                    "ci_high": _num(e.ci_high),
                    "ci_text": ci_text(e),
                    "n_seeds": e.n_seeds,
                    "delta": _num(e.delta),
                    "delta_text": delta_text(e),
                    "delta_ci_low": _num(e.delta_ci_low),
                    "delta_ci_high": _num(e.delta_ci_high),
                    "delta_ci_text": delta_ci_text(e),
                    "p_value": _num(e.p_value),
                    "p_text": fmt_p(e.p_value),
                    "trainable_params": _num(e.trainable_params),
                    "params_text": params_text(e),
                    "classes": classes,
                }
            )
            index += 1
        groups.append(
            {
                "dataset": s.dataset_label,
                "protocol": s.protocol,
                "regime": s.regime_label,
                "policy": s.policy,
                "metric": g.metric,
                "direction": "higher" if g.higher_is_better else "lower",
                "rows": rows,
            }
        )
    filters = [
        ("dataset", "dataset", sorted({g["dataset"] for g in groups})),
        ("protocol", "protocol", sorted({g["protocol"] for g in groups})),
        ("regime", "regime", sorted({g["regime"] for g in groups})),
    ]
    figures = []
    for p in plots:
        data = base64.b64encode(Path(p.path).read_bytes()).decode("ascii")
        figures.append(
            {"title": p.title, "data": data, "dataset": p.dataset, "protocol": p.protocol, "regime": p.regime}
        )
    return template.render(
        title=title,
        columns=COLUMNS,
        groups=groups,
        filters=filters,
        figures=figures,
        problems=lb.problems,
        n_entries=index,
        n_groups=len(lb.groups),
        n_records=lb.n_records,
        n_card_rows=lb.n_card_rows,
    )


def _num(v: float | int | None) -> str:
    """Full-precision value for ``data-value`` (empty when missing)."""
    if v is None:
        return ""
    return repr(float(v)) if isinstance(v, float) else str(v)


__all__ = ["render_html", "COLUMNS", "fmt"]
