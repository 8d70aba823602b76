"""What does frameflex cost at run time? Interleaved timing of one model in four forms.

Inference (eval mode, ``torch.no_grad``, eager), per model and frame count T:

  (a) plain         the model as built
  (a') plain copy   a second copy of (a): an A/A control, its ratio is the noise floor
  (b) converted     ``ff.convert(model, [4, 8, 16], time_dim=2)`` (FrameNorm, no adapters)
  (c) + adapters    ``ff.convert(..., adapters="auto")`` (weight-alteration adapters)
  (d) specialized   ``ff.specialize((c), T)``: adapters folded, a plain module again

Training (train mode, the adapters model of (c), forward + loss + backward):

  forward_multi step  ``ff.forward_multi(model, {4: x4, 8: x8, 16: x16})`` + ``ff.FFNLoss`` + backward
  3 single-T steps    for each T: ``with ff.frames(model, T)``: forward + cross-entropy + backward
                      (timed one by one, interleaved with the rest, summed per round)

Each round times every variant once in a fresh shuffled order (warm-up rounds
first, discarded), so slow drift and other jobs on the machine hit all variants
alike. The table reports wall-clock medians, the median of per-round (paired)
ratios (the PASS/MISS basis), the ratio of medians, and the ratio in CPU time.
Targets: converted <= 1.02x plain, specialized <= 1.01x plain, multi-frame step
<= 1.02x the three single steps.

Run (from the repository root):

    python benchmarks/overhead.py                      # r3d_18 and TSN-ResNet50: 20 rounds, 10 for training
    python benchmarks/overhead.py --quick              # smoke test, < 1 minute
    python benchmarks/overhead.py --models r3d_18 --frames 8,16 --rounds 30 --csv overhead.csv

OMP_WAIT_POLICY defaults to PASSIVE here: with other jobs on the cores, OpenMP's
spinning threads make 2-thread timings swing 10-100x. Run with OMP_WAIT_POLICY=ACTIVE
to time torch's default on an otherwise idle machine.

Models: ``r3d_18`` (torchvision, input (B, 3, T, 112, 112)) and ``tsn_<timm name>``
(a timm 2D model on (B*T, 3, S, S), logits averaged over T; default S=112).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

# With other jobs on the cores, OpenMP's default spin-waiting makes a 2-thread forward
# swing 10-100x (measured here: 10 ms idle, 50-1600 ms loaded); sleeping workers keep
# it within ~1.5x. Must be set before torch loads OpenMP; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import frameflex as ff  # noqa: E402
from _timing import (  # noqa: E402
    header_line, interleaved, iqr, markdown_table, median, ms, paired_ratios, pick_device,
    seed_all, write_csv,
)

FRAME_SETS = (4, 8, 16)
TARGETS = {"converted": 1.02, "specialized": 1.01, "multi": 1.02}
NUM_CLASSES = 400


class TSN(nn.Module):
    """A 2D image model used on video TSN-style: frames folded into the batch, logits averaged."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        y = self.backbone(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.view(b, t, -1).mean(1)


def build(name: str) -> tuple[nn.Module, int]:
    """(model, default spatial size) for a --models entry."""
    if name == "r3d_18":
        import torchvision
        return torchvision.models.video.r3d_18(weights=None, num_classes=NUM_CLASSES), 112
    if name.startswith("tsn_"):
        import timm
        return TSN(timm.create_model(name[4:], pretrained=False, num_classes=NUM_CLASSES)), 112
    raise SystemExit(f"unknown model {name!r}: use r3d_18 or tsn_<timm model name>, e.g. tsn_resnet50")


