"""The GPU check: CUDA-only checks, zoo throughput and memory, overhead.py's ratios.

One command on a CUDA machine, sized for < 8 min on one H100/H200 (``--budget``, default
420 s, bounds the whole run: compiled rows come last, each in a child process, and one
still compiling at the budget is stopped and reported as such):

    python benchmarks/gpu.py                        # also writes benchmarks/results/gpu.md
    python benchmarks/gpu.py --out gpu.md --budget 300
    python benchmarks/gpu.py --device cpu --tiny    # smoke test at tiny sizes (the tests run it)

1. Checks (CUDA only; elsewhere skipped, saying why): NCCL process-group init and
   all-reduce; a forward_multi + FFNLoss training step under autocast bf16, and fp16 with
   ``GradScaler``; SyncBatchNorm across 2 processes when there are 2 GPUs (each branch's
   running statistics equal on both ranks although each saw different clips).
2. Throughput: clips/s of inference (batch B, each frame count) and of a training step
   (``ff.forward_multi`` on all frame counts + ``ff.FFNLoss`` + backward) for tsm_r50,
   slowfast_r50, uniformer_s and a converted transformers VideoMAE (base config; skipped
   if transformers is missing), eager and ``torch.compile``, fp32 and bf16 autocast, and
   channels_last for the CNNs; peak memory of the training step.
3. ``benchmarks/overhead.py``'s ratios on this device.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable

# With other jobs on the cores, spinning OpenMP threads slow CPU runs 10-100x; set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # run from a checkout without installing (last: never shadow tests' conftest)

import frameflex as ff  # noqa: E402
from _timing import header_line, markdown_table, pick_device, sync  # noqa: E402

MIN_COMPILE_S = 45  # a compiled row is started only if this much of the budget is left


def videomae(num_classes: int, frames: int, size: int, tiny: bool) -> nn.Module:
    """transformers' VideoMAE classifier, base config (tiny: hidden 64, 2 layers, patch 8)."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    kw = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
              patch_size=8) if tiny else {}
    cfg = VideoMAEConfig(image_size=size, num_frames=frames, tubelet_size=2, num_labels=num_classes,
                         use_mean_pooling=True, **kw)
    return VideoMAEForVideoClassification(cfg)


@dataclasses.dataclass
class Row:
    name: str
    make: Callable[[], "nn.Module | str"]  # the converted model, or why the row is skipped
    sets: tuple[int, ...]
    batch: int
    size: int
    cnn: bool  # channels_last rows too
    btchw: bool = False  # input (B, T, C, H, W), as transformers' pixel_values

    def clip(self, t: int, g: torch.Generator) -> torch.Tensor:
        x = torch.randn(self.batch, 3, t, self.size, self.size, generator=g)
        return x.transpose(1, 2).contiguous() if self.btchw else x


def models(tiny: bool) -> list[Row]:
    def zoo(name, sets, **kw):
        def make():
            spec = ff.get_spec(name)
            return ff.convert(ff.create_model(name, num_classes=174, **kw), sets, adapters=spec.adapters, time_dim=2)
        return make

    def mae(sets, size):
        def make():
            try:
                import transformers  # noqa: F401
            except ImportError:
                return "skipped: transformers is not installed (pip install transformers)"
            return ff.convert(videomae(174, max(sets), size, tiny), sets, adapters="auto")
        return make

    if tiny:
        return [Row("tsm_tiny", zoo("tsm_tiny", (2, 4)), (2, 4), 2, 32, True),
                Row("slowfast_r50 (width 8)", zoo("slowfast_r50", (4, 8), width=8), (4, 8), 2, 32, True),
                Row("uniformer_s (narrow)", zoo("uniformer_s", (2, 4), embed_dim=(16, 32, 64, 64), head_dim=32),
                    (2, 4), 2, 32, False),
                Row("videomae (tiny)", mae((2, 4), 32), (2, 4), 2, 32, False, btchw=True)]
    return [Row("tsm_r50", zoo("tsm_r50", (4, 8, 16)), (4, 8, 16), 16, 224, True),
            Row("slowfast_r50", zoo("slowfast_r50", (16, 32, 64)), (16, 32, 64), 8, 224, True),
            Row("uniformer_s", zoo("uniformer_s", (4, 8, 16)), (4, 8, 16), 16, 224, False),
            Row("videomae_base", mae((4, 8, 16), 224), (4, 8, 16), 8, 224, False, btchw=True)]


