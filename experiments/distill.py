"""Experiment: train the demo's TALL adapters with a second teacher, stage 7 reading the verse's own English.

    python -m experiments.distill --out build/distill --alpha 0.5 --temperature 2

Why: TALL's last-word training signal is one word per verse (20,968 examples), and TALL fits its own training
verses to only 8.8 %. The frozen en→he decoder, given the en→he encoder's states of the whole verse's English
(JPS 1917, in the TRAIN books' data), writes the right last word for 35 % of test verses
(benchmarks/decoder_ceiling.py). Its distribution over the missing word's pieces is a dense target: besides the
gold piece it ranks the words that fit the verse's meaning. The student (stages 2–6 from the Hebrew prefix and its
translation) is trained on (1 - alpha) · cross-entropy + alpha · T² · KL(teacher_T ‖ student_T), the usual
distillation loss (Hinton et al. 2015). Everything else is the demo build's adapters stage (demo preset, seed 0,
2 epochs × batch 16, lr 5e-4, the same dev verses and checkpoint choice), so its history compares with
build/demo-v2/adapters/history.json step by step. The English is used in training only: prediction is unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.nn import functional as F

from tall_model import load
from tall_model.config import preset_config
from tall_model.model import PrefixEncoding, TallOutput
from training.train import TqdmCallbacks, TrainConfig, _Run


class DistillRun(_Run):
    """The build's training run with the distillation term added to each step's loss."""

    def __init__(self, config, callbacks, backbones, english: dict[str, str], alpha: float, temperature: float,
                 sentences: list[str] | None = None):
        super().__init__(config, callbacks, sentences, backbones, None)
        self.english, self.alpha, self.temperature = english, alpha, temperature
        missing = {e.sentence for e in self.data.train} - set(english)
        if missing:
            raise SystemExit(f"{len(missing)} training verses have no English (e.g. {next(iter(missing))!r})")

    @torch.no_grad()
    def teacher_logits(self, batch, sentences: list[str]) -> torch.Tensor:
        model = self.model
        src = model.backbones.hr_lr_tokenizer([self.english[s] for s in sentences], return_tensors="pt",
                                              padding=True, truncation=True, max_length=256)
        memory = model.hr_lr.get_encoder()(**src).last_hidden_state
        logits, _, _ = model.decode(PrefixEncoding(memory, src["attention_mask"], memory), batch.decoder_input_ids,
                                    hidden_positions=batch.loss_mask.bool())
        return logits.float()

    def step(self, ddp_model, indices):
        """The build's step, with the model's loss replaced by the distillation mix for the backward pass; the
        history logs the cross-entropy alone, comparable with an ordinary run's train loss."""
        sentences, cross_entropy = [self.data.train[i].sentence for i in indices], []

        def distilling(batch):
            out = ddp_model(batch)
            teacher, t = self.teacher_logits(batch, sentences), self.temperature
            kl = F.kl_div(F.log_softmax(out.logits.float() / t, -1), F.log_softmax(teacher / t, -1),
                          log_target=True, reduction="batchmean")
            cross_entropy.append(out.loss.detach().item())
            return TallOutput((1 - self.alpha) * out.loss + self.alpha * t * t * kl, out.logits, out.labels)

        mixed = super().step(distilling, indices)
        self.progress["loss_sum"] += cross_entropy[0] - mixed
        return cross_entropy[0]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="build/demo-v2/data")
    ap.add_argument("--translation-cache", default="build/demo-v2/translations-65efce7a8081.sqlite")
    ap.add_argument("--out", required=True)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    data = Path(args.data_dir)
    english = {}
    with (data / "train.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            verse = json.loads(line)
            if verse.get("en", "").strip():
                english[verse["he"]] = verse["en"]
    config = TrainConfig(model=preset_config("demo"), data=str(data / "he_train.jsonl"),
                         dev_data=str(data / "he_dev.jsonl"), positions="last", epochs=2, max_steps=args.max_steps,
                         batch_size=16, lr=5e-4, eval_every=250, eval_limit=400, log_every=20, out=args.out,
                         translation_cache=args.translation_cache, threads=args.threads, seed=0, low_memory=False)
    config.validate()
    torch.set_num_threads(args.threads)
    backbones = load(config.model, device="cpu").backbones  # passed in, so the en→he encoder is kept for the teacher
    run = DistillRun(config, TqdmCallbacks(), backbones, english, args.alpha, args.temperature)
    result = run.train()
    print(json.dumps({"best": result.best_metrics, "step": result.step}))


if __name__ == "__main__":
    main()
