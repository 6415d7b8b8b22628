"""The docs site in a real browser: Debian's headless chromium driven through chromium-driver.

The graph must render (node shapes present, a screenshot with the node colours), and clicking a
node must show its SQL. Skipped only when chromium is absent and SQLSYNTH_REQUIRE_CHROMIUM is unset
(.ci/run installs chromium and sets it, so CI cannot skip silently).
"""

from __future__ import annotations

import io

import pytest

from browser_support import browser_driver  # noqa: F401  (the `driver` fixture: headless chromium)
from conftest import run_cli

MODEL_FILL = (0xFD, 0xF0, 0xD5)  # .node.model rect in static/site.css
SEED_FILL = (0xDB, 0xEA, 0xF7)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A plain `sqlsynth init` project, built without its LLM part, and its docs site."""
    base = tmp_path_factory.mktemp("docs-browser")
    assert run_cli("init", "shop", cwd=base).returncode == 0
    root = base / "shop"
    assert run_cli("build", "--exclude", "tag:llm", cwd=root).returncode == 0
    result = run_cli("docs", "generate", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "target/docs/index.html"


def _colours(png: bytes) -> tuple[set, float]:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    counts = image.getcolors(maxcolors=10_000_000)
    total = image.size[0] * image.size[1]
    non_white = sum(n for n, colour in counts if colour != (255, 255, 255))
    return {colour for _n, colour in counts}, non_white / total


def test_graph_renders_and_a_click_shows_the_sql(driver, site, tmp_path):
    from selenium.webdriver.common.by import By

    driver.get(site.as_uri())
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    shown = [n for n in driver.find_elements(By.CSS_SELECTOR, "#graph g.node") if n.is_displayed()]
    names = {n.get_attribute("data-id") for n in shown}
    assert {"model.shop.customer_orders", "seed.shop.raw_orders", "export.chat_export"} <= names
    assert not any(name.startswith("test.") for name in names)  # data tests are off by default

    png = driver.get_screenshot_as_png()
    (tmp_path / "lineage.png").write_bytes(png)
    colours, ink = _colours(png)
    assert MODEL_FILL in colours and SEED_FILL in colours and ink > 0.05

    driver.find_element(By.CSS_SELECTOR, 'g.node[data-id="model.shop.customer_orders"]').click()
    details = driver.find_element(By.ID, "details")
    assert details.find_element(By.TAG_NAME, "h2").text == "customer_orders"
    sql = details.find_element(By.CSS_SELECTOR, "pre.sql").text
    assert "ref('stg_orders')" in sql.replace('"', "'")
    assert "success" in details.text and "customer_id" in details.text  # last run and columns
    assert "unique_customer_orders_customer_id" in details.text  # its data test, clickable
    links = [a.text for a in details.find_elements(By.CSS_SELECTOR, "a.link")]
    assert {"stg_customers", "stg_orders", "unique_customer_orders_customer_id"} <= set(links)
    details.find_element(By.LINK_TEXT, "stg_orders").click()  # upstream link: opens that node
    assert driver.find_element(By.CSS_SELECTOR, "#details h2").text == "stg_orders"


def test_tests_toggle_and_datasets_tab(driver, site):
    from selenium.webdriver.common.by import By

    driver.get(site.as_uri())
    before = len([n for n in driver.find_elements(By.CSS_SELECTOR, "#graph g.node") if n.is_displayed()])
    driver.find_element(By.CSS_SELECTOR, 'input[data-type="test"]').click()
    after = [n for n in driver.find_elements(By.CSS_SELECTOR, "#graph g.node") if n.is_displayed()]
    assert len(after) > before and any(n.get_attribute("data-id").startswith("test.") for n in after)
    driver.find_element(By.CSS_SELECTOR, 'nav button[data-tab="datasets"]').click()
    datasets = driver.find_element(By.ID, "datasets")
    assert datasets.is_displayed() and "chat.jsonl" in datasets.text
