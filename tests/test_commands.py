"""Every command users run keeps its name after the move to packages: `python -m seg.X --help` answers with
that command's own usage. (Each command's real runs are tested beside its code: test_train, test_predict,
test_evaluate, test_prepare, test_export, test_bench, test_synth, test_datastats, test_video.)"""
import subprocess
import sys

import pytest

from seg.paths import REPO_ROOT

COMMANDS = {  # module -> a flag only that command's usage lists
    "seg.train": "--preset", "seg.predict": "--overlay", "seg.evaluate": "--json", "seg.prepare": "--dst",
    "seg.export": "--opset", "seg.bench": "--quick", "seg.synth": "--style", "seg.datastats": "--split",
    "seg.video": "--seconds",
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_command_answers_help_with_its_own_usage(module):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:") and COMMANDS[module] in r.stdout and not r.stderr.strip()
