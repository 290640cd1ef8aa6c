"""The exported HTML in a real headless browser (Debian's chromium, driven over the DevTools protocol).

For a page of each command (tag, speech, seq2seq, graph, classify): it makes no request but its own
(file:// and http://), every input, attention, view, layer and head can be chosen with the
page's own controls and draws, no script error, and a screenshot of each view is not blank.
The CSP test serves the page from a local http.server that sends the header
``Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; script-src
'unsafe-inline'`` (the real header, not a <meta> copy) and checks that the browser reported no
violation (a ``securitypolicyviolation`` listener injected through the protocol, outside the
page's CSP) and that the page still works.

Skipped, with the reason, only where /usr/bin/chromium is missing (``make test`` installs it
as root with apt: scripts/install_test_browser.sh).
"""

import functools
import http.server
import io
import threading

import numpy as np
import pytest

from tests.conftest import ROOT, seqattn
from tests.export import browser

pytestmark = pytest.mark.skipif(not browser.available(), reason=browser.INSTALL_HINT)

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

# Walks the page's own controls: every input x attention x view x layer x head, as a person would.
EVERY_CHOICE = r"""
(() => {
  const $ = id => document.getElementById(id);
  const choose = (id, value) => { const s = $(id); s.value = value; s.dispatchEvent(new Event('change')); };
  const bad = []; let count = 0;
  const inputs = $('input').options.length;
  for (let i = 0; i < inputs; i++) {
    choose('input', String(i));
    const maps = Math.max(1, $('map').options.length);  // a graph has edge weights, no map to choose
    for (let m = 0; m < maps; m++) {
      if ($('map').options.length) choose('map', String(m));
      const views = [...document.querySelectorAll('#views button')].map(b => b.dataset.view);
      for (const v of views) {
        document.querySelector('#views button[data-view="' + v + '"]').click();
        for (const l of [...$('layer').options].map(o => o.value)) {
          choose('layer', l);
          for (const h of [...$('head').options].map(o => o.value)) {
            const before = +document.body.dataset.rendered;
            choose('head', h);
            const d = document.body.dataset; count++;
            const drawn = $('stage').querySelectorAll('canvas, svg, table').length;
            if (d.input != String(i) || d.map != String(m) || d.view != v || d.layer != l || d.head != h
                || +d.rendered !== before + 1 || drawn === 0 || d.error) {
              bad.push([i, m, v, l, h, JSON.stringify(d), drawn].join(' '));
            }
          }
        }
      }
    }
  }
  return {count: count, bad: bad.slice(0, 5), failed: bad.length};
})()
"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_planetoid, tiny_graph_model_dir, tiny_classifier_dir) -> dict:
    """One exported page per command, from the repository's data/ inputs."""
    folder = tmp_path_factory.mktemp("pages")
    words = folder / "words.txt"
    words.write_text("attention\nseqattn\n\nbanded\n")
    runs = {
        "tag": ("tag", ROOT / "data" / "sample.txt"),
        "speech": ("speech", ROOT / "data" / "speech" / "pi.wav", ROOT / "data" / "speech" / "seven.wav",
                   "--format", "tsv"),
        "seq2seq": ("seq2seq", words, "--format", "tsv"),
        "graph": ("graph", tiny_planetoid, "--model", tiny_graph_model_dir, "--attention", "3"),
        "classify": ("classify", words, "--model", tiny_classifier_dir, "--format", "tsv"),
    }
    made = {}
    for name, args in runs.items():
        out = folder / f"{name}.html"
        proc = seqattn(*args, "--attention-out", out)
        assert proc.returncode == 0, proc.stderr.decode()
        made[name] = out
    return made


def _drawn(page) -> int:
    """Pixels of a screenshot, inside the drawing area (#stage), clearly not the white background."""
    from PIL import Image

    box = page.evaluate("(() => { const r = document.getElementById('stage').getBoundingClientRect();"
                        " return [r.left, r.top, r.right, r.bottom].map(Math.round); })()")
    pixels = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("RGB"), dtype=np.float64)
    stage = pixels[max(0, box[1]):box[3], max(0, box[0]):box[2]]
    return int(((255.0 - stage).max(axis=2) > 40).sum())


def _views(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('#views button')].map(b => b.dataset.view)")


@pytest.mark.parametrize("name", ["tag", "speech", "seq2seq", "graph", "classify"])
def test_page_from_file_makes_no_request_and_every_choice_draws(pages, name, tmp_path):
    url = pages[name].as_uri()
    with browser.Browser() as chromium:
        page = chromium.open(url)
        assert page.evaluate("document.body.dataset.rendered") == "1", page.errors
        walked = page.evaluate(EVERY_CHOICE)
        assert walked["failed"] == 0, walked["bad"]
        assert walked["count"] >= 6
        for view in _views(page):
            page.evaluate(f"seqattn.select({{input: 0, view: '{view}', head: 'mean'}})")
            (tmp_path / f"{name}-{view}.png").write_bytes(page.screenshot())
            assert _drawn(page) > 1000, f"{name} {view}: the screenshot is blank where the page draws"
        if name == "graph":  # moving to a neighbour through the node box
            page.evaluate("(() => { const n = document.getElementById('node'); n.value = seqattn.data.inputs[0]"
                          ".graph.nodes[0]; n.dispatchEvent(new Event('change')); })()")
            assert page.evaluate("document.body.dataset.node") == "0"
        assert page.errors == []
        assert page.requests == [url], "the page asked for something other than itself"


class _CSPHandler(http.server.SimpleHTTPRequestHandler):
    requested: list = []

    def end_headers(self):
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requested.append(self.path)
        super().do_GET()


@pytest.mark.parametrize("name", ["tag", "speech", "seq2seq", "graph", "classify"])
def test_page_under_the_csp_header_works_and_violates_nothing(pages, name):
    handler = functools.partial(_CSPHandler, directory=str(pages[name].parent))
    _CSPHandler.requested = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{pages[name].name}"
        with browser.Browser() as chromium:
            page = chromium.open(url)
            assert page.evaluate("document.body.dataset.rendered") == "1", "the inline script did not run"
            walked = page.evaluate(EVERY_CHOICE)
            assert walked["failed"] == 0, walked["bad"]
            page.evaluate("seqattn.select({input: 0, head: 'mean'})")
            assert _drawn(page) > 1000
            assert page.evaluate("window.__violations") == []
            assert page.errors == []
            assert page.requests == [url]
    finally:
        server.shutdown()
        server.server_close()
    assert _CSPHandler.requested == [f"/{pages[name].name}"]
