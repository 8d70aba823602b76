"""How long do `import frameflex` and `frameflex --help` take? Each is timed in fresh interpreters.

- ``import frameflex``: the time of ``import frameflex`` after ``import torch`` (target <= 0.5 s; names are
  imported on first use), then of reaching the core API (``ff.convert``, ``ff.FFNLoss``, ``ff.create_model``
  ...), then of every other public name (the Hub functions import huggingface_hub).
- ``frameflex --help`` and every subcommand's ``--help``: the whole process, interpreter start included
  (target <= 1 s), and whether torch was imported (it must not be).

Each measurement is the median of ``--repeats`` fresh processes, run interleaved.

Run (from the repository root):

    python benchmarks/import_time.py               # 5 repeats
    python benchmarks/import_time.py --repeats 11
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}

IMPORT_PROBE = """
import time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
import frameflex as ff
t2 = time.perf_counter()
ff.convert, ff.FFNLoss, ff.specialize, ff.load_state_dict, ff.create_model, ff.forward_multi
t3 = time.perf_counter()
[getattr(ff, name) for name in ff.__all__]  # the Hub and profile too: huggingface_hub, the flop counter
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""

HELP_PROBE = """
import sys
from frameflex.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("torch" in sys.modules)
"""


def _run(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr}")
    return wall, out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per measurement (default 5)")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from frameflex.cli import _SUBCOMMANDS

    commands = [[], *[[name] for name in _SUBCOMMANDS]]
    torch_s, frameflex_s, api_s, rest_s = [], [], [], []
    help_s: dict[str, list[float]] = {" ".join(["frameflex", *c, "--help"]): [] for c in commands}
    help_torch: dict[str, bool] = {}
    for _ in range(args.repeats):
        _, line = _run(["-c", IMPORT_PROBE])
        t, f, a, r = map(float, line.split())
        torch_s.append(t), frameflex_s.append(f), api_s.append(a), rest_s.append(r)
        for c, key in zip(commands, help_s):
            wall, line = _run(["-c", HELP_PROBE, *c, "--help"])
            help_s[key].append(wall)
            help_torch[key] = help_torch.get(key, False) or json.loads(line.lower())

    med = statistics.median
    print(f"# import and --help times: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, median of {args.repeats} fresh processes\n")
    print("| measurement | median s | target |\n|---|---|---|")
    print(f"| import torch | {med(torch_s):.3f} | |")
    print(f"| import frameflex (after torch) | {med(frameflex_s):.3f} | <= 0.5 |")
    print(f"| then ff.convert, ff.FFNLoss, ff.create_model ... | {med(api_s):.3f} | |")
    print(f"| then every other public name (ff.save_pretrained, ff.profile ...) | {med(rest_s):.3f} | |")
    for key, times in help_s.items():
        print(f"| {key} (whole process{', imports torch!' if help_torch[key] else ''}) | {med(times):.3f} | <= 1 |")


if __name__ == "__main__":
    main()
