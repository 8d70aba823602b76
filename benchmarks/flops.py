"""Compute of every zoo model at each frame count, next to the published numbers.

GMACs are multiply-adds per view at batch 1 (what video papers call "GFLOPs"),
counted with torch.utils.flop_counter on the FFN variant (adapters included);
parameters are given for the plain model and its FFN variant (every branch),
with a 174-class head. Latency is the median eager forward on this machine
(CPU, or CUDA if present). `frameflex flops NAME` prints the same table.

    python benchmarks/flops.py                       # every model with published numbers
    python benchmarks/flops.py --models tsm_r50 --no-latency --csv flops.csv
"""
from __future__ import annotations

import argparse
import csv
import os
import platform

import torch

import frameflex as ff
from frameflex.flops import markdown_table, zoo_table
from frameflex.models._registry import get_spec


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: every model with published numbers")
    parser.add_argument("--no-latency", action="store_true", help="count only (fast, on the meta device)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--csv", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "flops.csv"),
                        help="also write the table here (default: benchmarks/results/flops.csv; '' for none)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.models or [n for n in ff.list_models() if get_spec(n).published_gmacs]
    print(f"# frameflex {ff.__version__}, torch {torch.__version__}, {platform.machine()}, "
          f"device {args.device}, {torch.get_num_threads()} threads")
    print("# GMACs = multiply-adds per view, batch 1; published_gmacs = the papers' numbers\n")
    rows = [r for name in names for r in zoo_table(name, not args.no_latency, args.device, args.repeats)]
    print(markdown_table(rows))
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"\ncsv: {args.csv}")
    return rows


if __name__ == "__main__":
    main()
