"""The offline demo build (`python -m demo_build`): data split, small backbones, TALL adapters, baselines and the
miniature paper table in checkpoints/demo/.

  build            the stage list, the resumable runner and its command line
  context          BuildContext (arguments, folders, metrics.json), Stage, the build seed, dir_mb
  data             the Tanakh verse pairs and their whole-book splits
  versions         more English: the pythonbible versions mapped to the Hebrew numbering and verified against JPS
  data_stage       the data stage: splits, verified versions, LM text, split_manifest.json
  backbone_stages  tokenizers, lm, he-en, en-he, eval-translators
  marian_tokenizer the translators' joint SentencePiece vocabulary
  translators      Marian training to a step budget, with resumable mid-stage checkpoints
  stage_ckpt       mid-stage checkpoints (weights, AdamW, RNG state) of the translator and LM stages
  export           fp16 export of a trained translator
  scoring          chrF/BLEU of the translators and the decoding candidates
  lm               the English LM (trained to a step budget) and its tokenizer
  lm_extra_english calibration: the LM with and without the verified English versions on one step budget
  budget           thread tuning and step-budget overrides on a shared machine
  tall_stages      hebrew, adapters, baselines, evaluate (through training, baselines and evaluation)
  cards            model cards and checkpoints/demo/README.md

Only its own command and the tests import it."""
