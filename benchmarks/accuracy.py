"""Top-1 / top-5 accuracy per frame count on a real dataset: the FFN paper's evaluation protocol.

The same program as ``frameflex eval`` (both call :func:`frameflex.training.eval_cli.main`):
1 clip per video, TSN segment centres, shorter side 256, centre crop 224, the
arch's normalisation; one column per frame count. Frames are JPEG folders listed
in TSM's format (``frames_dir num_frames label`` per line).

Something-Something V1 with TSM-FFN (published: 42.85 / 48.20 / 50.79 at 4 / 8 / 16):

    # frames and list as TSM prepares them: 20bn-something-something-v1/<id>/00001.jpg ...,
    # val_videofolder.txt from TSM's tools/gen_label_sthv1.py (11522 videos, 174 classes)
    python benchmarks/accuracy.py ffn_tsm_sthv1.pth.tar --arch tsm_r50 \\
        --list something/v1/val_videofolder.txt --root something/v1/20bn-something-something-v1 \\
        --image-tmpl '{:05d}.jpg' --frames 4 8 16 --batch-size 16 --workers 8 --json results/tsm_ffn_sthv1.json

    # frame counts it was not trained at (nearest branch; the paper's Fig. 1 sweep)
    python benchmarks/accuracy.py ffn_tsm_sthv1.pth.tar --arch tsm_r50 --list ... --root ... \\
        --frames 2 4 6 8 10 12 14 16 18 20

    # the baseline trained at 16 frames only (published: 20.60 / 37.36 / 48.55)
    python benchmarks/accuracy.py tsm_sthv1_16f.pth.tar --arch tsm_r50 --list ... --root ... --frames 4 8 16

    # smoke test on the first 200 videos
    python benchmarks/accuracy.py ffn_tsm_sthv1.pth.tar --arch tsm_r50 --list ... --root ... --limit 200

``ffn_tsm_sthv1.pth.tar`` is the released TSM-FFN SSv1 checkpoint (Google Drive id
1_UhRmFoed58XPTqs8evqZspYEGLNWYdv, see the FFN-pytorch README); a folder written by
``frameflex import`` / ``ff.save_pretrained`` or a Hub repo id works in its place
(no ``--arch``). Kinetics frame folders use ``--image-tmpl 'img_{:05d}.jpg'``.
The released TSM-FFN weights were trained with the official code's shift bug (every
branch shifted with 16 segments); frameflex shifts each branch with its own T, so
4- and 8-frame numbers may differ slightly from the published ones.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from frameflex.training.eval_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="benchmarks/accuracy.py"))
