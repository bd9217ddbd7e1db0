"""Render an HTML page in headless Chromium and report which images and videos loaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required"]

# Appended to a copy of the page (same folder, so relative links resolve the same way): after the
# load event and a few seconds for the videos, it writes what loaded into the DOM that Chromium dumps.
PROBE = """
<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var r = {images: [], videos: [], width: document.documentElement.scrollWidth,
             height: document.documentElement.scrollHeight};
    document.querySelectorAll('img').forEach(function (i) {
      r.images.push({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth,
                     shown: i.getBoundingClientRect().width, plot: i.classList.contains('plot')});
    });
    document.querySelectorAll('video').forEach(function (v) {
      var s = v.querySelector('source');
      r.videos.push({src: s ? s.getAttribute('src') : v.getAttribute('src'), ready: v.readyState,
                     error: v.error ? v.error.code : null, w: v.videoWidth, h: v.videoHeight});
    });
    var pre = document.createElement('pre'); pre.id = 'latentdyn-probe';
    pre.textContent = JSON.stringify(r); document.body.appendChild(pre);
  }, 4000);
});
</script>
"""


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("LATENTDYN_REQUIRE_TEST_DATA"):
        pytest.fail("headless Chromium is required here (apt-get install chromium)")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


def render(page: Path, profile_dir: Path, screenshot: Path | None = None) -> dict:
    """Load ``page`` in headless Chromium, 1280 px wide; return {"images": [...], "videos": [...], ...}:
    each image's natural width ``w`` and the CSS pixels it is ``shown`` at."""
    binary = chromium_binary()
    probe = page.with_name(f".probe_{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    try:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1280,4000", "--virtual-time-budget=20000",
               "--dump-dom", probe.resolve().as_uri()]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        m = re.search(r'<pre id="latentdyn-probe">(.*?)</pre>', out.stdout, re.S)
        assert m, f"Chromium did not run the page's probe (exit {out.returncode}): {out.stderr[-800:]}"
        result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
        if screenshot is not None:
            subprocess.run([binary, *FLAGS, f"--user-data-dir={profile_dir}", "--window-size=1280,4000",
                            "--virtual-time-budget=8000", f"--screenshot={screenshot}", page.resolve().as_uri()],
                           capture_output=True, timeout=180)
        return result
    finally:
        probe.unlink(missing_ok=True)