def clip(t: int, size: int, batch: int, device, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(batch, 3, t, size, size, generator=gen).to(device)


def randomize_adapters(model: nn.Module, seed: int) -> int:
    """Small random adapter scales (they start at zero), so specialize() has something to fold."""
    gen = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                for p in m.scales.values():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
                    n += 1
    return n


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def verdict(ratio: float, target: float, noise: float | None = None) -> str:
    """PASS/MISS of a paired ratio against ``target``; a MISS gets a ``*`` when the A/A control (two
    identical models) was off by at least as much, i.e. the miss is within noise."""
    if ratio <= target:
        return "PASS"
    return "MISS*" if noise is not None and noise >= ratio - 1 else "MISS"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def progress(label: str, every: int):
    start = time.perf_counter()

    def on_round(r: int, _times) -> None:
        if (r + 1) % every == 0:
            log(f"  {label}: round {r + 1} done, {time.perf_counter() - start:.0f} s")
    return on_round


HEADERS = ["model", "mode", "variant", "median ms", "IQR ms", "CPU ms", "paired ratio", "ratio (medians)",
           "CPU ratio", "target", ""]
CSV_HEADERS = ["model", "mode", "variant", "rounds", "median_ms", "q25_ms", "q75_ms", "cpu_median_ms",
               "paired_ratio", "ratio", "cpu_ratio", "target", "verdict"]


def add_rows(rows, csv_rows, model, mode, wall, cpu, base, targets, noise=None, parts=()):
    """One table row per variant of ``wall`` ({variant: [s]}), ratios against ``base``.

    ``cpu`` ({variant: [s]}, may be empty) gives the CPU-time columns; ``targets``
    maps a variant to its ratio target; ``parts`` are variants shown without ratios.
    """
    wb, cb = wall[base], cpu.get(base)
    for key, s in wall.items():
        c = cpu.get(key)
        lo, hi = iqr(s)
        show = key != base and key not in parts
        ratio = median(s) / median(wb) if show else None
        pr = median(paired_ratios(s, wb)) if show else None
        cr = median(c) / median(cb) if show and c and cb else None
        target = targets.get(key)
        v = verdict(pr, target, noise) if target and pr is not None else ""
        rows.append([model, mode, key, ms(median(s)), f"{ms(lo)}-{ms(hi)}", ms(median(c)) if c else "",
                     "1 (base)" if key == base else (f"{pr:.3f}" if show else ""),
                     f"{ratio:.3f}" if ratio is not None else "", f"{cr:.3f}" if cr is not None else "",
                     f"<= {target:.2f}" if target else "", v])
        csv_rows.append([model, mode, key, len(s), median(s) * 1e3, lo * 1e3, hi * 1e3,
                         median(c) * 1e3 if c else "", pr if pr is not None else (1.0 if key == base else ""),
                         ratio if ratio is not None else "", cr if cr is not None else "", target or "", v])


def bench_inference(name, args, device, rows, csv_rows):
    for t in args.frames:
        seed_all(args.seed)
        base, size = build(name)
        size = args.size or size
        base = base.to(device).eval()
        plain = base
        control = copy.deepcopy(base)
        converted = ff.convert(base, FRAME_SETS, time_dim=2, inplace=False)
        adapted = ff.convert(base, FRAME_SETS, adapters="auto", time_dim=2, inplace=False)
        n_adapt = sum(1 for m in adapted.modules() if isinstance(m, ff.FrameScale))
        gen = torch.Generator().manual_seed(args.seed)
        x = clip(t, size, args.batch, device, gen)

        with torch.no_grad():  # sanity: what is timed computes what it should
            ref = plain(x)
            d_conv = max_diff(converted(x), ref)
            d_adapt0 = max_diff(adapted(x), ref)
            randomize_adapters(adapted, args.seed)
            specialized = ff.specialize(adapted, t).eval()
            d_spec = max_diff(specialized(x), adapted(x))  # also: `adapted` still runs after specialize
        log(f"{name} T={t} input {tuple(x.shape)}: {n_adapt} adapters; max|diff| converted-plain {d_conv:.1e}, "
            f"adapters(0)-plain {d_adapt0:.1e}, specialized-adapters {d_spec:.1e}")

        spec_key = f"specialized({t})"
        variants = {"plain": plain, "plain copy (A/A)": control, "converted": converted,
                    "converted + adapters": adapted, spec_key: specialized}
        if args.no_control:
            del variants["plain copy (A/A)"]

        def runner(m):
            def f():
                with torch.no_grad():
                    m(x)
            return f

        cpu: dict[str, list[float]] = {}
        wall = interleaved({k: runner(m) for k, m in variants.items()}, rounds=args.rounds,
                           warmup=args.warmup, device=device, seed=args.seed, cpu=cpu,
                           on_round=progress(f"{name} T={t} inference", max(1, args.rounds // 4)))
        if device.type != "cpu":
            cpu = {}
        p, aa = wall["plain"], wall.get("plain copy (A/A)")
        noise = (max(abs(median(aa) / median(p) - 1), abs(median(paired_ratios(aa, p)) - 1))
                 if aa is not None else None)
        add_rows(rows, csv_rows, name, f"eval T={t}", wall, cpu, "plain",
                 {"converted": TARGETS["converted"], spec_key: TARGETS["specialized"]}, noise)


def bench_training(name, args, device, rows, csv_rows):
    seed_all(args.seed)
    base, size = build(name)
    size = args.train_size or args.size or size
    model = ff.convert(base.to(device), FRAME_SETS, adapters="auto", time_dim=2).train()
    gen = torch.Generator().manual_seed(args.seed)
    clips = {t: clip(t, size, args.train_batch, device, gen) for t in FRAME_SETS}
    target = torch.randint(0, NUM_CLASSES, (args.train_batch,), generator=gen).to(device)
    loss_fn = ff.FFNLoss()

    def multi_step():
        model.zero_grad(set_to_none=True)
        loss_fn(ff.forward_multi(model, clips), target).backward()

    def single_step(t):
        def f():
            model.zero_grad(set_to_none=True)
            with ff.frames(model, t):
                F.cross_entropy(model(clips[t]), target).backward()
        return f

    multi_key = f"forward_multi {{{','.join(map(str, FRAME_SETS))}}} step"
    single_keys = {t: f"single-T step, T={t}" for t in FRAME_SETS}
    fns = {multi_key: multi_step, **{single_keys[t]: single_step(t) for t in FRAME_SETS}}
    rounds = args.train_rounds or max(5, args.rounds // 2)
    log(f"{name} training: clips {[tuple(c.shape) for c in clips.values()]}, {rounds} rounds")
    cpu: dict[str, list[float]] = {}
    samples = interleaved(fns, rounds=rounds, warmup=min(args.warmup, 2), device=device, seed=args.seed + 1,
                          cpu=cpu, on_round=progress(f"{name} training", max(1, rounds // 4)))
    sum_key = f"{len(FRAME_SETS)} single-T steps (sum)"
    wall = {single_keys[t]: samples[single_keys[t]] for t in FRAME_SETS}
    wall[sum_key] = [sum(v) for v in zip(*wall.values())]
    wall[multi_key] = samples[multi_key]
    if device.type == "cpu":
        cpu[sum_key] = [sum(v) for v in zip(*(cpu[single_keys[t]] for t in FRAME_SETS))]
    else:
        cpu = {}
    add_rows(rows, csv_rows, name, "train", wall, cpu, sum_key, {multi_key: TARGETS["multi"]},
             parts=set(single_keys.values()))


def parse_ints(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints such as 8 or 8,16, got {text!r}")
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return vals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="r3d_18,tsn_resnet50",
                    help="comma-separated: r3d_18, tsn_<timm name> (default: %(default)s)")
    ap.add_argument("--frames", type=parse_ints, default=[8], help="inference frame count(s) T, e.g. 8 or 4,8,16")
    ap.add_argument("--rounds", type=int, default=20, help="timed rounds (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up rounds (default: %(default)s)")
    ap.add_argument("--train-rounds", type=int, default=None, help="timed rounds for training (default: max(5, rounds // 2); a step is ~10 forwards)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    ap.add_argument("--device", default=None, help="cuda if available, else cpu")
    ap.add_argument("--size", type=int, default=None, help="spatial size S of the inputs (default: per model, 112)")
    ap.add_argument("--train-size", type=int, default=None, help="spatial size for training (default: --size)")
    ap.add_argument("--batch", type=int, default=1, help="inference batch size (default: %(default)s)")
    ap.add_argument("--train-batch", type=int, default=1, help="training batch size (default: %(default)s)")
    ap.add_argument("--no-train", action="store_true", help="skip the training-step comparison")
    ap.add_argument("--no-control", action="store_true", help="skip the A/A plain-copy control")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 3 rounds, 1 warm-up, small inputs (< 1 min); numbers are not meaningful")
    ap.add_argument("--csv", default=None, help="also write the results to this CSV file")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.warmup = 3, 1
        args.train_rounds = 1
        args.size = args.size or 32
        args.train_size = args.train_size or 32
        if args.models == ap.get_default("models"):
            args.models = "r3d_18,tsn_resnet18"
    if args.rounds < 1 or args.warmup < 0 or args.threads < 1:
        ap.error("--rounds and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    device = pick_device(args.device)
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    wall = time.perf_counter()
    print(header_line(device, args.threads))
    train = "no training" if args.no_train else f"training rounds {args.train_rounds or max(5, args.rounds // 2)}"
    print(f"rounds {args.rounds} (+{args.warmup} warm-up), {train}, frame_sets {list(FRAME_SETS)}, batch {args.batch}, "
          f"seed {args.seed}, models {models}{' [--quick]' if args.quick else ''}")
    rows: list[list[str]] = []
    csv_rows: list[list] = []
    for name in models:
        bench_inference(name, args, device, rows, csv_rows)
        if not args.no_train:
            bench_training(name, args, device, rows, csv_rows)

    print()
    print(markdown_table(HEADERS, rows, align="lllrrrrrrrl"))
    print()
    print("median/IQR: wall-clock ms over rounds. paired ratio = median over rounds of variant/base timed in the "
          "same round, the PASS/MISS basis (robust when other jobs make the times bimodal); ratio (medians) = "
          "median(variant) / median(base); CPU ratio = the same in process CPU time (all threads), which "
          "other jobs disturb far less than wall time (CPU device only).")
    print("The A/A row (a second copy of the plain model) shows how far 1.000 moves from noise alone; "
          "MISS* = missed, but by less than the A/A row is off, so not distinguishable from noise.")
    print(f"Targets: converted <= {TARGETS['converted']}x plain, specialized <= {TARGETS['specialized']}x plain, "
          f"forward_multi step <= {TARGETS['multi']}x the 3 single-T steps.")
    print(f"wall time {time.perf_counter() - wall:.0f} s")
    if args.csv:
        write_csv(args.csv, CSV_HEADERS, csv_rows)
        print(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
