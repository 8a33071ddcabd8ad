"""experiments/distill.py on the tiny preset: α = 0 is the plain step, the teacher scores the student's positions,
and the distillation term moves the weights while the history keeps logging the cross-entropy."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from experiments.distill import DistillRun
from tests.test_train import config
from training.train import Callbacks


def first_loss(tmp_path, name, verses, backbones, alpha: float) -> tuple[float, DistillRun]:
    english = {v: "In the beginning God created the heaven and the earth." for v in verses}
    cfg = dataclasses.replace(config(tmp_path, name), dev_fraction=0.0, max_steps=1, epochs=1)
    torch.set_num_threads(1)
    run = DistillRun(cfg, Callbacks(), backbones, english, alpha, 2.0, sentences=verses[:8])
    result = run.train()
    return result.history[0]["train_loss"], run


def test_alpha_zero_is_the_plain_cross_entropy_step(tmp_path, verses, backbones):
    from training.train import train

    plain = train(dataclasses.replace(config(tmp_path, "plain"), dev_fraction=0.0, max_steps=1, epochs=1),
                  sentences=verses[:8], backbones=backbones)
    zero, _ = first_loss(tmp_path, "zero", verses, backbones, 0.0)
    assert zero == pytest.approx(plain.history[0]["train_loss"], rel=1e-6)


def test_the_teacher_scores_the_students_positions_and_changes_the_loss(tmp_path, verses, backbones):
    zero, run = first_loss(tmp_path, "a0", verses, backbones, 0.0)
    mixed, distilled = first_loss(tmp_path, "a1", verses, backbones, 1.0)
    examples = run.data.train[:4]
    batch = run.model.make_batch([e.prefix for e in examples], [run.translations[e.prefix] for e in examples],
                                 [e.target for e in examples], [e.sentence for e in examples])
    teacher = run.teacher_logits(batch, [e.sentence for e in examples])
    assert teacher.shape == run.model(batch).logits.shape  # one row per supervised piece, full vocabulary
    assert mixed == pytest.approx(zero, rel=1e-6)  # the history logs the cross-entropy (before the first update)
    plain, taught = run.model.trainable_state_dict(), distilled.model.trainable_state_dict()
    assert any(not torch.equal(plain[k], taught[k]) for k in plain)  # alpha 1: the update follows T² · KL alone
