"""``target.mean``/``target.std``: a pretrained target sees its inputs normalised as it was
trained (the 3D-ResNets Kinetics files: 0-255 pixels minus a mean), the sources keep their own
normalisation, and the run's checkpoint records it so export and predict feed it the same way."""

from __future__ import annotations

import pytest
import torch

from sskt_engine.config import loads_preset
from sskt_engine.data import load_dataset, normalised_for_target
from sskt_engine.errors import UserInputError
from sskt_engine.export import load_run_network
from sskt_engine.trainer import Trainer

PRESET = """\
name: target-norm
target: {arch: tiny_cnn%s}
sources: [{kind: checkpoint, path: "builtin:demo_source.safetensors"}]
data: {dataset: demo, labels_per_class: 2}
method: {name: sskt}
train: {epochs: 1, batch_size: 16, lr: 0.05, schedule: constant, seed: 1, log_every: 1, device: cpu}
"""
KINETICS = ", mean: [0.4501, 0.4225, 0.3901], std: [0.003922, 0.003922, 0.003922]"


def test_the_target_sees_its_own_normalisation_and_the_checkpoint_records_it(tmp_path, monkeypatch):
    config = loads_preset(PRESET % KINETICS)
    data = load_dataset(config.data, config.train.seed)
    target_data = normalised_for_target(data, config.target)
    assert target_data.mean == (0.4501, 0.4225, 0.3901) and target_data.std == (0.003922,) * 3
    assert target_data.train is data.train  # the images themselves are untouched

    import sskt_engine.trainer as trainer_module

    seen: list[torch.Tensor] = []
    real_stream = trainer_module.batch_stream

    def recording_stream(*args, **kwargs):  # every batch the trainer builds for the target
        stream = real_stream(*args, **kwargs)
        real_epoch = stream.epoch

        def epoch(*a, **k):
            for batch in real_epoch(*a, **k):
                seen.append((batch.pixels, batch.images))
                yield batch
        stream.epoch = epoch
        return stream

    monkeypatch.setattr(trainer_module, "batch_stream", recording_stream)
    folder = Trainer(config, tmp_path).run()
    assert folder.summary().epochs_completed == 1
    _, meta, _ = load_run_network(folder, "last")
    assert meta["mean"] == [0.4501, 0.4225, 0.3901] and meta["std"] == [0.003922] * 3
    assert seen
    mean = torch.tensor([0.4501, 0.4225, 0.3901]).view(1, 3, 1, 1)
    for pixels, images in seen:  # the target: 0-255 pixels minus the ActivityNet-style mean
        assert torch.allclose(images, (pixels - mean) / 0.003922, atol=1e-3)
        assert pixels.min() >= 0 and pixels.max() <= 1  # what the sources read: 0-1 pixels as always


def test_without_the_keys_the_dataset_normalisation_stays():
    config = loads_preset(PRESET % "")
    data = load_dataset(config.data, config.train.seed)
    assert normalised_for_target(data, config.target) is data


@pytest.mark.parametrize("extra, key", [(", mean: [0.5, 0.5, 0.5]", "target.std"),
                                        (", mean: [0.5, 0.5, 0.5], std: [1, 0, 1]", "target.std")])
def test_half_or_zero_normalisation_is_one_sentence(extra, key):
    with pytest.raises(UserInputError, match=key.replace(".", r"\.")):
        loads_preset(PRESET % extra)
