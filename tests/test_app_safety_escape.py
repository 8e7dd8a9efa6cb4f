"""User-supplied names are shown as text, never as markup (issue 23.5): a run folder named like a Markdown link
and a Streamlit color directive, upload names, class names holding HTML in Plotly charts and legend chips.
AppTest gives each element's Markdown source: the escaped form is what Streamlit renders."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import torch

from appstandins import clip_bytes, kitti_frame, run_app, standin_env, standins, write_run  # noqa: F401
from seg.classes import VISTAS, ClassTable
from seg.train import runlog
from webapp import clips, escape, figures

RUN = "[click me](https:evil.example) :red[INJECTED] ![t](https:evil.example)"
LINK = '<a href="https://evil.example">Road</a>'
# Markup a name could smuggle in, where no backslash escapes its first character (an even number precede it).
MARKUP = re.compile(r"(?:^|[^\\])(?:\\\\)*(?:\]\(|:red\[|!\[|<a[ >])")


def _bodies(at, kinds=("markdown", "caption", "error", "warning", "info")) -> list[str]:
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def _no_markup(text: str) -> None:
    assert not MARKUP.search(text), text


# ---- the helper ------------------------------------------------------------------------------------------


def test_md_escapes_what_starts_markup_and_keeps_paths_readable():
    assert MARKUP.search(RUN) and MARKUP.search(LINK) and MARKUP.search(r"\\](x)") and not MARKUP.search(r"\](x)")
    assert escape.md(RUN) == r"\[click me\](https\:evil.example) \:red\[INJECTED\] !\[t\](https\:evil.example)"
    assert escape.md("runs/lr-0.1_b (copy)/model.pt: not a checkpoint") == "runs/lr-0.1_b (copy)/model.pt: not a checkpoint"
    assert escape.md("# x") == r"\# x" and escape.md("1. x") == r"1\. x" and escape.md("_x_ a_b") == r"\_x\_ a_b"
    assert escape.md("see www.evil.example or https://evil.example") == r"see www\.evil.example or https\://evil.example"
    assert escape.md("a\nb\x1b[2J\u202e") == "a\ufffdb\ufffd\\[2J\ufffd"  # one line, no escape sequences
    assert escape.md("\\[") == r"\\\["  # a backslash of the name's own cannot unescape the next character
    assert escape.code("a``b") == "``` a``b ```"
    assert escape.html(LINK) == "&#60;a href=\"https&#58;//evil.example\"&#62;Road&#60;/a&#62;"
    assert html.unescape(escape.html(LINK)) == LINK


# ---- Plotly: every figure with a name in it --------------------------------------------------------------


def _labels(fig) -> list[str]:
    out = []
    for t in fig.data:
        out += [t.name or "", t.hovertemplate or ""]
        out += [str(v) for axis in ("x", "y") if getattr(t, axis) is not None and t.type in ("bar", "heatmap")
                for v in getattr(t, axis)]
    return out


def test_plotly_figures_show_names_as_text(tmp_path):
    table = ClassTable(VISTAS.names, tuple(LINK if i == 13 else r for i, r in enumerate(VISTAS.readable)),
                       VISTAS.colors, VISTAS.ignore_index)
    shares = np.zeros((3, len(table)), np.float32)
    shares[:, 13] = 1.0
    run = runlog.load_run(write_run(tmp_path / "r", steps=200), LINK)
    figs = [clips.share_figure(shares, 10.0, table), figures.loss_figure([run], 0.6, False),
            figures.series_figure([run], "val_miou", "mIoU"),
            figures.iou_bar_figure([{"name": LINK, "iou": 0.5, "color": "#804080"}]),
            figures.confusion_figure([LINK, "Sky"], np.eye(2))]
    for fig in figs:
        labels = _labels(fig)
        assert any(html.unescape(s).startswith(LINK) for s in labels), labels  # the name is there, as text
        assert not any("<a" in s for s in labels), labels
    assert "<a" not in figs[0].to_json()


# ---- the pages ---------------------------------------------------------------------------------------------


def test_a_run_folder_named_like_markdown_is_shown_as_its_name(standin_env, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_run(runs / RUN, steps=60)  # just written, no end record: "live"
    write_run(runs / "plain", steps=60)
    with open(runs / RUN / "metrics.jsonl", "a") as f:
        f.write('{"step": "x"}\n' + json.dumps({"step": 80, "loss": 1.0}) + "\n")  # a warning naming the run
    monkeypatch.setenv("SEG_RUNS", str(runs))
    at = run_app("training")
    assert RUN in at.multiselect(key="train_runs").value  # options are plain text
    (live,) = [c for c in _bodies(at, ("caption",)) if "live:" in c]
    assert escape.md(RUN) in live, live
    (warning,) = _bodies(at, ("warning",))
    assert warning.startswith(escape.md(RUN)), warning
    for body in _bodies(at):
        _no_markup(body)
    assert "<a" not in " ".join(c.proto.spec for c in at.get("plotly_chart"))


def test_names_of_uploads_clips_and_classes_are_shown_as_text(standin_env, tmp_path, monkeypatch):
    ckpt = torch.load(standin_env["SEG_CHECKPOINT"], weights_only=True)
    ckpt["classes"]["readable"] = [f'<a href="https://evil.example">{r}</a>' for r in ckpt["classes"]["readable"]]
    path = tmp_path / "ckpt" / "model.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    samples = tmp_path / "samples"
    kitti_frame(samples / f"{RUN}.png")
    clip_bytes(samples / f"{RUN}.mp4", n=3, w=64, h=48)
    for k, v in {"SEG_CHECKPOINT": str(path), "SEG_SAMPLES": str(samples)}.items():
        monkeypatch.setenv(k, v)
    at = run_app("inference")
    at.multiselect(key="inf_clips").set_value([f"{RUN}.mp4"]).run()
    assert not at.exception and not at.error, at.exception or _bodies(at, ("error",))
    bodies = _bodies(at)
    assert f"**{escape.md(RUN)}.png**" in bodies and f"**{escape.md(RUN)}.mp4**" in bodies
    chips = [b for b in bodies if "border-radius:3px" in b]  # the legend chips (HTML)
    assert chips and all("&#60;a href=" in c for c in chips), chips
    for body in bodies:
        _no_markup(body)
    (chart,) = at.get("plotly_chart")
    names = [t["name"] for t in json.loads(chart.proto.spec)["data"]]
    assert names and all(n.startswith("&#60;a href=") for n in names) and "<a" not in chart.proto.spec


def test_a_typed_path_like_markdown_is_one_plain_error_in_the_sidebar(standin_env):
    at = run_app()
    at.sidebar.text_input(key="src_data").set_value(str(Path(standin_env["SEG_DATA"]) / RUN)).run()
    assert not at.exception, at.exception
    (error,) = [e.value for e in at.sidebar.error]
    assert escape.md(RUN) in error, error
    _no_markup(error)
    (home,) = [b for b in _bodies(at, ("markdown",)) if "no such folder" in b]  # Home's own :red[...] around the same line
    assert home == f":red[{error}]"
