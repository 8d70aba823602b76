"""The ``frameflex`` command: one function per subcommand, registered in :func:`build_parser`.

Add a subcommand by writing ``_add_NAME(subparsers)`` (its arguments) and
``cmd_NAME(args) -> int`` (what it does), and listing it in ``_SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from . import _checks

__all__ = ["main", "build_parser"]


# --------------------------------------------------------------------------- demo


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a tiny TSM at 16 frames vs with FFN on synthetic motion; print accuracy per frame count",
        description="Train two tiny TSM models on SyntheticActions (14 motion classes) with the same seed and steps: "
        "one at 16 frames only, one with FFN (4/8/16). Prints top-1 at 4/8/16 and unseen frame counts.",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for init, data and sampling (default 0)")
    p.add_argument("--steps", type=_checks.cli_type(_checks.positive_int), default=None, help="optimizer steps per model (default 400; --quick: 12)")
    p.add_argument("--quick", action="store_true", help="a tiny budget (seconds) for smoke tests; numbers mean nothing")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--threads", type=_checks.cli_type(_checks.positive_int), default=None,
                   help="torch CPU threads (default: torch's choice, leaving one core to the data worker)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def cmd_demo(args: argparse.Namespace) -> int:
    import torch

    from frameflex.demo import DemoConfig, run_demo

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    else:
        # One core renders the synthetic videos; more threads than cores makes small ops crawl.
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - 1)))
    kw = dict(seed=args.seed, device=args.device, progress=not args.no_progress)
    if args.steps is not None:
        kw["steps"] = args.steps
    cfg = DemoConfig.quick(**kw) if args.quick else DemoConfig(**kw)
    run_demo(cfg)
    return 0


# --------------------------------------------------------------------------- zoo and Hub


def _add_models(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("models", help="the zoo's models and the catalogue of published FFN checkpoints")


def cmd_models(args: argparse.Namespace) -> int:
    from frameflex.catalogue import catalogue_table
    from frameflex.models._registry import get_spec, list_models

    print("| model | FFN frame counts | input | description |\n|---|---|---|---|")
    for name in list_models():
        spec = get_spec(name)
        print(f"| {name} | {'/'.join(map(str, spec.frame_sets))} | {spec.input_size} | {spec.description} |")
    print("\nPublished checkpoints (Google Drive; the Hub repos exist once someone pushes them):\n")
    print(catalogue_table())
    return 0


def _add_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="GMACs, parameters and latency of a zoo model per frame count")
    p.add_argument("name", help="a zoo model, see `frameflex models`")
    p.add_argument("--latency", action="store_true", help="also time it on this machine (slow for big models)")
    p.add_argument("--device", default="cpu")


def cmd_flops(args: argparse.Namespace) -> int:
    from frameflex.flops import markdown_table, zoo_table

    print("GMACs = multiply-adds per view, batch 1 (what video papers call GFLOPs)\n")
    print(markdown_table(zoo_table(args.name, latency=args.latency, device=args.device)))
    return 0


def _add_import(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn an original checkpoint file into a Hub folder")
    p.add_argument("file", help="an official FFN / TSM / TEA / SlowFast / UniFormer checkpoint")
    p.add_argument("--arch", default=None, help="zoo model name (default: recognised from the keys)")
    p.add_argument("-o", "--output", required=True, help="folder to write config.json, model.safetensors, README.md")
    p.add_argument("--dataset", default=None,
                   help="sthv1, sthv2 or k400 (must fit the file's class count): adds the paper's numbers to the card")
    p.add_argument("--class-names", default=None, help="a UTF-8 text file with one class name per line")
    p.add_argument("--license", default=None, help="the weights' license for the card (default: unknown)")


def cmd_import(args: argparse.Namespace) -> int:
    from frameflex._files import read_text
    from frameflex.catalogue import card_fields
    from frameflex.checkpoints import import_checkpoint
    from frameflex.errors import UsageError
    from frameflex.hub import save_pretrained

    sd = import_checkpoint(args.file, arch=args.arch)
    card = {"source": args.file, "license": args.license}
    if args.dataset is not None:
        try:
            card.update(card_fields(sd.arch, args.dataset, sd.num_classes, sd.frame_sets))
        except ValueError as e:
            raise UsageError(f"--dataset {args.dataset}: {e}") from None
    if args.class_names:
        names = [line.strip() for line in read_text(args.class_names, "class names file").splitlines() if line.strip()]
        if len(names) != sd.num_classes:
            raise UsageError(f"--class-names {args.class_names} has {len(names)} names, the checkpoint has "
                             f"{sd.num_classes} classes")
        card["class_names"] = names
    folder = save_pretrained(sd.create_model(), args.output, **card)
    kind = f"FFN, frame_sets {list(sd.frame_sets)}" if sd.frame_sets else "plain"
    print(f"{args.file}: {sd.arch} ({kind}, {sd.num_classes} classes) -> {folder}")
    return 0


def _add_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="upload a Hub folder (from `frameflex import`) to the Hugging Face Hub")
    p.add_argument("folder")
    p.add_argument("repo_id", help="org/name")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None, help="default: the token of `hf auth login`")


def cmd_push(args: argparse.Namespace) -> int:
    from frameflex import hub

    print(hub.upload_folder(hub.HfApi(token=args.token), args.folder, args.repo_id, private=args.private or None))
    return 0


# --------------------------------------------------------------------------- real data


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from frameflex.training.eval_cli import add_arguments

    add_arguments(sub.add_parser("eval", help="top-1/top-5 per frame count on video files or JPEG frame lists"))


def cmd_eval(args: argparse.Namespace) -> int:
    from frameflex.training.eval_cli import run

    return run(args)


def _add_train(sub: argparse._SubParsersAction) -> None:
    from frameflex.training.cli import add_arguments

    add_arguments(sub.add_parser("train", help="train an FFN model with the official recipes (torchrun-ready)"))


def cmd_train(args: argparse.Namespace) -> int:
    from frameflex.training.cli import run_args

    return run_args(args)


# --------------------------------------------------------------------------- wiring

_SUBCOMMANDS: dict[str, tuple[Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = {
    "demo": (_add_demo, cmd_demo),
    "models": (_add_models, cmd_models),
    "flops": (_add_flops, cmd_flops),
    "import": (_add_import, cmd_import),
    "push": (_add_push, cmd_push),
    "eval": (_add_eval, cmd_eval),
    "train": (_add_train, cmd_train),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``frameflex`` command."""
    from frameflex._version import __version__

    parser = argparse.ArgumentParser(prog="frameflex", description="Frame-flexible video models (FFN, CVPR 2023).")
    parser.add_argument("--version", action="version", version=f"frameflex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add, run) in _SUBCOMMANDS.items():
        add(sub)
        sub.choices[name].set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``frameflex`` / ``python -m frameflex``; returns the exit status.

    Example:
        >>> main(["demo", "--quick", "--no-progress"])  # doctest: +SKIP
        0
    """
    from frameflex.errors import FrameflexError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except FrameflexError as e:
        return _fail(args.command, e)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as e:
        if args.command not in _ONE_LINE_COMMANDS:  # eval and train report their own errors
            raise
        return _fail(args.command, e)


# Thin wrappers over the library: any error is the input's (a file, a name, the network), never a traceback.
_ONE_LINE_COMMANDS = ("models", "flops", "import", "push")


def _fail(command: str, error: BaseException) -> int:
    text = " ".join(line.strip() for line in str(error).strip().splitlines() if line.strip())
    print(f"frameflex {command}: error: {text or type(error).__name__}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