# 1. checks ------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_nccl() -> str:
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        x = torch.arange(4.0, device="cuda")
        dist.all_reduce(x)
        torch.cuda.synchronize()
        assert torch.equal(x.cpu(), torch.arange(4.0)), x
    finally:
        dist.destroy_process_group()
    version = torch.cuda.nccl.version()
    return f"PASS (NCCL {'.'.join(map(str, version)) if isinstance(version, tuple) else version})"


def _small_model(device) -> nn.Module:
    torch.manual_seed(0)
    return ff.convert(ff.create_model("tsm_tiny", num_classes=10), (4, 8), adapters=ff.get_spec("tsm_tiny").adapters,
                      time_dim=2).to(device).train()


def check_amp(dtype: torch.dtype) -> str:
    device = torch.device("cuda")
    model = _small_model(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    g = torch.Generator().manual_seed(0)
    clips = {t: torch.randn(4, 3, t, 32, 32, generator=g).to(device) for t in (4, 8)}
    target = torch.randint(0, 10, (4,), generator=g).to(device)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.autocast("cuda", dtype=dtype):
        outs = ff.forward_multi(model, clips)
        loss = ff.FFNLoss()(outs, target)
    assert all(o.dtype == dtype for o in outs.values()), {t: o.dtype for t, o in outs.items()}
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.isfinite(loss), loss
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert any(".scales." in n for n in moved), "no adapter was updated"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    return f"PASS (loss {loss.item():.3f}{f', scale {scaler.get_scale():.0f}' if scaler.is_enabled() else ''})"


def _syncbn_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(_small_model(torch.device("cuda", rank)))
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=[rank])
        g = torch.Generator().manual_seed(rank)  # different clips on each rank
        clips = {t: (torch.randn(2, 3, t, 32, 32, generator=g) + rank).cuda(rank) for t in (4, 8)}
        ff.FFNLoss()(ff.forward_multi(ddp, clips), torch.tensor([0, 1]).cuda(rank)).backward()
        stats = {k: v.cpu() for k, v in model.state_dict().items() if "running_mean" in k}
        torch.save(stats, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def check_syncbn() -> str:
    if torch.cuda.device_count() < 2:
        return f"skipped: needs 2 GPUs, this machine has {torch.cuda.device_count()}"
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_syncbn_worker, args=(2, _free_port(), f"{tmp}/stats"), nprocs=2, join=True)
        a, b = (torch.load(f"{tmp}/stats.{r}", weights_only=True) for r in range(2))
    assert a and all(torch.equal(a[k], b[k]) for k in a), "running statistics differ between ranks"
    assert any(a[k].abs().sum() > 0 for k in a), "running statistics did not move"
    return f"PASS ({len(a)} branch running means equal on both ranks)"


def run_checks(device: torch.device) -> list[list[str]]:
    checks = [("NCCL init + all_reduce", check_nccl), ("AMP bf16 forward_multi step", lambda: check_amp(torch.bfloat16)),
              ("AMP fp16 + GradScaler step", lambda: check_amp(torch.float16)),
              ("SyncBatchNorm, 2 processes", check_syncbn)]
    rows = []
    for name, fn in checks:
        if device.type != "cuda":
            rows.append([name, f"skipped: needs CUDA (device is {device.type})"])
            continue
        try:
            rows.append([name, fn()])
        except Exception as e:  # a failed check is reported, the rest still run
            traceback.print_exc()
            rows.append([name, f"FAIL: {type(e).__name__}: {e}".splitlines()[0]])
    return rows


# 2. throughput ----------------------------------------------------------------------------

