"""What does frameflex cost at run time? Every ratio, measured in one interleaved run.

For each input B x 3 x T x S x S (default 2x3x8x64x64 and 1x3x8x112x112) of one model
(default torchvision r3d_18), eager:

  eval (``model.eval()``, ``torch.no_grad``)
    plain                  the model as built
    plain copy (A/A)       a second copy of it: how far its ratio is from 1 is the noise floor
    converted              ``ff.convert(model, [4, 8, 16], time_dim=2)`` (FrameNorm, no adapters)
    converted + adapters   ``ff.convert(..., adapters="auto")``
    specialized(T)         ``ff.specialize(<converted + adapters>, T)``: a plain module again
  train (``model.train()``, forward + cross-entropy + backward)
    plain, plain copy (A/A), converted, converted + adapters
  multi-frame training (the adapters model, frame counts 4/8/16, the first input's batch and size)
    forward_multi step     ``ff.forward_multi(model, {4: x4, 8: x8, 16: x16})`` + ``ff.FFNLoss`` + backward
    3 single-T steps       for each T, ``with ff.frames(model, T)``: forward + cross-entropy + backward,
                           timed one by one and summed per round

Every round runs every variant once, all of them in one fresh shuffled order (warm-up
rounds first, discarded), so drift and other jobs on the machine hit every variant
alike. Each ratio is the median over rounds of variant / base timed in the same round
(the PASS/MISS basis); the ratio in process CPU time (CPU only) is shown beside it.
Eval and train use separate model copies (``train()`` drops the adapters' cached weights), and
every variant has ``--copies`` copies (default 4) timed in turn, round r on copy r mod 4: where a
model's tensors sit in memory moves its speed by several percent (two copies of the same model can
differ by 5-10%), and averaging over placements keeps that out of the ratios. Warm-up rounds are
at least as many as copies.

    python benchmarks/overhead.py                                   # ~4 min on an idle 2-core CPU
    python benchmarks/overhead.py --inputs 1x8x112 --rounds 20 --csv overhead.csv
    python benchmarks/overhead.py --quick                           # smoke test, tiny sizes, seconds

OMP_WAIT_POLICY defaults to PASSIVE here: with other jobs on the cores, OpenMP's
spinning threads make 2-thread timings swing 10-100x. Run with OMP_WAIT_POLICY=ACTIVE
to time torch's default on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import os
import sys
import time

# Must be set before torch loads OpenMP; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # run from a checkout without installing (last: never shadow tests' conftest)

import frameflex as ff  # noqa: E402
from _timing import (  # noqa: E402
    header_line, interleaved, iqr, markdown_table, median, ms, paired_ratios, pick_device, seed_all, write_csv,
)

FRAME_SETS = (4, 8, 16)
NUM_CLASSES = 400
TARGETS = {("eval", "converted"): 1.02, ("eval", "converted + adapters"): 1.02, ("eval", "specialized"): 1.01,
           ("train", "converted"): 1.03, ("train", "converted + adapters"): 1.03, ("multi", "forward_multi step"): 1.02}


class TSN(nn.Module):
    """A 2D image model used on video TSN-style: frames folded into the batch, logits averaged."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        return self.backbone(x.transpose(1, 2).reshape(b * t, c, h, w)).view(b, t, -1).mean(1)


def build(name: str) -> tuple[nn.Module, str | tuple[str, ...]]:
    """(plain model, the ``adapters`` to convert it with) for a --model name."""
    if name == "r3d_18":
        import torchvision
        return torchvision.models.video.r3d_18(weights=None, num_classes=NUM_CLASSES), "auto"
    if name.startswith("tsn_"):
        import timm
        return TSN(timm.create_model(name[4:], pretrained=False, num_classes=NUM_CLASSES)), "auto"
    if name in ff.list_models():  # a zoo model with its paper's adapter placement
        return ff.create_model(name, num_classes=NUM_CLASSES), ff.get_spec(name).adapters
    raise SystemExit(f"unknown model {name!r}: use r3d_18, tsn_<timm model name> (e.g. tsn_resnet50) "
                     f"or a zoo model ({', '.join(ff.list_models())})")


