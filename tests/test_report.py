"""`sqlsynth report`: the HTML shows the metrics table's numbers, charts and the loss curve."""

import html
import json
import os
import re
import shutil
import subprocess

import pytest

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
    assert page.count('<svg class="chart"') == 5 + 1  # one bar chart per metric + the loss curve
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
