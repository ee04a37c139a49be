"""Batch-norm statistics recomputed after training (batch_norm_statistics.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_unet import TrainConfig, UNet, prepare_sample, train
from napari_unet.batch_norm_statistics import recompute_batch_norm_statistics
from napari_unet.training import BATCH_NORM_TILES


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5),
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4),
    )  # fmt: skip


def _batches(n=3):
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(2, 2, 9, 8, generator=gen) * 3 + 1 for _ in range(n)]


def test_running_statistics_are_the_mean_of_the_batch_statistics():
    net = _net()
    with torch.no_grad():  # make the running statistics something else first
        for bn in (net[1], net[5]):
            bn.running_mean.fill_(7.0)
            bn.running_var.fill_(0.1)
    batches = _batches()
    weights = {
        k: v.clone()
        for k, v in net.state_dict().items()
        if "running" not in k and "num_batches" not in k
    }
    assert recompute_batch_norm_statistics(net, batches) == 3

    # the same statistics by hand: BatchNorm in training mode, dropout off
    means1, vars1, means2, vars2 = [], [], [], []
    with torch.no_grad():
        for x in batches:
            h = net[0](x)
            means1.append(h.mean((0, 2, 3)))
            vars1.append(h.var((0, 2, 3), unbiased=True))
            h = F.batch_norm(h, None, None, net[1].weight, net[1].bias, training=True)
            h = net[4](torch.relu(h))
            means2.append(h.mean((0, 2, 3)))
            vars2.append(h.var((0, 2, 3), unbiased=True))
    torch.testing.assert_close(net[1].running_mean, torch.stack(means1).mean(0))
    torch.testing.assert_close(net[1].running_var, torch.stack(vars1).mean(0))
    torch.testing.assert_close(net[5].running_mean, torch.stack(means2).mean(0))
    torch.testing.assert_close(net[5].running_var, torch.stack(vars2).mean(0))
    # nothing else changed, and the model is ready for prediction
    for key, value in weights.items():
        torch.testing.assert_close(net.state_dict()[key], value)
    assert net[1].momentum == 0.1 and net[5].momentum == 0.1
    assert not any(m.training for m in net.modules())


def test_eval_output_matches_the_batch_it_was_computed_on():
    """With the statistics of one batch, eval mode normalises that batch as training
    mode does (up to BatchNorm's n / (n - 1) variance correction)."""
    net = _net()
    x = _batches(1)[0]
    recompute_batch_norm_statistics(net, [x])
    with torch.no_grad():
        evaluated = net(x)
        for m in (net[1], net[5]):
            m.train()
        in_training_mode = net(x)  # dropout still off
    torch.testing.assert_close(evaluated, in_training_mode, atol=0.05, rtol=0.02)


def test_no_batch_or_a_failing_batch_leaves_the_statistics_alone():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert recompute_batch_norm_statistics(net, []) == 0
    with pytest.raises(RuntimeError):
        recompute_batch_norm_statistics(net, [_batches(1)[0], torch.zeros(2, 5, 9, 8)])
    for key, value in before.items():
        torch.testing.assert_close(net.state_dict()[key], value)
    assert net[1].momentum == 0.1
    assert recompute_batch_norm_statistics(nn.Conv2d(1, 1, 1), [torch.zeros(1, 1, 2, 2)]) == 0


def _sample():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(48, 48)).astype(np.float32)
    labels = np.zeros((48, 48), np.uint8)
    labels[::3] = 1
    labels[10:20, 10:20] = 2
    image[10:20, 10:20] += 3
    return prepare_sample(image, labels, mode="scribbles")


@pytest.mark.parametrize("recompute", [True, False])
def test_train_recomputes_the_statistics_at_the_end(recompute):
    model = UNet(1, 2, depth=1, base_channels=4, padding="same", batch_norm=True)
    config = TrainConfig(steps=6, batch_size=2, tile_size=16, precision="fp32", device="cpu",
                         recompute_batch_norm=recompute)  # fmt: skip
    for _ in train(model, [_sample()], config):
        pass
    counts = {int(m.num_batches_tracked) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    # reset, then one count per statistics batch; without: one per training step
    assert counts == ({BATCH_NORM_TILES // 2} if recompute else {6})
    assert model.metadata["training"][-1]["config"]["recompute_batch_norm"] is recompute


def test_a_cancelled_run_keeps_its_running_statistics():
    model = UNet(1, 2, depth=1, base_channels=4, padding="same", batch_norm=True)
    run = train(model, [_sample()], TrainConfig(steps=50, batch_size=2, tile_size=16,
                                                precision="fp32", device="cpu",
                                                recompute_batch_norm=True))  # fmt: skip
    for progress in run:
        if progress.step == 4:
            break
    run.close()
    counts = {int(m.num_batches_tracked) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert counts == {4}
