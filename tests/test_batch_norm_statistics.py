"""Batch-norm statistics recomputed after training (batch_norm_statistics.py)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from napari_unet import TrainConfig, UNet, prepare_sample, train
from napari_unet.unet.batch_norm_statistics import recompute_batch_norm_statistics
from napari_unet.unet.training import BATCH_NORM_TILES


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.5),
        nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4),
    )  # fmt: skip


def _batches(n=3):
    gen = torch.Generator().manual_seed(1)
    # batches with different means, as tiles of different brightness are
    return [torch.randn(2, 2, 9, 8, generator=gen) * 3 + 4 * i for i in range(n)]


def test_running_statistics_are_the_population_statistics_of_the_batches():
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

    # the same statistics by hand: each BatchNorm's input over all pixels of all batches,
    # the first one normalising each batch by its own statistics as in training
    inputs1, inputs2 = [], []
    with torch.no_grad():
        for x in batches:
            h = net[0](x)
            inputs1.append(h)
            h = F.batch_norm(h, None, None, net[1].weight, net[1].bias, training=True)
            inputs2.append(net[4](torch.relu(h)))  # dropout off
    for bn, inputs in ((net[1], inputs1), (net[5], inputs2)):
        everything = torch.cat(inputs)
        torch.testing.assert_close(bn.running_mean, everything.mean((0, 2, 3)))
        torch.testing.assert_close(bn.running_var, everything.var((0, 2, 3), unbiased=True))
    # the batch means differ, so the population variance of the first BatchNorm's input
    # clearly exceeds the mean of its per-batch variances
    per_batch = torch.stack([h.var((0, 2, 3)) for h in inputs1]).mean(0)
    assert (net[1].running_var > 1.5 * per_batch).all()
    # nothing else changed, and the model is ready for prediction
    for key, value in weights.items():
        torch.testing.assert_close(net.state_dict()[key], value)
    assert net[1].momentum == 0.1 and net[5].momentum == 0.1
    assert int(net[1].num_batches_tracked) == 3
    assert not any(m.training for m in net.modules())


def test_unequal_batches_far_from_zero_match_a_float64_reference():
    # per-batch float32 moments merged in float64 (no float64 on Apple MPS): batches of
    # different sizes, a mean of 1e4 and a standard deviation of about 1, where
    # E[x^2] - E[x]^2 in float32 would lose every digit
    bn = nn.BatchNorm2d(3)
    gen = torch.Generator().manual_seed(0)
    batches = [1e4 + k + torch.randn(n, 3, 5, 7, generator=gen) for k, n in enumerate((1, 3, 2))]
    assert recompute_batch_norm_statistics(nn.Sequential(bn), batches) == 3
    everything = torch.cat(batches).double()
    torch.testing.assert_close(bn.running_mean.double(), everything.mean((0, 2, 3)))
    expected = everything.var((0, 2, 3), unbiased=True)
    torch.testing.assert_close(bn.running_var.double(), expected, rtol=1e-3, atol=0)
    assert float(expected.min()) > 1.0  # the batch means differ by 1: more than 1 alone


def test_a_batch_norm_that_no_batch_reaches_keeps_its_statistics():
    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.BatchNorm2d(2), nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    net = TwoBranches()
    with torch.no_grad():
        net.unused.running_mean.fill_(3.0)
        net.unused.running_var.fill_(5.0)
    batches = [torch.randn(2, 2, 4, 4) + 10.0 for _ in range(3)]
    assert recompute_batch_norm_statistics(net, batches) == 3
    torch.testing.assert_close(net.unused.running_mean, torch.full((2,), 3.0))
    torch.testing.assert_close(net.unused.running_var, torch.full((2,), 5.0))
    assert int(net.unused.num_batches_tracked) == 0 and int(net.used.num_batches_tracked) == 3
    expected = torch.cat(batches).mean((0, 2, 3))
    torch.testing.assert_close(net.used.running_mean, expected)


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
    # one count per statistics batch; without: one per training step
    assert counts == ({BATCH_NORM_TILES // 2} if recompute else {6})
    run = model.record.training[-1]
    assert run.config["recompute_batch_norm"] is recompute
    assert run.batch_norm_recomputed == (BATCH_NORM_TILES // 2 if recompute else 0)


def test_a_consumer_that_stops_at_the_last_step_still_gets_them():
    model = UNet(1, 2, depth=1, base_channels=4, padding="same", batch_norm=True)
    config = TrainConfig(steps=3, batch_size=2, tile_size=16, precision="fp32", device="cpu",
                         recompute_batch_norm=True)  # fmt: skip
    run = train(model, [_sample()], config)
    for progress in run:
        if progress.step == progress.steps:
            break  # e.g. save the model now
    counts = {int(m.num_batches_tracked) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert counts == {BATCH_NORM_TILES // 2}
    run.close()
    assert model.record.training[-1].batch_norm_recomputed == BATCH_NORM_TILES // 2


def test_a_failing_statistics_pass_keeps_the_trained_model(monkeypatch):
    import napari_unet.unet.training as training

    def broken(model, batches):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(training, "recompute_batch_norm_statistics", broken)
    model = UNet(1, 2, depth=1, base_channels=4, padding="same", batch_norm=True)
    config = TrainConfig(steps=3, batch_size=2, tile_size=16, precision="fp32", device="cpu",
                         recompute_batch_norm=True)  # fmt: skip
    with pytest.warns(RuntimeWarning, match="not recomputed"):
        losses = [p.loss for p in train(model, [_sample()], config)]
    assert len(losses) == 3
    assert model.record.training[-1].batch_norm_recomputed == 0


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
