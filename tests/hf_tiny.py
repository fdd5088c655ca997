"""Tiny random ``transformers`` models built offline (no Hub), saved as local safetensors folders."""
from __future__ import annotations

from pathlib import Path

import torch

WORDS = [f"w{i}" for i in range(40)]
SPECIALS = ["<pad>", "</s>", "<unk>", "<s>"]
CHAT_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2
CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
CHAT_FAMILIES = ("qwen2",)  # families whose tiny model gets the byte-level BPE tokenizer with a chat template


def word_tokenizer(size: int = 0):
    """A whitespace word-level fast tokenizer over ``WORDS`` that appends ``</s>``; with ``size``, over
    ``w0 … w{size − 5}`` instead (a vocabulary as large as a big model's output layer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [f"w{i}" for i in range(size - len(SPECIALS))] if size else WORDS
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", bos_token="<s>")


# today's decoder-only LLM families: (config class name, what makes the family different)
DECODER_FAMILIES = {
    "llama": ("LlamaConfig", "RoPE, RMSNorm, SwiGLU"),
    "qwen2": ("Qwen2Config", "grouped-query attention (4 query heads, 2 key/value heads), q/k/v biases"),
    "mistral": ("MistralConfig", "sliding-window attention (window 6) over a grouped-query cache"),
    "gemma": ("GemmaConfig", "embeddings scaled by sqrt(d), GeGLU, multi-query attention"),
    "phi3": ("Phi3Config", "fused qkv and gate/up projections, partial RoPE"),
    "gpt_neox": ("GPTNeoXConfig", "parallel attention and MLP, fused qkv, LayerNorm (Pythia)"),
}


def _decoder_config(family: str, common: dict):
    """A two-layer random config of a decoder-only ``family`` (see ``DECODER_FAMILIES``)."""
    import transformers

    cls = getattr(transformers, DECODER_FAMILIES[family][0])
    heads = {"qwen2": (4, 2), "mistral": (4, 2), "gemma": (4, 1)}.get(family, (2, 2))
    shape = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=heads[0],
                 max_position_embeddings=128, initializer_range=0.5)
    if family == "gpt_neox":
        return cls(**shape, rotary_pct=0.5, **common)
    extra = {"sliding_window": 6} if family == "mistral" else {"head_dim": 8} if family == "gemma" else {}
    if family == "phi3":
        extra = {"partial_rotary_factor": 0.5}
    return cls(**shape, num_key_value_heads=heads[1], tie_word_embeddings=family == "gemma", **extra, **common)


def chat_tokenizer():
    """A byte-level BPE tokenizer (Qwen2's pre-tokenizer, trained here on ``WORDS``) with ChatML's
    special tokens and chat template, loaded as transformers' ``Qwen2Tokenizer`` (as Qwen2 folders are)."""
    import json

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
                                                  pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=CHAT_SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator([" ".join(WORDS)] * 3 + ["system\nuser\nassistant\nyou are a helpful model"], trainer)
    bpe = json.loads(core.to_str())["model"]
    tokenizer = Qwen2Tokenizer(vocab=bpe["vocab"], merges=[tuple(m) for m in bpe["merges"]], eos_token="<|im_end|>")
    tokenizer.add_special_tokens({"additional_special_tokens": CHAT_SPECIALS[1:]})
    tokenizer.chat_template = CHATML
    return tokenizer


def tiny_config(family: str):
    """A small random config of ``family`` (bart, t5, marian, gpt2; bert, encoder-only; any of
    ``DECODER_FAMILIES``) with peaked output distributions."""
    from transformers import BartConfig, BertConfig, GPT2Config, MarianConfig, T5Config

    V = len(SPECIALS) + len(WORDS)
    common = {"vocab_size": V, "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 3}
    if family in CHAT_FAMILIES:
        common = {"vocab_size": len(chat_tokenizer()), "pad_token_id": 0, "eos_token_id": 2, "bos_token_id": None}
    if family in DECODER_FAMILIES:
        return _decoder_config(family, common)
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
    (chat_tokenizer() if family in CHAT_FAMILIES else word_tokenizer()).save_pretrained(folder)
    return Path(folder)