def _timed(fn, device, warmup: int, repeats: int) -> float:
    """Seconds per call: ``warmup`` untimed calls, then the mean of ``repeats``."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeats


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.dim())
    return t.contiguous(memory_format=fmt) if fmt is not None else t


def throughput(model: nn.Module, spec: Row, device, dtype, compiled: bool, channels_last: bool,
               warmup: int, repeats: int, backend: str) -> dict:
    """clips/s of inference at each frame count and of one training step, and its peak memory."""
    if channels_last:
        model._apply(_channels_last)  # 4D weights (TSM's 2D convs) and 5D ones (3D convs)
    net = torch.compile(model, backend=backend) if compiled else model
    amp = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    g = torch.Generator().manual_seed(0)
    clips = {t: spec.clip(t, g).to(device) for t in spec.sets}
    clips = {t: _channels_last(x) if channels_last else x for t, x in clips.items()}
    target = torch.randint(0, 174, (spec.batch,), generator=g).to(device)
    loss_fn = ff.FFNLoss()
    row = {}
    model.eval()
    with torch.no_grad(), amp:
        for t in spec.sets:
            row[t] = spec.batch / _timed(lambda t=t: net(clips[t]), device, warmup, repeats)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        with amp:
            loss = loss_fn(ff.forward_multi(net, clips), target)
        loss.backward()

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    row["train"] = spec.batch / _timed(step, device, warmup, repeats)
    row["peak"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    model.zero_grad(set_to_none=True)
    if channels_last:
        model._apply(lambda t: t.contiguous())
    return row


CONFIGS = [(False, "float32", False), (False, "bfloat16", False), (False, "bfloat16", True),
           (True, "bfloat16", False), (True, "float32", False), (True, "bfloat16", True)]


def _measure(spec: Row, config, model, args, device) -> list[str]:
    """The cells of one row: inference clips/s per frame count, training clips/s, peak memory."""
    compiled, dtype, channels_last = config
    r = throughput(model, spec, device, getattr(torch, dtype), compiled, channels_last, args.warmup, args.repeats,
                   args.backend)
    return [", ".join(f"{t}f {r[t]:.1f}" for t in spec.sets), f"{r['train']:.1f}",
            "" if r["peak"] is None else f"{r['peak']:.1f}"]


def _compiled_row(i: int, config, args, deadline: float) -> list[str]:
    """A compiled row in a child process, killed at the deadline: compile time is hard to foresee."""
    left = deadline - time.perf_counter()
    if left < MIN_COMPILE_S:
        return [f"skipped: time budget (--budget {args.budget:.0f} s) spent"]
    cmd = [sys.executable, os.path.abspath(__file__), "--row", json.dumps([i, config]), "--device", str(args.device),
           "--warmup", str(args.warmup), "--repeats", str(args.repeats)] + (["--tiny"] if args.tiny else [])
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=left)
    except subprocess.TimeoutExpired:
        return [f"skipped: not done within the time budget (--budget {args.budget:.0f} s)"]
    cells = [line[4:] for line in done.stdout.splitlines() if line.startswith("ROW ")]
    if done.returncode or not cells:
        sys.stderr.write(done.stderr)
        return [f"FAIL: {(done.stderr.strip().splitlines() or ['exit ' + str(done.returncode)])[-1]}"]
    return json.loads(cells[-1])


def run_throughput(device, args, deadline: float, compiled: bool) -> list[list[str]]:
    """Rows of the eager configs (in this process, model by model) or of the compiled ones (one
    child process each, config by config: every model's bf16 row before any fp32 one)."""
    specs = list(enumerate(models(args.tiny)))
    configs = [c for c in CONFIGS if c[0] == compiled]

    def keep(i: int, config) -> bool:
        if args.tiny:  # every path once: bf16, channels_last and compile on the first model only
            return (i == 0 and not compiled) or (config[1:] == ("float32", False) and (i == 0 or not compiled))
        return not config[2] or specs[i][1].cnn
    order = ([(i, c) for c in configs for i, _ in specs] if compiled else [(i, c) for i, _ in specs for c in configs])
    rows, built = [], {}
    for i, config in order:
        spec = specs[i][1]
        if not keep(i, config):
            continue
        label = [spec.name, "compile" if compiled else "eager", config[1], "yes" if config[2] else "",
                 f"{spec.batch} x {spec.size}px"]
        if compiled:
            rows.append(label + _compiled_row(i, config, args, deadline))
        else:
            try:
                if i not in built:  # one model per spec for its eager rows
                    built.clear()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    built[i] = spec.make()
                    if not isinstance(built[i], str):
                        built[i] = built[i].to(device)
                model = built[i]
                rows.append(label + ([model] if isinstance(model, str) else _measure(spec, config, model, args, device)))
            except Exception as e:  # report the row, go on with the others
                traceback.print_exc()
                rows.append(label + [f"FAIL: {type(e).__name__}: {e}".splitlines()[0]])
        print(f"  {' | '.join(rows[-1])}", file=sys.stderr, flush=True)
    return [r + [""] * (len(HEADERS) - len(r)) for r in rows]


HEADERS = ["model", "mode", "dtype", "channels_last", "batch x size", "inference clips/s per frame count",
           "train step clips/s (all frame counts)", "train peak memory GiB"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cuda if available, else cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny models and inputs, 1 repeat (a smoke test)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "gpu.md"), help="the tables go here too")
    ap.add_argument("--budget", type=float, default=420,
                    help="seconds for the whole run; compiled rows still running then are stopped (default 420)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed calls per measurement (default 3; tiny 1)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default 10; tiny 1)")
    ap.add_argument("--no-compile", action="store_true", help="eager rows only")
    ap.add_argument("--no-overhead", action="store_true", help="skip benchmarks/overhead.py's ratios")
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)  # internal: one compiled row, in a child
    args = ap.parse_args(argv)
    start = time.perf_counter()
    args.device = device = pick_device(args.device)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 3)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.tiny else 10)
    args.backend = "inductor" if device.type == "cuda" and not args.tiny else "eager"  # eager: no C++ toolchain
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32
    limit = torch._dynamo.config.cache_size_limit
    torch._dynamo.config.cache_size_limit = max(limit, 64)  # frame counts x modes
    try:  # called from a test: leave the global setting as it was
        return _run(args, start)
    finally:
        torch._dynamo.config.cache_size_limit = limit


