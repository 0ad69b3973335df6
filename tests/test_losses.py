"""Each loss against values computed by hand from its formula in METHOD.md."""

from __future__ import annotations

import math

import pytest
import torch

from sskt_engine.losses import (auxiliary_loss, binary_cross_entropy, cross_entropy, kd_kl, soft_cross_entropy,
                                soft_focal)

S = torch.tensor([[2.0, 0.0, -1.0]])  # source logits
Z = torch.tensor([[0.5, 1.0, 0.0]])  # auxiliary-head logits


def _softmax(values, t=1.0):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def test_soft_cross_entropy_by_hand():
    t = 3.0
    p, q = _softmax(S[0].tolist(), t), _softmax(Z[0].tolist(), t)
    expected = t * t * -sum(pi * math.log(qi) for pi, qi in zip(p, q))
    assert soft_cross_entropy(Z, S, t).item() == pytest.approx(expected, rel=1e-6)


def test_kd_is_batch_mean_kl_not_class_mean():
    t = 2.0
    p, q = _softmax(S[0].tolist(), t), _softmax(Z[0].tolist(), t)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    batch = torch.cat([Z, Z]), torch.cat([S, S])
    assert kd_kl(*batch, t).item() == pytest.approx(t * t * kl, rel=1e-6)  # mean over the 2 samples


def test_focal_by_hand():
    p, q = _softmax(S[0].tolist()), _softmax(Z[0].tolist())
    expected = -sum(pi * (1 - qi) ** 2 * math.log(qi) for pi, qi in zip(p, q))
    assert soft_focal(Z, S, 2.0).item() == pytest.approx(expected, rel=1e-6)
    assert auxiliary_loss("focal", Z, S, 3.0, 2.0).item() == pytest.approx(expected, rel=1e-6)


def test_soft_ce_minimum_is_at_the_teachers_distribution():
    z = torch.zeros(1, 3, requires_grad=True)
    opt = torch.optim.SGD([z], lr=5.0)
    for _ in range(300):
        opt.zero_grad()
        soft_cross_entropy(z, S, 1.0).backward()
        opt.step()
    assert torch.allclose(torch.softmax(z, 1), torch.softmax(S, 1), atol=1e-3)


def test_target_losses_ce_and_multilabel_bce():
    logits = torch.tensor([[1.0, 2.0]])
    assert cross_entropy(logits, torch.tensor([1])).item() == pytest.approx(-math.log(_softmax([1, 2])[1]))
    sig = [1 / (1 + math.exp(-v)) for v in (1.0, 2.0)]
    expected = -(math.log(sig[0]) + math.log(1 - sig[1])) / 2
    assert binary_cross_entropy(logits, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(expected, rel=1e-6)
