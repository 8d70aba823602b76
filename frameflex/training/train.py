"""``frameflex train``: build the run from a :class:`TrainConfig`, then epochs of train, evaluate, checkpoint, log.

In FFN mode every step runs every frame count of every video through its own
branch and optimises :class:`frameflex.FFNLoss`; with one frame count it is
cross-entropy (the paper's baselines). With ``torchrun`` it runs DDP (gloo on
CPU, nccl on CUDA). ``last.pt`` / ``best.pt`` hold everything a bit-identical
continuation needs and load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ..data import collate_clips
from ..evaluate import format_table
from ..hub import save_pretrained
from ..loss import FFNLoss
from ..models._registry import IMAGENET_MEAN, IMAGENET_STD, get_spec
from .._version import __version__
from . import checkpoint
from .builders import SeededItems, build_datasets, build_model, init_from, one_line
from .config import TrainConfig, UsageError
from .distributed import Procs, rng_state, seed_all, set_rng_state, start_processes
from .loop import MultiClipModel, train_one_epoch, validate
from .recipe import default_recipe, lr_factor, param_groups, recipes

__all__ = ["run"]


def run(cfg: TrainConfig) -> int:
    """Train as ``cfg`` says; returns the exit status (2: bad input, reported as one line).

    Example:
        >>> run(TrainConfig(model="tsm_tiny", synthetic=True, epochs=1, out="runs/smoke"))  # doctest: +SKIP
        0
    """
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    procs: Procs | None = None
    try:
        procs = start_processes(cfg.device)
        return _run(cfg, procs)
    except UsageError as e:
        if procs is None or procs.main:
            print(f"frameflex train: error: {one_line(e)}", file=sys.stderr, flush=True)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _resume_path(resume: str | None, out: Path) -> Path | None:
    if resume == "auto":
        return out / "last.pt" if (out / "last.pt").is_file() else None
    if resume is not None:
        if not Path(resume).is_file():
            raise UsageError(f"--resume: checkpoint not found: {resume}")
        return Path(resume)
    if (out / "last.pt").exists():
        raise UsageError(f"{out} already holds a run (last.pt): pass --resume auto to continue it, "
                         "or choose another --out")
    return None


def _run(cfg: TrainConfig, procs: Procs) -> int:
    say = tqdm.write if procs.main else (lambda *_: None)
    amp = cfg.amp or ("bf16" if procs.device.type == "cuda" else "none")
    if amp == "fp16" and procs.device.type != "cuda":
        raise UsageError("--amp fp16 needs CUDA; use --amp bf16 or none on the CPU")
    if cfg.sync_bn and procs.device.type != "cuda":
        raise UsageError("--sync-bn needs CUDA (torch's SyncBatchNorm runs on GPUs only)")
    out = Path(cfg.out or f"runs/{re.sub(r'[^A-Za-z0-9_.-]', '_', cfg.model.rpartition(':')[2])}")
    try:
        spec = get_spec(cfg.model) if ":" not in cfg.model else None
        known = recipes()
        recipe_name = cfg.recipe or default_recipe(cfg.model) or "tsm"
        if recipe_name not in known:
            raise ValueError(f"--recipe {recipe_name}: unknown; known: {', '.join(known)}")
    except ValueError as e:  # names the zoo's models
        raise UsageError(one_line(e)) from None
    train_frames = ((cfg.frames,) if cfg.frames is not None
                    else tuple(sorted(cfg.frame_sets)) if cfg.frame_sets is not None else spec.frame_sets)
    eval_frames = cfg.eval_frames or train_frames
    overrides = {k: v for k, v in (("epochs", cfg.epochs), ("lr_steps", cfg.lr_steps),
                                   ("warmup_epochs", cfg.warmup_epochs), ("weight_decay", cfg.weight_decay),
                                   ("label_smoothing", cfg.label_smoothing)) if v is not None}
    if cfg.clip_grad is not None:
        overrides["clip_grad"] = cfg.clip_grad or None
    recipe = dataclasses.replace(known[recipe_name], **overrides)
    total_batch = cfg.batch_size * procs.world * cfg.accum_steps
    lr = cfg.lr if cfg.lr is not None else recipe.lr * total_batch / recipe.batch_size

    # ---- data
    input_size = cfg.input_size or (spec.input_size if spec else 224)
    mean, std = (spec.mean, spec.std) if spec else (IMAGENET_MEAN, IMAGENET_STD)
    train_set, val_set, num_classes = build_datasets(cfg, train_frames, eval_frames, input_size, mean, std)
    train_set = SeededItems(train_set, cfg.seed)
    sampler = DistributedSampler(train_set, num_replicas=procs.world, rank=procs.rank, shuffle=True, seed=cfg.seed)
    per_step = cfg.batch_size * cfg.accum_steps
    steps_per_epoch = len(sampler) // per_step
    if steps_per_epoch == 0:
        raise UsageError(f"{len(train_set)} training videos do not fill one step of --batch-size "
                         f"{cfg.batch_size} x {procs.world} processes x --accum-steps {cfg.accum_steps}")

    # ---- model, optimizer, schedule
    resume = _resume_path(cfg.resume, out)
    seed_all(cfg.seed)  # the same initial weights on every rank
    model, arch, builder_kwargs = build_model(cfg, recipe, recipe_name == default_recipe(cfg.model), num_classes,
                                              train_frames if cfg.ffn else None)
    init_report = init_from(model, cfg.init, arch) if cfg.init and not resume else None
    model.to(procs.device)
    if cfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    criterion = FFNLoss(kl_weight=cfg.kl_weight, label_smoothing=recipe.label_smoothing)
    groups = param_groups(model, recipe, lr)
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    else:
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=recipe.betas)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(recipe, s / steps_per_epoch))
    scaler = torch.amp.GradScaler(procs.device.type, enabled=amp == "fp16")
    net: nn.Module = MultiClipModel(model)
    if procs.world > 1:
        net = DistributedDataParallel(net, device_ids=[procs.device.index] if procs.device.type == "cuda" else None,
                                      find_unused_parameters=cfg.find_unused_parameters)

    # What a resume must match (the model, its data, the optimisation), JSON-normalised.
    setup = json.loads(json.dumps({
        "model": cfg.model, "ffn": cfg.ffn, "train_frames": list(train_frames), "num_classes": num_classes,
        "model_config": getattr(model, "frameflex_config", None), "recipe_name": recipe_name,
        "recipe": {k: v for k, v in dataclasses.asdict(recipe).items() if k != "epochs"}, "lr": lr,
        "kl_weight": cfg.kl_weight, "seed": cfg.seed}, default=str))
    config = {**setup, "settings": cfg.to_dict(), "epochs": recipe.epochs, "total_batch": total_batch,
              "world_size": procs.world, "frameflex_version": __version__}
    state = {"epoch": 0, "step_in_epoch": 0, "step": 0, "best_top1": None, "best_epoch": None, "sums": {}}
    saved_rng = None

    if procs.main:
        out.mkdir(parents=True, exist_ok=True)
    procs.barrier()
    with checkpoint.run_lock(out) if procs.main else contextlib.nullcontext():
        if resume is not None:
            saved_rng = _load(resume, model, optimizer, scheduler, scaler, state, setup, config, procs, say)
        if procs.main:  # lines of epochs last.pt does not hold (a kill after the log, before last.pt): redone
            checkpoint.trim_log(out / "log.jsonl", state["epoch"])
        r = recipe
        sched = (f"x0.1 at epochs {list(r.lr_steps)}" if r.schedule == "step"
                 else f"cosine to {lr * r.min_lr / r.lr:.3g}")
        lr_from = "--lr" if cfg.lr is not None else f"{r.lr:g} x {total_batch}/{r.batch_size} videos per step"
        mode = f"FFN at {list(train_frames)} frames" if cfg.ffn else f"one frame count ({train_frames[0]})"
        say(f"{cfg.model} ({'zoo' if arch else 'custom'}), {num_classes} classes, {mode}; "
            f"{len(train_set)} training videos, {procs.world} process(es) on {procs.device}, "
            f"{cfg.batch_size} per process x {cfg.accum_steps} accumulation = {total_batch} per step, "
            f"{steps_per_epoch} steps per epoch\n"
            f"recipe {recipe_name}: {r.optimizer} lr {lr:.4g} ({lr_from}), {sched}"
            f"{f', {r.warmup_epochs:g}-epoch warm-up' if r.warmup_epochs else ''}, "
            f"{r.epochs} epoch{'s' * (r.epochs != 1)}, weight decay {r.weight_decay:g}, amp {amp}")
        if init_report is not None:
            say(init_report.summary(cfg.init))
        if procs.main:
            (out / "args.json").write_text(json.dumps(config, indent=2, default=str) + "\n")

        def save(best: bool = False, record: dict | None = None) -> None:
            """last.pt (and best.pt, and the log line) in the order that keeps them consistent after a kill."""
            rng = procs.gather(rng_state(procs.device))
            if not procs.main:
                return
            ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), **state,
                    "sums": dict(state["sums"]), "rng": rng, "config": config}
            if best:
                checkpoint.atomic_save(ckpt, out / "best.pt")
            if record is not None:
                checkpoint.append_log(out / "log.jsonl", record)
            if best:
                checkpoint.atomic_copy(out / "best.pt", out / "last.pt")
            else:
                checkpoint.atomic_save(ckpt, out / "last.pt")

        def on_step(done: int) -> None:
            state["step"] += 1
            state["step_in_epoch"] = done
            if cfg.save_every and state["step"] % cfg.save_every == 0 and done < steps_per_epoch:
                save()

        # Last thing before the first step, so that setting up the run cannot move the restored RNG.
        # A fresh run (or another world size or batch) seeds per rank: dropout differs between ranks.
        if saved_rng is not None:
            set_rng_state(saved_rng, procs.device)
        else:
            seed_all(cfg.seed * 1_000_003 + 7919 * procs.rank + state["step"])
        result = None
        for epoch in range(state["epoch"], recipe.epochs):
            start = time.perf_counter()
            sampler.set_epoch(epoch)
            train_set.epoch = epoch
            order = list(sampler)[state["step_in_epoch"] * per_step: steps_per_epoch * per_step]
            loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=order, drop_last=True,
                                num_workers=cfg.workers, collate_fn=collate_clips,
                                pin_memory=procs.device.type == "cuda",
                                generator=torch.Generator().manual_seed(cfg.seed + epoch))
            try:  # a frame folder or file named in a list is missing or broken
                train_one_epoch(net, criterion, optimizer, scheduler, loader, procs.device, epoch,
                                accum_steps=cfg.accum_steps, scaler=scaler,
                                autocast_dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp),
                                clip_grad=recipe.clip_grad, sums=state["sums"], first_step=state["step_in_epoch"],
                                on_step=on_step, progress=procs.main and cfg.progress,
                                desc=f"epoch {epoch + 1}/{recipe.epochs}")
                seconds = time.perf_counter() - start
                if val_set is not None:
                    result = validate(model, val_set, eval_frames, procs, cfg.batch_size, cfg.workers,
                                      procs.main and cfg.progress)
            except (FileNotFoundError, OSError) as e:
                raise UsageError(one_line(e)) from None
            keys = sorted(state["sums"])
            totals = dict(zip(keys, procs.sum([state["sums"][k] for k in keys])))
            n = totals.pop("n", 0.0) or 1.0
            skipped = int(totals.pop("skipped", 0.0))
            score = sum(result["top1"].values()) / len(result["top1"]) if result is not None else None
            best = score is not None and (state["best_top1"] is None or score > state["best_top1"])
            state.update(epoch=epoch + 1, step_in_epoch=0, sums={})
            if best:
                state.update(best_top1=score, best_epoch=epoch + 1)
            current_lr = lr * lr_factor(recipe, max(state["step"] - 1, 0) / steps_per_epoch)
            record: dict[str, Any] = {"epoch": epoch + 1, "step": state["step"], "lr": current_lr,
                                      "seconds": round(seconds, 2), "train": {k: v / n for k, v in totals.items()},
                                      "skipped_videos": skipped}
            lines = [f"epoch {epoch + 1}/{recipe.epochs}  step {state['step']}  "
                     + "  ".join(f"{k} {v:.4f}" for k, v in record["train"].items()) + f"  ({seconds:.1f} s)"
                     + (f"  skipped {skipped} unreadable video{'s' * (skipped != 1)}" if skipped else "")]
            if result is not None:
                record["val"] = {"top1": {str(t): v for t, v in result["top1"].items()},
                                 "top5": {str(t): v for t, v in result["top5"].items()},
                                 "count": result["count"], "mean_top1": score}
                record["best_epoch"] = state["best_epoch"]
                lines += [f"validation, {result['count']} videos, mean top-1 {score:.2f}%"
                          + ("  (best so far: best.pt)" if best else ""), format_table(result)]
            save(best=best, record=record)
            say("\n".join(lines))
        if procs.main:
            if state["best_epoch"] is not None:
                say(f"best mean top-1 {state['best_top1']:.2f}% at epoch {state['best_epoch']} ({out / 'best.pt'})")
            # The Hub folder, for zoo and custom models alike; frameflex eval reads it.
            own = {} if arch else {"builder": cfg.model, "builder_kwargs": builder_kwargs}
            folder = save_pretrained(
                model, out / "model", **own, input_size=input_size, mean=list(mean), std=list(std),
                results={"top1": {str(k): round(v, 2) for k, v in result["top1"].items()}} if result else None)
            say(f"final model: {folder} (ff.from_pretrained{'' if arch else ', trust_remote_code=True'}); "
                f"full training state: {out / 'last.pt'}")
    return 0


def _load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
          state: dict[str, Any], setup: dict[str, Any], config: dict[str, Any], procs: Procs, say: Any) -> Any:
    """Restore a run from ``path`` into the given objects; returns this rank's RNG state (or None).

    Refuses a checkpoint of another setup, listing every setting that differs:
    its optimizer and schedule would silently keep the old values. ``--epochs``
    may change: the schedule then continues with the new count.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UsageError(f"--resume {path}: not a frameflex training checkpoint: {one_line(e)}") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "optimizer" not in ckpt:
        raise UsageError(f"--resume {path}: not a frameflex training checkpoint (use --init for weights only)")
    saved = ckpt["config"]
    differ = checkpoint.settings_diff({k: saved.get(k) for k in setup}, setup)
    if differ:
        raise UsageError(f"--resume {path}: the run was trained with other settings: {'; '.join(differ)}; "
                         "give the run's settings to continue it, or another --out for a new run")
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise UsageError(f"--resume {path}: its weights do not fit the model: {one_line(e)}") from None
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt["scaler"] and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    state.update({k: ckpt[k] for k in state})
    state["sums"] = dict(state["sums"])
    same_data = len(ckpt["rng"]) == procs.world and saved["total_batch"] == config["total_batch"]
    say(f"resumed {path}: {state['epoch']} epochs and {state['step_in_epoch']} steps done (step {state['step']})"
        + ("" if same_data else "; another world size or batch: data order and RNG start afresh")
        + (f"; epochs {saved['epochs']} -> {config['epochs']} (applied)" if saved["epochs"] != config["epochs"]
           else ""))
    return ckpt["rng"][procs.rank] if same_data else None
