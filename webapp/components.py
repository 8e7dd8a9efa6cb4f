"""Two small in-page components (st.components.v2: plain JS in the app's own page, nothing fetched).

- `keep_zoom`: Streamlit draws a plotly chart anew whenever its figure changes (a live run's new log line,
  a smoothing change), so Plotly's `uirevision` alone cannot keep a zoom. This component listens to the
  charts' zoom events, hands the ranges back to Python, and the page draws the next figure with them.
- `pixel_inspector`: an image with a readout of the class (and ground truth, confidence) under the cursor,
  read from the label maps themselves (lossless PNGs decoded in the browser), pixel for pixel.
"""
from __future__ import annotations

import base64
import io
import math

import numpy as np
import streamlit as st
from PIL import Image

from webapp import views

_ZOOM_JS = """
export default function(component) {
  const { data, setStateValue } = component;
  const store = (window.__segZoom = window.__segZoom || {});
  store.tags = data.tags;
  store.state = store.state || {};
  const axisRange = (ax) => (!ax || ax.autorange || !Array.isArray(ax.range)) ? null : ax.range.slice(0, 2);
  const attach = () => {
    for (const key of Object.keys(data.tags)) {
      const gd = document.querySelector('.st-key-' + key + ' .js-plotly-plot');
      if (!gd || gd.__segZoom || typeof gd.on !== 'function') continue;
      gd.__segZoom = true;
      gd.on('plotly_relayout', (ev) => {
        if (!Object.keys(ev).some((k) => /^[xy]axis[.]/.test(k))) return;  // autosize and the like
        const entry = {tag: store.tags[key], x: axisRange(gd.layout.xaxis), y: axisRange(gd.layout.yaxis)};
        const before = store.state[key] || {tag: store.tags[key], x: null, y: null};
        if (JSON.stringify(entry) === JSON.stringify(before)) return;  // a redraw at the kept range: no rerun
        store.state = Object.assign({}, store.state, {[key]: entry});
        setStateValue('zoom', store.state);
      });
    }
  };
  attach();
  const observer = new MutationObserver(attach);
  observer.observe(document.body, {childList: true, subtree: true});
  return () => observer.disconnect();
}
"""

_zoom_component = st.components.v2.component("seg_keep_zoom", js=_ZOOM_JS)


def keep_zoom(tags: dict[str, str], key: str) -> dict:
    """Mount the zoom keeper for the plotly charts whose Streamlit keys are `tags`' keys.

    `tags` gives each chart the scale its ranges belong to (e.g. "step|log"): ranges kept under another tag
    are not applied. Returns {chart key: {"tag", "x": [lo, hi] or None, "y": ...}} as last zoomed.
    """
    result = _zoom_component(data={"tags": tags}, key=key, on_zoom_change=lambda: None)
    return dict(result.get("zoom") or {})


def ranges_for(zoom: dict, chart: str, tag: str) -> tuple[list | None, list | None]:
    """(x range, y range) the user last zoomed `chart` to, as they apply under `tag` ("XSCALE|YSCALE", e.g.
    "step|log"): each axis keeps its range while its own scale is unchanged; a y range moves between "linear"
    and "log" (Plotly's log axes take log10 units); an x range under another x scale (steps, minutes) is
    dropped. (None, None) when nothing applies."""
    entry = zoom.get(chart) or {}
    old, new = str(entry.get("tag") or "").split("|"), tag.split("|")
    if len(old) != 2 or len(new) != 2:
        return (entry.get("x"), entry.get("y")) if entry.get("tag") == tag else (None, None)
    x = entry.get("x") if old[0] == new[0] else None
    return x, rescale(entry.get("y"), old[1], new[1])


def rescale(span: list | None, old: str, new: str) -> list | None:
    """A [lo, hi] axis range drawn under scale `old` ("linear" or "log") as it reads under `new`; None when it
    has no such reading (a linear range reaching zero or below on a log axis)."""
    if span is None or old == new:
        return span
    lo, hi = (float(v) for v in span)
    if (old, new) == ("linear", "log"):
        return [math.log10(lo), math.log10(hi)] if lo > 0 and hi > 0 else None
    if (old, new) == ("log", "linear"):
        return [10.0 ** lo, 10.0 ** hi]
    return None


