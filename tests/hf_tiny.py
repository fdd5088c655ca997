"""Tiny random ``transformers`` models built offline (no Hub), saved as local safetensors folders."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = [f"w{i}" for i in range(40)]
SPECIALS = ["<pad>", "</s>", "<unk>", "<s>"]


def word_tokenizer():
    """A whitespace word-level fast tokenizer over ``WORDS`` that appends ``</s>``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", bos_token="<s>")


def tiny_config(family: str):
    """A small random config of ``family`` (bart, t5, marian, gpt2; bert, encoder-only) with peaked
    output distributions."""
    from transformers import BartConfig, BertConfig, GPT2Config, MarianConfig, T5Config

    V = len(SPECIALS) + len(WORDS)
    common = {"vocab_size": V, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 3}
    if family == "bart":
        return BartConfig(d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                          max_position_embeddings=64, decoder_start_token_id=1, forced_eos_token_id=None,
                          init_std=0.5, **common)
    if family == "marian":
        return MarianConfig(d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
                            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                            max_position_embeddings=64, decoder_start_token_id=0, init_std=0.5, **common)
    if family == "t5":
        return T5Config(d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=2,
                        decoder_start_token_id=0, initializer_factor=4.0, **common)
    if family == "gpt2":
        return GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=64, initializer_range=0.5, **common)
    if family == "bert":
        return BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          max_position_embeddings=64, initializer_range=0.5, **common)
    raise ValueError(family)


def save_tiny(family: str, folder: Path, seed: int = 0) -> Path:
    """Build, save (safetensors) and return the folder of a tiny random model with its tokenizer."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    torch.manual_seed(seed)
    config = tiny_config(family)
    auto = AutoModel if family == "bert" else AutoModelForSeq2SeqLM if config.is_encoder_decoder else \
        AutoModelForCausalLM
    model = auto.from_config(config, attn_implementation="eager")
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.forced_eos_token_id = None
        model.generation_config.forced_bos_token_id = None
    model.save_pretrained(folder, safe_serialization=True)
    word_tokenizer().save_pretrained(folder)
    return Path(folder)
