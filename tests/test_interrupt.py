"""Ctrl-C in the CLI stops the execution as Stopped and exits 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import nbformat


def test_ctrl_c_stops_a_headless_run(tmp_path):
    marker = tmp_path / "started"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import pathlib\nimport time"),
        nbformat.v4.new_code_cell("%%step First\na = 1"),
        nbformat.v4.new_code_cell(
            f"%%step Slow\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\nb = a"),
        nbformat.v4.new_code_cell("%%step After\nc = b"),
    ])
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    env = {**os.environ, "JUPYTER_PIPELINES_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_pipelines", "run", str(path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():  # wait for the condition, not a fixed time
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    doc = json.loads(out)
    assert doc["PipelineExecutionStatus"] == "Stopped"
    assert "interrupt" in doc["FailureReason"].lower()
    steps = {s["StepName"]: s["StepStatus"] for s in doc["Steps"]}
    assert steps == {"First": "Succeeded", "Slow": "Stopped"}  # `After` never started