_INSPECT_JS = """
async function pixels(uri) {
  if (!uri) return null;
  const blob = await (await fetch(uri)).blob();
  const bmp = await createImageBitmap(blob, {colorSpaceConversion: 'none', premultiplyAlpha: 'none'});
  const canvas = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(bmp, 0, 0);
  return ctx.getImageData(0, 0, bmp.width, bmp.height).data;  // RGBA; label PNGs are gray: R = value
}

export default function(component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector('.seg-inspect');
  const img = root.querySelector('img');
  const out = root.querySelector('.seg-readout');
  img.src = data.image;
  img.alt = data.caption;
  root.querySelector('.seg-caption').textContent = data.caption;
  const W = data.width, H = data.height, names = data.names;
  const maps = Promise.all([pixels(data.pred), pixels(data.truth), pixels(data.conf)]);
  const rest = () => { out.textContent = data.idle; out.title = ''; out.classList.add('seg-idle'); };
  rest();
  img.onmousemove = async (e) => {
    const r = img.getBoundingClientRect();
    const x = Math.min(W - 1, Math.max(0, Math.floor((e.clientX - r.left) / r.width * W)));
    const y = Math.min(H - 1, Math.max(0, Math.floor((e.clientY - r.top) / r.height * H)));
    const [pred, truth, conf] = await maps;
    const i = 4 * (y * W + x);
    let text = 'x ' + x + ', y ' + y + ' · predicted ' + (names[pred[i]] ?? ('id ' + pred[i]));
    if (truth) text += ' · truth ' + (names[truth[i]] ?? ('id ' + truth[i]));
    if (conf) text += ' · confidence ' + Math.round(conf[i] / 2.55) + '%';
    out.textContent = text;
    out.title = text;  // the whole readout, where one line cuts it off
    out.classList.remove('seg-idle');
    out.dataset.x = x; out.dataset.y = y;
  };
  img.onmouseleave = rest;
}
"""

_INSPECT_HTML = """<div class="seg-inspect"><img class="seg-image"/><div class="seg-caption"></div>
<div class="seg-readout"></div></div>"""
# One line whatever the column width, so the readout never makes its column taller than the image's
# neighbours; the idle hint reads as a caption, the live readout in monospace.
INSPECT_CSS = """
.seg-image { width: 100%; display: block; border-radius: 4px; cursor: crosshair; }
.seg-caption { font-size: 0.85rem; opacity: 0.65; text-align: center; margin-top: 2px; }
.seg-readout { font-size: 0.85rem; font-family: monospace; min-height: 1.3em; margin-top: 2px;
                white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.seg-readout.seg-idle { font-family: inherit; opacity: 0.65; text-align: center; }
"""

_inspect_component = st.components.v2.component("seg_pixel_inspector", html=_INSPECT_HTML, css=INSPECT_CSS,
                                                js=_INSPECT_JS)


def _png_uri(a: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(a, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _jpeg_uri(rgb: np.ndarray) -> str:
    if max(rgb.shape[:2]) > views.JPEG_MAX_SIDE:  # a strip JPEG cannot hold (65535x1): PNG has no such limit
        return _png_uri(rgb)
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def idle_hint(truth: bool, confidence: bool) -> str:
    """The readout's one-line caption while the cursor is off the image, e.g. "Hover: class · truth"."""
    return "Hover: " + " · ".join(["class"] + ["truth"] * truth + ["confidence"] * confidence)


def pixel_inspector(view: np.ndarray, labels: np.ndarray, names: list[str], caption: str, key: str,
                    truth: np.ndarray | None = None, confidence: np.ndarray | None = None) -> None:
    """Show `view` (H, W, 3) uint8 with a per-pixel readout of `labels` (H, W) class ids named by `names`,
    plus `truth` (H, W) ids and `confidence` (H, W) in [0, 1] when given."""
    h, w = labels.shape
    conf = None if confidence is None else _png_uri(np.rint(np.clip(confidence, 0, 1) * 255))
    _inspect_component(
        data={"image": _jpeg_uri(view), "pred": _png_uri(labels), "truth": None if truth is None else _png_uri(truth),
              "conf": conf, "names": list(names), "width": int(w), "height": int(h), "caption": caption,
              "idle": idle_hint(truth is not None, confidence is not None)},
        key=key, width="stretch",
    )
