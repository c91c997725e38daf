"""The generated report in a real browser: headless Chromium renders it without
console messages, every figure decodes, every table has rows, and the
screenshot is not blank.

CI installs the browser with ``apt-get install -y chromium`` (Debian); if it is
missing this test fails rather than skips.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from helpers import chromium
from tiny_runs import tiny_report

pytestmark = pytest.mark.slow  # trains tiny runs and starts Chromium: about 30 s

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--enable-logging=stderr", "--v=0"]

# Appended to a copy of the report (the report itself has no script): after
# load, record per figure whether its image decoded, and rows per table.
CHECKER = """<script>
window.addEventListener("load", () => {
  const figures = {}, tables = {};
  for (const f of document.querySelectorAll("figure[data-figure]")) {
    const img = f.querySelector("img");
    figures[f.id] = !!img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0;
  }
  for (const t of document.querySelectorAll("table[data-table]")) {
    tables[t.id] = t.querySelectorAll("tbody tr").length;
  }
  document.body.setAttribute("data-check", JSON.stringify({figures, tables}));
});
</script>"""


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    # its own HOME and XDG directories: Chromium writes crash reports and
    # settings there, never in the user's home
    home = profile / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                          check=False, capture_output=True, text=True, timeout=120, env=env)


def console_messages(stderr: str) -> list[str]:
    """Every console message Chromium logged (it logs console.* and uncaught
    errors as CONSOLE lines, all at one level: any of them fails the test)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-runs"
    root.mkdir(exist_ok=True)
    return tiny_report(root)


def test_report_renders_in_chromium(report, tmp_path):
    page = Path(report["output"])
    # 1. the report itself: no console messages, a non-blank screenshot
    shot = tmp_path / "report.png"
    done = run_chromium([f"--screenshot={shot}", "--window-size=1400,2200",
                         "--hide-scrollbars", page.resolve().as_uri()], tmp_path / "profile-1")
    assert shot.exists(), f"no screenshot; chromium said:\n{done.stderr[-3000:]}"
    assert console_messages(done.stderr) == []
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2200, 1400)
    assert pixels.std() > 10, "screenshot is (nearly) one colour"
    assert (pixels < 200).mean() > 0.02, "screenshot is (nearly) blank"

    # 2. the rendered DOM: every figure decoded, every table filled
    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", CHECKER + "</body>"))
    done = run_chromium(["--dump-dom", checked.resolve().as_uri()], tmp_path / "profile-2")
    assert console_messages(done.stderr) == []
    found = re.search(r'data-check="([^"]*)"', done.stdout)
    assert found, f"the page did not finish loading:\n{done.stderr[-3000:]}"
    check = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["figures"] == {f: True for f in report["figures"]}
    assert set(check["tables"]) == set(report["tables"])
    assert all(rows > 0 for rows in check["tables"].values()), check["tables"]


def test_console_errors_and_broken_images_are_caught(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><body><figure id="f" data-figure="f"><img src="data:image/png;'
                    'base64,AAAA"></figure><script>notDefined();</script>' + CHECKER
                    + "</body></html>")
    done = run_chromium(["--dump-dom", page.resolve().as_uri()], tmp_path / "profile")
    assert any("notDefined" in m for m in console_messages(done.stderr))
    check = re.search(r'data-check="([^"]*)"', done.stdout).group(1).replace("&quot;", '"')
    assert json.loads(check)["figures"] == {"f": False}
