"""Train a frame-flexible (FFN) video model: on the CPU, one GPU, or many GPUs through torchrun.

A thin launcher for :mod:`frameflex.training` (the same as ``frameflex train``), so that
``torchrun`` has a script to start. Something-Something V1, TSM-FFN, 8 GPUs:

    torchrun --nproc_per_node 8 examples/train.py --model tsm_r50 --pretrained --frame-sets 4 8 16 \\
        --list sthv1/train_videofolder.txt --val-list sthv1/val_videofolder.txt \\
        --root sthv1/20bn-something-something-v1 --num-classes 174 --batch-size 4 --workers 8 \\
        --out runs/tsm_r50_ffn_sthv1 --resume auto

A smoke test on the CPU with the built-in synthetic motion videos:

    python examples/train.py --model tsm_tiny --synthetic --epochs 2 --batch-size 4 --workers 0
"""
import sys

from frameflex.training.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="examples/train.py"))
