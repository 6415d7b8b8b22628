"""`sqlsynth report`: the HTML shows the metrics table's numbers, charts and the loss curve."""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from browser_support import browser_driver  # noqa: F401  (the `driver` fixture: headless chromium)
from conftest import run_cli
from helpers import query


def _build_report(root):
    assert run_cli("seed", cwd=root).returncode == 0
    result = run_cli("report", "--training-summary", "student/training_summary.json", cwd=root)
    assert result.returncode == 0, result.stderr
    return (root / "target/report/index.html").read_text()


def test_report_numbers_equal_metrics_table(fixture_project):
    root = fixture_project("report")
    page = _build_report(root)
    rows = query(root, "select * from eval_metrics order by contestant", "target/report_fixture.duckdb")
    embedded = json.loads(html.unescape(re.search(r'id="metrics-data">(.*?)</script>', page, re.S).group(1)))
    assert sorted(tuple(r) for r in embedded["rows"]) == sorted(rows)
    cells = re.findall(r'<td class="num">([^<]*)</td>', page)
    for row in rows:
        for value in row[1:]:
            shown = f"{value:,.4f}".rstrip("0").rstrip(".")
            assert shown in cells
    assert page.count('<svg class="chart bar"') == 5  # one bar chart per metric
    assert page.count('<svg class="chart line"') == 1  # the loss curve
    assert "I can&#x27;t give investment advice" in page


def test_report_without_metrics_is_a_clear_error(fixture_project):
    root = fixture_project("report")
    result = run_cli("report", "--metrics", "nope", cwd=root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot read the metrics relation 'nope'" in result.stderr


def test_report_renders_in_headless_chromium(fixture_project, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("SQLSYNTH_REQUIRE_CHROMIUM"):
            pytest.fail("SQLSYNTH_REQUIRE_CHROMIUM is set but chromium is not installed")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from PIL import Image

    root = fixture_project("report")
    _build_report(root)
    png = tmp_path / "report.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,1400",
                    (root / "target/report/index.html").as_uri()], capture_output=True, timeout=120, check=True)
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 1400)
    colours = {colour for _count, colour in image.getcolors(maxcolors=1_000_000)}
    assert (0x4C, 0x72, 0xB0) in colours  # the first bar colour: the charts were drawn
    non_white = sum(count for count, colour in image.getcolors(maxcolors=1_000_000) if colour != (255, 255, 255))
    assert non_white > 0.02 * 1200 * 1400


def test_headers_wrap_and_charts_have_axes_and_better_markers(fixture_project):
    page = _build_report(fixture_project("report"))
    assert 'title="out_of_scope_refusal_rate">out_<wbr>of_<wbr>scope_<wbr>refusal_<wbr>rate</th>' in page
    charts = re.findall(r'<svg class="chart bar".*?</svg>', page, re.S)
    by_title = {re.search(r'class="chart-title">([^<]*)<', c).group(1): c for c in charts}
    for metric in ("in_scope_answer_rate", "out_of_scope_refusal_rate", "mean_judge_score"):
        assert "▲ higher is better" in by_title[metric]
    for metric in ("prompt_tokens_per_call", "latency_ms_per_call"):
        assert "▼ lower is better" in by_title[metric]
    assert re.search(r'class="tick">0</text>', by_title["mean_judge_score"])  # bars start at a ticked zero
    assert "4.5 ★" in by_title["mean_judge_score"] and "305 ★" in by_title["latency_ms_per_call"]
    loss = re.search(r'<svg class="chart line".*?</svg>', page, re.S).group(0)
    assert loss.count('class="axis-title">loss<') == 1 and loss.count('class="axis-title">step<') == 1
    assert len(re.findall(r'class="tick">', loss)) >= 6  # ticks on both axes, not just min and max


def test_better_direction_and_ticks():
    from sqlsynth.svg_charts import better_direction, nice_ticks

    assert better_direction("out_of_scope_refusal_rate") == "higher"
    assert better_direction("completion_tokens_per_call") == "lower"
    assert better_direction("n_answers") is None
    assert nice_ticks(0, 0.98) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0.85, 2.9) == [0, 1, 2, 3]


def test_report_on_a_project_without_evaluation_tables(make_project):
    root = make_project({"seeds/people.csv": "id,name\n1,ann\n2,bob\n",
                         "models/names.sql": "select name from {{ ref('people') }}",
                         "models/names_file.sql": "{{ config(materialized='external', format='jsonl') }}\n"
                                                  "select * from {{ ref('people') }}"})
    assert run_cli("build", cwd=root).returncode == 0
    result = run_cli("report", cwd=root)
    assert result.returncode == 0, result.stderr
    page = (root / "target/report/index.html").read_text()
    assert "proj: project report" in page and "No evaluation tables yet" in page
    relations = re.search(r"<h2>Relations</h2>(.*?)</table>", page, re.S).group(1)
    assert re.search(r"<td[^>]*>people</td><td[^>]*>seed</td><td[^>]*></td><td[^>]*>success</td>"
                     r'<td class="num">2</td>', relations)
    assert "target/exports/names_file.jsonl" in page and "cannot read" not in page


def test_report_headers_do_not_overflow_in_chromium(fixture_project, driver):
    from selenium.webdriver.common.by import By

    root = fixture_project("report")
    _build_report(root)
    driver.get((root / "target/report/index.html").as_uri())
    headers = driver.find_elements(By.CSS_SELECTOR, "table.metrics th")
    assert headers
    for th in headers:  # the text fits its cell: no header runs into the next one
        assert driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", th), th.text