def randomize_adapters(model: nn.Module, seed: int) -> None:
    """Small random adapter scales (they start at zero), so specialize() has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                for p in m.scales.values():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


def variants(base: nn.Module, adapters, seed: int) -> dict[str, nn.Module]:
    adapted = ff.convert(base, FRAME_SETS, adapters=adapters, time_dim=2, inplace=False)
    randomize_adapters(adapted, seed)
    return {"plain": base, "converted": ff.convert(base, FRAME_SETS, time_dim=2, inplace=False),
            "converted + adapters": adapted}


def parse_input(text: str) -> tuple[int, int, int]:
    try:
        b, t, s = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BxTxS such as 2x8x64, got {text!r}") from None
    if min(b, t, s) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return b, t, s


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="r3d_18", help="r3d_18, tsn_<timm name> or a zoo model (default: %(default)s)")
    ap.add_argument("--inputs", type=lambda s: [parse_input(v) for v in s.split(",")], default="2x8x64,1x8x112",
                    help="comma-separated BxTxS inputs (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=12, help="timed rounds (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up rounds (default: %(default)s)")
    ap.add_argument("--calls", type=int, default=1,
                    help="calls of each variant in a row per round, the fastest kept (default: %(default)s)")
    ap.add_argument("--copies", type=int, default=4,
                    help="copies of each model, timed in turn (memory placement averages out; default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    ap.add_argument("--device", default=None, help="cuda if available, else cpu")
    ap.add_argument("--no-train", action="store_true", help="eval rows only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke test: one tiny input, 1 round; numbers mean nothing")
    ap.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = ap.parse_args(argv)
    if args.quick:
        args.inputs, args.rounds, args.warmup, args.copies = [(2, 4, 32)], 1, 0, 1
    if args.rounds < 1 or args.warmup < 0 or args.threads < 1 or args.copies < 1:
        ap.error("--rounds, --threads and --copies must be >= 1, --warmup >= 0")
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    try:  # called from another script or a test: leave torch's global settings as they were
        return _run(args)
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def _run(args) -> list[dict]:
    device = pick_device(args.device)
    seed_all(args.seed)
    base, adapters = build(args.model)
    base = base.to(device)
    evals = variants(base.eval(), adapters, args.seed)
    evals["plain copy (A/A)"] = copy.deepcopy(base)
    trains = {k: copy.deepcopy(evals[k]).train() for k in ("plain", "plain copy (A/A)", "converted",
                                                           "converted + adapters")}
    for m in evals.values():
        m.eval()
    # Where a model's tensors land in memory moves its speed by several percent (an A/A pair of
    # identical copies can differ by 5-10%), so each variant has --copies copies, used in turn:
    # round r times copy r mod K of every variant.
    eval_copies = [evals] + [copy.deepcopy(evals) for _ in range(args.copies - 1)]
    train_copies = [trains] + [copy.deepcopy(trains) for _ in range(args.copies - 1)]
    args.warmup = max(args.warmup, args.copies)  # every copy runs once before timing starts
    gen = torch.Generator().manual_seed(args.seed)

    def clip(b, t, s):
        return torch.randn(b, 3, t, s, s, generator=gen).to(device)

    fns, groups = {}, []  # groups: (input label, mode, {variant: fns key}, base variant)
    for b, t, s in args.inputs:
        label, x = f"{b}x3x{t}x{s}x{s}", clip(b, t, s)
        target = torch.randint(0, NUM_CLASSES, (b,), generator=gen).to(device)
        def specialize(m, t=t):
            return ff.specialize(m, t).eval()

        specialized = specialize(evals["converted + adapters"])
        with torch.no_grad():
            ref = evals["plain"](x)
            diffs = {k: (m(x) - ref).abs().max().item() for k, m in evals.items()}
            diffs["specialized"] = (specialized(x) - evals["converted + adapters"](x)).abs().max().item()
        print(f"{args.model} {label}: max |output - plain| " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
              + " (adapters are random; specialized is against converted + adapters)", file=sys.stderr)
        names = {}
        for k in ("plain", "plain copy (A/A)", "converted", "converted + adapters", f"specialized({t})"):
            names[k] = f"{label} eval {k}"
            ms = [specialize(c["converted + adapters"]) if k.startswith("specialized") else c[k]
                  for c in eval_copies]
            fns[names[k]] = _in_turn([lambda m=m, x=x: m(x) for m in ms])
        groups.append((label, "eval", names, "plain"))
        if args.no_train:
            continue
        names = {}
        for k in trains:
            names[k] = f"{label} train {k}"
            fns[names[k]] = _in_turn([lambda m=c[k], x=x, y=target: _step(m, lambda: F.cross_entropy(m(x), y))
                                      for c in train_copies])
        groups.append((label, "train", names, "plain"))
    if not args.no_train:
        b, _, s = args.inputs[0]
        model = trains["converted + adapters"]
        clips = {t: clip(b, t, s) for t in FRAME_SETS}
        y = torch.randint(0, NUM_CLASSES, (b,), generator=gen).to(device)
        loss = ff.FFNLoss()
        names = {"forward_multi step": "multi forward_multi"}
        fns[names["forward_multi step"]] = lambda: _step(model, lambda: loss(ff.forward_multi(model, clips), y))
        for t in FRAME_SETS:
            names[f"single-T step, T={t}"] = f"multi single {t}"
            fns[f"multi single {t}"] = (lambda t=t: _step(model, lambda: _single(model, clips[t], y, t)))
        groups.append((f"{b}x3x{{{','.join(map(str, FRAME_SETS))}}}x{s}x{s}", "multi", names, None))

    print(header_line(device, args.threads))
    print(f"{args.model}, {args.rounds} rounds (+{args.warmup} warm-up), every variant once per round in one "
          f"shuffled order{f' (fastest of {args.calls} calls in a row)' if args.calls > 1 else ''}; {len(fns)} "
          f"variants, {args.copies} copies of each used in turn; seed {args.seed}{' [--quick]' if args.quick else ''}")
    start, cpu = time.perf_counter(), {}

    def progress(r: int, _) -> None:
        print(f"  round {r + 1}/{args.rounds}, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    wall = interleaved({k: _no_grad_if_eval(k, f) for k, f in fns.items()}, rounds=args.rounds,
                       warmup=args.warmup, device=device, seed=args.seed, cpu=cpu, on_round=progress,
                       calls=args.calls)
    if device.type != "cpu":
        cpu = {}
    rows = [row for group in groups for row in _rows(group, wall, cpu)]
    headers = ["input", "mode", "variant", "median ms", "IQR ms", "paired ratio", "CPU-time ratio", "target", ""]
    print()
    print(markdown_table(headers, [[r[h] for h in headers[:-1]] + [r["verdict"]] for r in rows], align="lllrrrrrl"))
    print()
    print("paired ratio = median over rounds of variant / base timed in the same round (base: plain; for the "
          "multi-frame step, the sum of the 3 single-T steps). CPU-time ratio = the same in process CPU time. "
          "MISS* = missed by less than the A/A row of that input and mode is off from 1: within noise.")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    if args.csv:
        write_csv(args.csv, headers[:-1] + ["verdict"], [[r[h] for h in headers[:-1]] + [r["verdict"]] for r in rows])
        print(f"wrote {args.csv}")
    return rows


def _in_turn(fns):
    """One callable that calls ``fns`` in turn, one per call."""
    turn = itertools.cycle(fns)
    return lambda: next(turn)()


def _step(model: nn.Module, loss_fn) -> None:
    model.zero_grad(set_to_none=True)
    loss_fn().backward()


def _single(model, x, y, t):
    with ff.frames(model, t):
        return F.cross_entropy(model(x), y)


def _no_grad_if_eval(key: str, fn):
    if " eval " not in key:
        return fn

    def run():
        with torch.no_grad():
            fn()
    return run


def _rows(group, wall, cpu) -> list[dict]:
    label, mode, names, base = group
    if base is None:  # the multi-frame step against the sum of the single-T steps
        singles = [k for k in names if k.startswith("single")]
        summed = "3 single-T steps (sum)"
        wall[summed] = [sum(v) for v in zip(*(wall[names[k]] for k in singles))]
        if cpu:
            cpu[summed] = [sum(v) for v in zip(*(cpu[names[k]] for k in singles))]
        names = {**{k: names[k] for k in singles}, summed: summed, "forward_multi step": names["forward_multi step"]}
        base = summed
    noise = None
    if "plain copy (A/A)" in names:
        aa, p = wall[names["plain copy (A/A)"]], wall[names["plain"]]
        noise = abs(median(paired_ratios(aa, p)) - 1)
    rows = []
    for k, key in names.items():
        s, c = wall[key], cpu.get(key)
        lo, hi = iqr(s)
        compared = k != base and not k.startswith("single")
        ratio = median(paired_ratios(s, wall[names[base]])) if compared else None
        cpu_ratio = median(paired_ratios(c, cpu[names[base]])) if compared and c else None
        target = TARGETS.get((mode, k.split("(")[0]))
        verdict = ""
        if target and ratio is not None:
            verdict = "PASS" if ratio <= target else ("MISS*" if noise is not None and noise >= ratio - 1 else "MISS")
        rows.append({"input": label, "mode": mode, "variant": k, "median ms": ms(median(s)),
                     "IQR ms": f"{ms(lo)}-{ms(hi)}", "paired ratio": "1 (base)" if k == base else (
                         f"{ratio:.3f}" if ratio is not None else ""),
                     "CPU-time ratio": f"{cpu_ratio:.3f}" if cpu_ratio is not None else "",
                     "target": f"<= {target:.2f}" if target else "", "verdict": verdict, "ratio": ratio})
    return rows


if __name__ == "__main__":
    main()
