"""The published configs of the paper's backbones, so that their exact sizes can be built on the `meta`
device without downloading anything (the hub is unreachable on our machines). Values as published on the
Hugging Face hub; only the fields that shape the modules matter here."""

from __future__ import annotations

_MARIAN_COMMON = dict(
    model_type="marian", activation_dropout=0.0, attention_dropout=0.0, dropout=0.1, init_std=0.02,
    is_encoder_decoder=True, scale_embedding=True, static_position_embeddings=True,
    share_encoder_decoder_embeddings=True, normalize_embedding=False, encoder_layerdrop=0.0,
    decoder_layerdrop=0.0, tie_word_embeddings=True,
)

KNOWN_CONFIGS: dict[str, dict] = {
    "Helsinki-NLP/opus-mt-tc-big-he-en": dict(
        _MARIAN_COMMON, activation_function="relu", d_model=1024, vocab_size=60269, decoder_vocab_size=60269,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=16, decoder_attention_heads=16,
        encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
        pad_token_id=60268, decoder_start_token_id=60268, eos_token_id=43741, bos_token_id=None,
    ),
    "Helsinki-NLP/opus-mt-en-he": dict(
        _MARIAN_COMMON, activation_function="swish", d_model=512, vocab_size=65839, decoder_vocab_size=65839,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
        encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
        pad_token_id=65838, decoder_start_token_id=65838, eos_token_id=0, bos_token_id=0,
    ),
    "bigscience/bloomz-560m": dict(
        model_type="bloom", vocab_size=250880, hidden_size=1024, n_layer=24, n_head=16,
        layer_norm_epsilon=1e-5, apply_residual_connection_post_layernorm=False, bos_token_id=1,
        eos_token_id=2, pad_token_id=3, tie_word_embeddings=True,
    ),
    "Qwen/Qwen2.5-0.5B": dict(
        model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1000000.0,
        rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643,
        hidden_act="silu", use_sliding_window=False,
    ),
}

# generation_config.json as published (what `generate` reads when a call does not say otherwise).
KNOWN_GENERATION_CONFIGS: dict[str, dict] = {
    "Helsinki-NLP/opus-mt-tc-big-he-en": dict(
        bad_words_ids=[[60268]], bos_token_id=0, decoder_start_token_id=60268, eos_token_id=43741,
        forced_eos_token_id=43741, max_length=512, num_beams=4, pad_token_id=60268,
    ),
    "Helsinki-NLP/opus-mt-en-he": dict(
        bad_words_ids=[[65838]], bos_token_id=0, decoder_start_token_id=65838, eos_token_id=0,
        forced_eos_token_id=0, max_length=512, num_beams=4, pad_token_id=65838,
    ),
    "bigscience/bloomz-560m": dict(bos_token_id=1, eos_token_id=2, pad_token_id=3),
    "Qwen/Qwen2.5-0.5B": dict(bos_token_id=151643, eos_token_id=151643, do_sample=False, max_new_tokens=2048),
}

# How many entries the published tokenizers have (the models' embedding tables may be padded beyond them):
# Marian: vocab.json (shared by source.spm and target.spm); BLOOM: tokenizer.json; Qwen2.5: 151643 byte-level BPE
# tokens in vocab.json plus 22 special tokens.
KNOWN_TOKENIZER_SIZES: dict[str, int] = {
    "Helsinki-NLP/opus-mt-tc-big-he-en": 60269,
    "Helsinki-NLP/opus-mt-en-he": 65839,
    "bigscience/bloomz-560m": 250680,
    "Qwen/Qwen2.5-0.5B": 151643,
}
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
