"""torch.compile, DDP, SyncBatchNorm and autocast on converted models."""
from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _models import SharedNormNet, clip, randomize_norms
from torch import nn

import frameflex as ff

SETS = (4, 8, 16)


def _tiny(time_dim=2):
    torch.manual_seed(0)
    model = randomize_norms(SharedNormNet())
    return ff.convert(model, SETS, adapters=["stage1.0", "stage2.0", "head"], time_dim=time_dim)


def _perturb_adapters(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, ff.FrameScale):
                for i, p in enumerate(m.scales.values()):
                    p.fill_(0.1 * (i + 1))
    return model


@pytest.mark.parametrize("time_dim", [2, None])
def test_compiled_model_matches_eager_at_each_frame_count(time_dim):
    torch._dynamo.reset()
    model = _perturb_adapters(_tiny(time_dim)).eval()
    compiled = torch.compile(model, backend="aot_eager")
    with torch.no_grad():
        for t in (4, 8, 16, 8):  # switching back must not reuse a stale branch
            x = clip(t, 16)
            with ff.frames(model, t):
                torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=0)


def test_compiled_model_with_inductor():
    torch._dynamo.reset()
    model = _perturb_adapters(_tiny()).eval()
    compiled = torch.compile(model)
    with torch.no_grad():
        for t in (4, 16):
            x = clip(t, 16)
            torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)
    assert ff.frame_sets(compiled) == SETS  # the API sees through OptimizedModule


def test_sync_batchnorm_conversion_keeps_the_branches():
    model = _perturb_adapters(_tiny()).eval()
    x = clip(8, 16)
    with torch.no_grad():
        expected = model(x)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    norm = synced.stage1[1]
    assert isinstance(norm, ff.FrameNorm) and synced.stage2[1] is norm
    assert all(type(b) is nn.SyncBatchNorm for b in norm.branches.values())
    with torch.no_grad():
        torch.testing.assert_close(synced(x), expected)


def test_autocast_runs_in_low_precision_and_matches_the_original():
    torch.manual_seed(0)
    plain = randomize_norms(SharedNormNet()).eval()
    model = ff.convert(plain, SETS, adapters=["stage1.0"], time_dim=2, inplace=False)
    x = clip(8, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = model(x), plain(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, atol=0, rtol=0)


def _ddp_worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = _perturb_adapters(_tiny()).train()
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    loss_fn = ff.FFNLoss()
    for step in range(2):
        clips = {t: clip(t, 16, batch=2, seed=10 * step + rank) for t in SETS}
        loss_fn(ff.forward_multi(ddp, clips), torch.tensor([rank, step])).backward()
        if step == 0:
            torch.save({n: p.grad.clone() for n, p in model.named_parameters()}, f"{out_dir}/grad{rank}.pt")
        opt.step()
        opt.zero_grad()
    torch.save(model.state_dict(), f"{out_dir}/final{rank}.pt")
    dist.destroy_process_group()


def test_ddp_two_gloo_processes_train_with_forward_multi(tmp_path):
    init_file = tempfile.mktemp(dir=tmp_path)
    mp.spawn(_ddp_worker, args=(2, init_file, str(tmp_path)), nprocs=2, join=True)
    load = lambda name: torch.load(tmp_path / name, weights_only=True)  # noqa: E731
    final0, final1 = load("final0.pt"), load("final1.pt")
    for k in final0:  # every parameter and buffer agrees across ranks
        if "running" not in k and "num_batches" not in k:
            torch.testing.assert_close(final0[k], final1[k], msg=k)
    # the synced gradient is the mean of each rank's local gradient
    local = []
    for rank in range(2):
        torch.manual_seed(0)
        model = _perturb_adapters(_tiny()).train()
        clips = {t: clip(t, 16, batch=2, seed=rank) for t in SETS}
        ff.FFNLoss()(ff.forward_multi(model, clips), torch.tensor([rank, 0])).backward()
        local.append({n: p.grad for n, p in model.named_parameters()})
    synced = load("grad0.pt")
    assert torch.equal(synced["head.bias"], load("grad1.pt")["head.bias"])
    for n, g in synced.items():
        torch.testing.assert_close(g, (local[0][n] + local[1][n]) / 2, atol=1e-6, rtol=1e-5, msg=n)
    assert any(k.endswith("scales.4") for k in synced)  # adapters were trained too
