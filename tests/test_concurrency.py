"""Eight app sessions at once: each gets the right segmentation, the model is loaded once, memory stays bounded.

Each session is an AppTest on the Inference page, run in its own thread, with a different sample frame
chosen; the class shares it displays are compared with a single Predictor's answer for that frame.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from PIL import Image
from streamlit.components.v2.component_manager import BidiComponentManager
from streamlit.runtime import Runtime
from streamlit.testing.v1 import AppTest

from appstandins import make_standins, no_legacy_pages_dir
from seg import viz
from seg.infer import predictor
from seg.paths import REPO_ROOT

SESSIONS = 8
RSS_BOUND_MB = 1500  # generous: the model is ~13 MB, one 1242x375 result a few MB per session
CHIP = re.compile(r"([^<>]+)<span style='opacity:\.65;margin-left:6px'>(&lt;0\.1|[\d.]+)%</span>")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this platform")


def _shown_legend(at) -> list[tuple[str, str]]:
    return [(n, s) for m in at.markdown for n, s in CHIP.findall(str(m.value))]


def _one_runtime_for_all(monkeypatch):
    """Make every AppTest session see one Runtime and one component registry, as sessions of a real server do.

    AppTest installs a mock Runtime for each run and removes it after; in-page components
    (st.components.v2) look the Runtime up while the page runs, so another session's run ending would pull
    it from under them. Returns the shared registry, to hand to each AppTest.
    """
    last = []

    def instance(cls):
        if cls._instance is not None:
            last[:] = [cls._instance]
        if not last:
            raise RuntimeError("Runtime hasn't been created!")
        return last[0]

    monkeypatch.setattr(Runtime, "instance", classmethod(instance))
    return BidiComponentManager()


@pytest.mark.slow
def test_eight_sessions_share_one_model_and_get_correct_results(tmp_path, monkeypatch):
    no_legacy_pages_dir(monkeypatch)
    env = make_standins(tmp_path, n_samples=4)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    samples = sorted(Path(env["SEG_SAMPLES"]).glob("*.png"))
    reference = predictor.Predictor(checkpoint=env["SEG_CHECKPOINT"])
    expected = {
        p.name: [(r["name"], f"{r['share']:.1%}"[:-1] if r["share"] >= 0.0005 else "&lt;0.1")
                 for r in viz.legend(reference.predict(Image.open(p)), reference.classes)]
        for p in samples
    }
    assert all(len(v) > 1 for v in expected.values()), "stand-in model should predict several classes"

    loads = []
    init = predictor.Predictor.__init__

    def counting_init(self, *args, **kwargs):
        loads.append(threading.get_ident())
        init(self, *args, **kwargs)

    monkeypatch.setattr(predictor.Predictor, "__init__", counting_init)

    rss_before = _rss_mb()
    results, errors = {}, []

    # Opening the sessions is serialized: AppTest swaps process-wide Streamlit state (the mock Runtime, the
    # pages flag) at the start of each run, and CPython 3.11's compile() is not reliable from many threads at
    # once. The runs that matter, each choosing a frame and segmenting it, then go all at once.
    setup_lock = threading.Lock()
    ready = threading.Barrier(SESSIONS, timeout=240)
    registry = _one_runtime_for_all(monkeypatch)

    def session(i: int) -> None:
        try:
            with setup_lock:
                at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=240)
                at._bidi_component_manager = registry
                at.run()
                at.switch_page("pages/inference.py").run()
            ready.wait()
            if not [w for w in at.multiselect if w.key == "inf_samples"]:
                raise AssertionError(f"session {i}: not on the Inference page: {[t.value for t in at.title]} "
                                     f"{at.exception} {[str(e.value) for e in at.get('alert')]}")
            name = samples[i % len(samples)].name
            at.multiselect(key="inf_samples").set_value([name]).run()
            if at.exception or at.error:
                raise AssertionError(f"session {i}: {at.exception or [e.value for e in at.error]}")
            results[i] = (name, _shown_legend(at))
        except BaseException as e:  # noqa: BLE001 — reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a session did not finish within 300 s"
    assert not errors, errors
    rss_after = _rss_mb()

    assert len(results) == SESSIONS
    for i, (name, shown) in results.items():
        assert shown == expected[name], f"session {i} ({name}) shows a different segmentation"
    assert len(loads) == 1, f"model loaded {len(loads)} times for {SESSIONS} sessions"
    grown = rss_after - rss_before
    print(f"\n{SESSIONS} sessions: RSS {rss_before:.0f} MB -> {rss_after:.0f} MB (+{grown:.0f} MB), model loads: {len(loads)}")
    assert grown < RSS_BOUND_MB