def _run(args, start: float) -> int:
    device = args.device
    if args.row is not None:
        i, config = json.loads(args.row)
        spec = models(args.tiny)[i]
        print("ROW " + json.dumps(_measure(spec, tuple(config), spec.make().to(device), args, device)), flush=True)
        return 0
    deadline = start + args.budget
    lines = [header_line(device), ""]

    def section(title: str, note: str, table: str) -> None:
        lines.extend([f"## {title}", ""] + ([note, ""] if note else []) + [table, ""])
        print("\n".join(lines[-4:]), flush=True)

    checks = run_checks(device)
    section("CUDA checks", "", markdown_table(["check", "result"], checks, align="ll"))
    note = (f"{'tiny models, ' if args.tiny else ''}clips/s = batch / mean seconds per call over {args.repeats} "
            f"calls after {args.warmup} warm-up; bf16 = autocast; a train step runs every frame count "
            "(forward_multi + FFNLoss + backward)")
    rows = run_throughput(device, args, deadline, compiled=False)
    section("Throughput, eager", note, markdown_table(HEADERS, rows, align="lllllrrr"))
    if not args.no_overhead:
        import runpy
        overhead = runpy.run_path(os.path.join(HERE, "overhead.py"))["main"]
        o_args = (["--quick", "--model", "tsm_tiny"] if args.tiny
                  else ["--inputs", "2x8x64,1x8x112,16x8x112", "--rounds", "20"]) + ["--device", str(device)]
        keys = ["input", "mode", "variant", "median ms", "paired ratio", "target", "verdict"]
        o_rows = [[r[k] for k in keys] for r in overhead(o_args)]
        section("Overhead ratios", f"`python benchmarks/overhead.py {' '.join(o_args)}`",
                markdown_table(keys, o_rows, align="lllrrrl"))
    if not args.no_compile:
        c_rows = run_throughput(device, args, deadline, compiled=True)
        section("Throughput, torch.compile", f"backend {args.backend}, one child process per row, stopped at "
                f"the --budget of {args.budget:.0f} s", markdown_table(HEADERS, c_rows, align="lllllrrr"))
        rows += c_rows
    failed = [r for r in checks if r[1].startswith("FAIL")] + [r for r in rows if r[5].startswith("FAIL")]
    lines.append(f"wall time {time.perf_counter() - start:.0f} s; {len(failed)} failed")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(lines[-1])
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
