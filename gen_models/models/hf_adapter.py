"""Drive a Hugging Face ``transformers`` model through GenScope's stepper protocol.

Encoder-decoder models (BART, T5, Marian, …) are encoded once; each step feeds one decoder token
with the key/value cache and returns cross-attention ``(L, H, S)`` and decoder self-attention
``(L, H, t+1)`` per hypothesis. Decoder-only models (GPT-2, Llama, Qwen2, …) read the prompt at the
first step: all of it but its last token goes through the base model without attentions or logits,
``PREFILL_CHUNK`` tokens at a time, into the model's own key/value cache; then every step, the first
included, feeds one token with ``output_attentions``. So a step costs one token, and a prompt of
thousands of tokens never holds its ``(L, H, S, S)`` attentions or its ``(S, V)`` logits. Their
``attention`` is the last position's attention over the prompt ``(L, H, S)`` and ``self_attention``
its attention over the tokens generated so far ``(L, H, t)``; the two together sum to 1 per head
(decoding keeps attention over long prompts compactly: ``gen_models.decoding.COMPACT_ATTENTION_VALUES``).
Beam search reorders the cache with ``Cache.reorder_cache``. The encoder's own self-attention
``(L, H, S, S)`` goes into the trace once per run, when it fits ``MAX_ENCODER_ATTENTION_VALUES``.

Prompts: at most ``MAX_SOURCE_TOKENS`` tokens or the model's positions, whichever is fewer. A longer
decoder-only prompt is refused (the model continues from its end: cutting it would continue another
text); an encoder-decoder's source is cut, with a notice. The model declares its size
(``ModelFeatures.parameters``, ``cache_bytes_per_token``) so that the work budget scales with it.

Encoder-only models (BERT, RoBERTa, …) cannot generate: :class:`HFEncoder` only encodes, and their
trace holds the source and its encoder self-attention (the attention-only view).

Loading is local and safe by default: safetensors only, ``trust_remote_code`` off, float32 weights,
eager attention (so attentions exist), and no network unless the caller opts in.
"""
from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ..device import resolve_device
from ..protocol import Encoded, ModelFeatures, StepControls, StepOutput

MAX_SOURCE_TOKENS = 4096
PREFILL_CHUNK = 512  # prompt tokens run at once: a chunk's attention scores (B, H, chunk, S) bound the memory
MAX_ENCODER_ATTENTION_VALUES = 400_000  # L·H·S·S kept per trace; above it heads are averaged
GENERATING_ARCHITECTURES = ("ForConditionalGeneration", "ForCausalLM", "LMHeadModel", "ForSeq2SeqLM")


@dataclass
class HFState:
    """Decoder state of B hypotheses."""

    cache: Any  # transformers Cache, or None before the first step
    encoder_hidden: Optional[torch.Tensor]  # (1, S, D) encoder-decoder only
    prompt_ids: torch.Tensor  # (1, S)
    generated: int = 0
    source_scale: Optional[torch.Tensor] = None  # (B, S) on the prompt's embeddings (decoder-only attribution)


class _HFModel:
    """What the generating and the encoder-only wrappers share: tokenisation and token texts."""

    vocab = None  # the tokenizer is the vocabulary

    def __init__(self, model, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.unk_id = tokenizer.unk_token_id
        config = model.config
        self.positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        self.max_source_len = min(MAX_SOURCE_TOKENS, self.positions or MAX_SOURCE_TOKENS)

    def text_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` (special tokens included); ValueError when it has none."""
        ids = self.tokenizer(text)["input_ids"]
        if not text.strip() or not ids:
            raise ValueError("the input has no tokens")
        return ids

    def source_ids(self, text: str) -> tuple[torch.Tensor, bool]:
        """(1, S) token ids of ``text`` (special tokens included, truncated), and whether it was cut."""
        return self.cut(self.text_ids(text))

    def cut(self, ids: list[int]) -> tuple[torch.Tensor, bool]:
        """(1, S) ids cut to ``max_source_len``, and whether they were cut."""
        return torch.tensor([ids[: self.max_source_len]], device=self.model.device), len(ids) > self.max_source_len

    def whole(self, ids: list[int]) -> torch.Tensor:
        """(1, S) ids of a prompt that must be read whole; ValueError naming the limit when it is longer."""
        if len(ids) > self.max_source_len:
            positions = f"{self.positions:,} positions" if self.positions else "unlimited positions"
            raise ValueError(f"the prompt is {len(ids):,} tokens, over the limit of {self.max_source_len:,} tokens "
                             f"for {self.name} (the smaller of GenScope's MAX_SOURCE_TOKENS = {MAX_SOURCE_TOKENS:,} "
                             f"and the model's {positions}): shorten it")
        return self.cut(ids)[0]

    def encoded(self, prompt: torch.Tensor, truncated: bool, state: Any, topics: Optional[list[str]],
                attentions: Optional[tuple] = None, template: Optional[list[int]] = None) -> Encoded:
        """The :class:`Encoded` source, with the encoder self-attention when ``attentions`` are given.
        ``extra["template_positions"]``: the source positions the tokenizer or a chat template added
        (special tokens, role markers), not the user's text; views mark them apart and can hide them."""
        ids = prompt[0].tolist()
        tokens = self.tokenizer.convert_ids_to_tokens(ids)
        encoder_attention, notices = encoder_attention_record(attentions) if attentions else (None, [])
        special = set(self.tokenizer.all_special_ids)
        marked = [i for i, t in enumerate(ids) if t in special] if template is None else \
            [i for i in template if i < len(ids)]
        return Encoded(tokens, prompt[0], [], state, list(topics or []), truncated, encoder_attention, notices,
                       extra={"template_positions": marked})

    def id_to_token(self, token_id: int, oov_words: list[str]) -> str:
        """The tokenizer's piece for ``token_id``."""
        return self.tokenizer.convert_ids_to_tokens(int(token_id))

    def token_to_id(self, piece: str, oov_words: Optional[list[str]] = None) -> Optional[int]:
        """The id of a tokenizer piece, or None if the tokenizer does not have it."""
        token_id = self.tokenizer.convert_tokens_to_ids(piece)
        known = token_id is not None and (token_id != self.unk_id or piece == self.tokenizer.unk_token)
        return int(token_id) if known else None

    def reference_ids(self, text: str, oov_words: list[str]) -> list[int]:
        """A reference output as the tokenizer's target pieces (no special tokens)."""
        return list(self.tokenizer(text_target=text, add_special_tokens=False)["input_ids"])

    def decode_text(self, token_ids: list[int], oov_words: list[str]) -> str:
        """Readable text of generated ids (special tokens dropped)."""
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)


def encoder_attention_record(attentions: tuple) -> tuple[Optional[np.ndarray], list[str]]:
    """Per-layer attentions [(1, H, S, S)] -> ((L, H, S, S) array, notices); heads are averaged
    (``(L, 1, S, S)``) when all of them would exceed ``MAX_ENCODER_ATTENTION_VALUES``."""
    stacked = torch.cat(attentions, dim=0).float().cpu()  # (L, H, S, S)
    if stacked.numel() <= MAX_ENCODER_ATTENTION_VALUES:
        return stacked.numpy(), []
    averaged = stacked.mean(dim=1, keepdim=True)  # (L, 1, S, S)
    if averaged.numel() <= MAX_ENCODER_ATTENTION_VALUES:
        return averaged.numpy(), ["encoder self-attention is averaged over heads (input too long to keep "
                                  f"every head within {MAX_ENCODER_ATTENTION_VALUES:,} values)"]
    return None, [f"encoder self-attention not recorded: it would exceed {MAX_ENCODER_ATTENTION_VALUES:,} values"]


class HFGenerator(_HFModel):
    """A ``transformers`` seq2seq or causal LM behind the stepper protocol."""

    def __init__(self, model, tokenizer, name: str):
        super().__init__(model, tokenizer, name)
        config, generation = model.config, model.generation_config
        self.is_encoder_decoder = bool(config.is_encoder_decoder)
        self.features = ModelFeatures(architecture="encoder-decoder" if self.is_encoder_decoder else "decoder-only",
                                      soft_inputs=True, decoder_positions=self.positions or 0,
                                      parameters=sum(p.numel() for p in model.parameters()),
                                      cache_bytes_per_token=cache_bytes_per_token(model))
        eos = generation.eos_token_id if generation.eos_token_id is not None else config.eos_token_id
        self.eos_id = int(eos[0] if isinstance(eos, (list, tuple)) else eos)
        start = generation.decoder_start_token_id or getattr(config, "decoder_start_token_id", None)
        self.bos_id = int(start if self.is_encoder_decoder and start is not None else self.eos_id)
        self.vocab_size = int(model.get_output_embeddings().out_features)
        # the attribution baseline of decoder-only models: the mean token embedding (D,)
        self.baseline = None if self.is_encoder_decoder else model.get_input_embeddings().weight.detach().mean(0)
        self.chat = not self.is_encoder_decoder and bool(getattr(tokenizer, "chat_template", None))
        if self.chat:
            self.features = replace(self.features, input_hint="a user message, or a JSON list of chat messages "
                                    '[{"role": "system", "content": …}, {"role": "user", "content": …}]')

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Tokenise with the model's tokenizer (special tokens included), truncate, run the encoder."""
        if not self.is_encoder_decoder and self.chat:
            ids, template = chat_prompt(self.tokenizer, chat_messages(text))
            prompt = self.whole(ids)  # (1, S)
            return self.encoded(prompt, False, HFState(None, None, prompt), topics, template=template)
        if not self.is_encoder_decoder:
            prompt = self.whole(self.text_ids(text))  # (1, S)
            return self.encoded(prompt, False, HFState(None, None, prompt), topics)
        prompt, truncated = self.source_ids(text)  # (1, S)
        keep = encoder_layers(self.model.config) * prompt.size(1) ** 2 <= MAX_ENCODER_ATTENTION_VALUES
        out = self.model.get_encoder()(input_ids=prompt, output_attentions=keep, return_dict=True)
        state = HFState(None, out.last_hidden_state, prompt)  # hidden (1, S, D)
        encoded = self.encoded(prompt, truncated, state, topics, out.attentions if keep else None)
        if not keep:
            encoded.notices.append(f"encoder self-attention not recorded: even averaged over heads it would "
                                   f"exceed {MAX_ENCODER_ATTENTION_VALUES:,} values")
        return encoded

    def encode_scaled(self, encoded: Encoded, scale: torch.Tensor) -> HFState:
        """The state of B copies of the source with each token embedding multiplied by ``scale``
        (B, S); differentiable, for attribution (positions are not scaled). Decoder-only models: most of them
        normalise each embedding first (RMSNorm, no position embedding added), which makes an
        all-zero prompt a point where the model jumps, so integrated gradients would miss the change.
        So their scale moves each embedding from the mean token embedding (0) to its own (1)."""
        prompt = encoded.source_ids.unsqueeze(0).expand(scale.size(0), -1)  # (B, S)
        if not self.is_encoder_decoder:
            return HFState(None, None, prompt, source_scale=scale)
        encoder = self.model.get_encoder()
        with scaled_output(encoder.get_input_embeddings(), scale):
            hidden = encoder(input_ids=prompt, return_dict=True).last_hidden_state  # (B, S, D)
        return HFState(None, hidden, prompt)

    def step(self, state: HFState, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """One token for each of B hypotheses (prev_ids (B,))."""
        B = prev_ids.size(0)
        soft = controls.input_distribution  # (B, V) read instead of prev_ids, or None
        if self.is_encoder_decoder:
            with fed_distribution(self.model.get_decoder().get_input_embeddings(), soft):
                out = self.model(
                    encoder_outputs=(state.encoder_hidden.expand(B, -1, -1),),
                    attention_mask=torch.ones(B, state.prompt_ids.size(1), dtype=torch.long, device=prev_ids.device),
                    decoder_input_ids=prev_ids[:, None], past_key_values=state.cache,
                    use_cache=True, output_attentions=True, return_dict=True,
                )
            internals = {"attention": _last_query(out.cross_attentions),
                         "self_attention": _last_query(out.decoder_attentions)}
        else:
            first = state.cache is None
            prompt, scale = state.prompt_ids.expand(B, -1), state.source_scale  # (B, S), (B, S) or None
            cache = self.prefill(prompt, scale) if first else state.cache
            inputs = prompt[:, -1:] if first else prev_ids[:, None]  # (B, 1)
            scale = scale[:, -1:] if first and scale is not None else None  # (B, 1) or None
            embeddings = self.model.get_input_embeddings()
            with scaled_output(embeddings, scale, self.baseline), fed_distribution(embeddings, None if first else soft):
                out = self.model(input_ids=inputs, past_key_values=cache, use_cache=True,
                                 output_attentions=True, return_dict=True)
            S = state.prompt_ids.size(1)
            attention = _last_query(out.attentions, S + state.generated)  # (B, L, H, S + t)
            internals = {"attention": attention[..., :S], "self_attention": attention[..., S:]}
        log_probs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
        new_state = replace(state, cache=out.past_key_values, generated=state.generated + 1)
        return StepOutput(log_probs, new_state, internals)

    def prefill(self, prompt: torch.Tensor, scale: Optional[torch.Tensor]) -> Any:
        """The key/value cache of all of a decoder-only prompt (B, S) but its last token (None for a
        one-token prompt), run through the base model without attentions or logits ``PREFILL_CHUNK``
        tokens at a time; ``scale`` (B, S) scales the embeddings as in :meth:`encode_scaled`."""
        cache, embeddings = None, self.model.get_input_embeddings()
        for start in range(0, prompt.size(1) - 1, PREFILL_CHUNK):
            stop = min(start + PREFILL_CHUNK, prompt.size(1) - 1)
            part = scale[:, start:stop] if scale is not None else None  # (B, chunk) or None
            with scaled_output(embeddings, part, self.baseline):
                cache = self.model.base_model(input_ids=prompt[:, start:stop], past_key_values=cache,
                                              use_cache=True, return_dict=True).past_key_values
        return cache

    def reorder(self, state: HFState, index: torch.Tensor) -> HFState:
        """Select hypotheses ``index`` (B',) in the key/value cache (in place)."""
        state.cache.reorder_cache(index)
        return state


class HFEncoder(_HFModel):
    """An encoder-only model (BERT-style): encoded for its self-attention, never stepped."""

    features = ModelFeatures(generates=False, architecture="encoder-only")

    def __init__(self, model, tokenizer, name: str):
        super().__init__(model, tokenizer, name)
        special = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.bos_id = self.eos_id = int(special if special is not None else 0)
        self.vocab_size = int(model.config.vocab_size)

    @torch.no_grad()
    def encode(self, text: str, topics: Optional[list[str]] = None) -> Encoded:
        """Tokenise and run the encoder with attentions."""
        prompt, truncated = self.source_ids(text)  # (1, S)
        out = self.model(input_ids=prompt, output_attentions=True, return_dict=True)
        return self.encoded(prompt, truncated, None, topics, out.attentions)

    def step(self, state: Any, prev_ids: torch.Tensor, controls: StepControls) -> StepOutput:
        """Encoder-only models do not generate."""
        raise ValueError(f"{self.name} is an encoder-only model: it has attention to show but cannot generate")

    def reorder(self, state: Any, index: torch.Tensor) -> Any:
        """Encoder-only models have no decoder state."""
        return state


@contextlib.contextmanager
def scaled_output(embedding: torch.nn.Module, scale: Optional[torch.Tensor], base: Optional[torch.Tensor] = None):
    """While active, ``embedding``'s output (B, S, D) is multiplied by ``scale`` (B, S) (no-op for None);
    with a ``base`` embedding (D,), it becomes base + scale · (out − base)."""
    def hook(module, args, out):
        if base is None:
            return out * scale.unsqueeze(-1)
        return base.to(out.dtype) + scale.unsqueeze(-1) * (out - base.to(out.dtype))
    handle = embedding.register_forward_hook(hook) if scale is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


@contextlib.contextmanager
def fed_distribution(embedding: torch.nn.Module, distribution: Optional[torch.Tensor]):
    """While active, ``embedding``'s output for the one new position (B, 1, D) is the expected
    embedding Σ_w P(w)·E(w) of ``distribution`` (B, V), in the module's own scale (BART-style
    scaled embeddings keep ``embed_scale``); no-op for None."""
    def hook(module, args, out):
        rows = module.weight.size(0)
        expected = distribution[:, :rows].to(out.dtype) @ module.weight  # (B, D)
        return (expected * getattr(module, "embed_scale", 1.0)).unsqueeze(1).to(out.dtype)  # (B, 1, D)
    handle = embedding.register_forward_hook(hook) if distribution is not None else None
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def _last_query(attentions, width: Optional[int] = None) -> torch.Tensor:
    """Per-layer attentions [(B, H, q, k)] -> the last query's rows (B, L, H, width). A sliding-window
    layer's cache holds only the last k ≤ width positions: its row is padded with zeros on the left
    (the positions that fell out of the window get no attention)."""
    rows = [a[:, :, -1, :] for a in attentions]  # [(B, H, k)]
    if width is not None:
        rows = [torch.nn.functional.pad(r, (width - r.size(-1), 0)) for r in rows]
    return torch.stack(rows, dim=1).float()


def chat_messages(text: str) -> list[dict]:
    """The chat messages of an input: a JSON list of ``{"role", "content"}`` objects as it is, any
    other text as one user message. ValueError for a malformed list."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("the input has no tokens")
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            messages = json.loads(stripped)
        except json.JSONDecodeError:
            return [{"role": "user", "content": text}]
        if not messages or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                   and isinstance(m.get("content"), str) for m in messages):
            raise ValueError('chat messages must be a list of {"role": …, "content": …} objects with text contents')
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    return [{"role": "user", "content": text}]


def chat_prompt(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """The prompt ids of ``messages`` through the tokenizer's chat template (with the assistant's
    generation prompt), and the positions of the tokens the template added: every token that is not
    inside one of the messages' contents (role markers, special tokens, separators)."""
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    spans, start = [], 0
    for message in messages:
        at = rendered.find(message["content"], start)
        if at >= 0 and message["content"]:
            spans.append((at, at + len(message["content"])))
            start = at + len(message["content"])
    encoding = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    inside = lambda a, b: any(lo <= a and b <= hi for lo, hi in spans) and b > a  # noqa: E731
    template = [i for i, (a, b) in enumerate(encoding["offset_mapping"]) if not inside(a, b)]
    return ids, template


def cache_bytes_per_token(model) -> int:
    """Bytes of key/value cache one token adds to one hypothesis, from the decoder's config: layers ×
    (keys and values) × key/value heads × head width × bytes per number. An encoder-decoder's cache of
    the source (cross-attention) is as wide per source token as its own per output token."""
    config = model.config.get_text_config(decoder=True)
    layers = getattr(config, "decoder_layers", None) or getattr(config, "num_decoder_layers", None) or \
        config.num_hidden_layers
    heads = getattr(config, "decoder_attention_heads", None) or config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    width = getattr(config, "head_dim", None) or getattr(config, "d_kv", None) or config.hidden_size // heads
    return int(layers * 2 * kv_heads * width * next(model.parameters()).element_size())


def encoder_layers(config) -> int:
    """How many layers an encoder-decoder's encoder has (BART/Marian ``encoder_layers``, T5 ``num_layers``)."""
    return int(getattr(config, "encoder_layers", None) or config.num_hidden_layers)


def hub_weights_mb(repo_id: str) -> float:
    """Megabytes of safetensors weights in a Hub model repository (network; ValueError if none)."""
    from huggingface_hub import HfApi

    siblings = HfApi().model_info(repo_id, files_metadata=True).siblings or []
    sizes = [s.size or 0 for s in siblings if s.rfilename.endswith(".safetensors")]
    if not sizes:
        raise ValueError(f"{repo_id!r} has no safetensors weights (only safetensors are loaded)")
    return sum(sizes) / 2**20


def is_encoder_only(config) -> bool:
    """Whether a config describes an encoder without a generation head (BERT, RoBERTa, …)."""
    architectures = getattr(config, "architectures", None) or []
    if config.is_encoder_decoder or getattr(config, "is_decoder", False):
        return False
    return bool(architectures) and not any(a.endswith(GENERATING_ARCHITECTURES) for a in architectures)


def load_hf(path_or_id: str, allow_network: bool = False, name: Optional[str] = None,
            device: Optional[str] = None) -> HFGenerator | HFEncoder:
    """Load a local model folder (or a Hub id when ``allow_network``) as an :class:`HFGenerator`, or
    an :class:`HFEncoder` for encoder-only architectures, on ``device`` (default
    ``$GENSCOPE_DEVICE``).

    Safetensors weights only, ``trust_remote_code=False``; float32 on the CPU, the checkpoint's own
    dtype on a GPU. Raises ValueError with a clear message for missing folders and unsupported
    architectures. ``name`` defaults to ``hf:<folder>``.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    local = Path(path_or_id).expanduser()
    if not local.is_dir() and not allow_network:
        raise ValueError(f"{path_or_id!r} is not a local model folder (Hub downloads are off; opt in to use a Hub id)")
    source = str(local) if local.is_dir() else path_or_id
    options = {"trust_remote_code": False, "local_files_only": not allow_network}
    config = AutoConfig.from_pretrained(source, **options)
    encoder_only = is_encoder_only(config)
    auto = AutoModel if encoder_only else AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    try:
        target = resolve_device(device)
        model = auto.from_pretrained(source, attn_implementation="eager", use_safetensors=True,
                                     dtype="auto" if target.type == "cuda" else torch.float32, **options).to(target)
    except ValueError as err:
        raise ValueError(f"{config.model_type!r} models are not supported here ({err})") from err
    except OSError as err:
        raise ValueError(f"cannot load {path_or_id!r}: only safetensors weights are accepted ({err})") from err
    tokenizer = AutoTokenizer.from_pretrained(source, **options)
    wrapper = HFEncoder if encoder_only else HFGenerator
    return wrapper(model, tokenizer, name or f"hf:{local.name if local.is_dir() else path_or_id}")


@torch.no_grad()
def logit_lens(model: HFGenerator, encoded: Encoded, path_ids: list[int], step: int, k: int = 5) -> dict:
    """The logit lens at output step ``step`` of a Transformer decoder: each decoder layer's hidden
    state at that position through the final norm and the output projection. Per layer: the top-``k``
    tokens with their probabilities and the rank and probability of the token the path chose.
    The last row is the model's own distribution. ValueError for a step outside the path."""
    if not 0 <= step < len(path_ids):
        raise ValueError(f"step must be between 0 and {len(path_ids) - 1}, got {step}")
    hidden, logits = _decoder_hidden_states(model, encoded, path_ids[:step])  # [(D,)] per layer, (V,)
    norm, head = _final_norm(model.model), model.model.get_output_embeddings()
    bias = getattr(model.model, "final_logits_bias", None)
    bias = bias[0] if bias is not None else 0
    scale = _head_input_scale(head(hidden[-1]), logits - bias)
    rows = [head(norm(h) * scale) + bias for h in hidden[1:-1]] + [logits]
    chosen = path_ids[step]
    layers = []
    for index, row in enumerate(rows, start=1):
        probs = torch.softmax(row.float(), -1)  # (V,)
        top = torch.topk(probs, k)
        layers.append({"layer": index, "top_tokens": [model.id_to_token(i, []) for i in top.indices.tolist()],
                       "top_probs": top.values.tolist(), "chosen_rank": int((probs > probs[chosen]).sum()) + 1,
                       "chosen_prob": float(probs[chosen])})
    return {"step": step, "chosen": model.id_to_token(chosen, []), "layers": layers}


def _head_input_scale(unscaled: torch.Tensor, logits: torch.Tensor) -> float:
    """The factor a model applies to its last hidden state before the output layer, fitted from that
    state's logits without it (``unscaled`` (V,)) and the model's own (V,): 1 for most, d_model^-0.5
    for T5 with tied embeddings. The lens applies it to every layer, so its probabilities are the
    model's own scale (without it, ranks stay right but probabilities are off)."""
    denominator = float((unscaled * unscaled).sum())
    return float((unscaled * logits).sum()) / denominator if denominator > 0 else 1.0


def _decoder_hidden_states(model: HFGenerator, encoded: Encoded, prefix: list[int]):
    """Hidden states of every decoder layer (embeddings first) at the last position, and its logits."""
    device = encoded.source_ids.device
    decoder_ids = torch.tensor([[model.bos_id, *prefix]], device=device)  # (1, T)
    if model.is_encoder_decoder:
        out = model.model(input_ids=encoded.source_ids[None], decoder_input_ids=decoder_ids,
                          output_hidden_states=True, return_dict=True)
        states = out.decoder_hidden_states
    else:
        ids = torch.cat([encoded.source_ids[None], torch.tensor([prefix], dtype=torch.long, device=device).reshape(1, -1)], 1)
        keeps = "logits_to_keep" in inspect.signature(model.model.forward).parameters
        last_only = {"logits_to_keep": 1} if keeps else {}
        out = model.model(input_ids=ids, output_hidden_states=True, return_dict=True, **last_only)  # logits (1, 1, V)
        states = out.hidden_states
    return [h[0, -1] for h in states], out.logits[0, -1]


def _final_norm(model) -> torch.nn.Module:
    """The norm applied before the output projection (identity for post-norm decoders such as Marian's)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    for name in ("final_layer_norm", "layer_norm", "norm", "ln_f"):
        module = getattr(decoder, name, None) or getattr(getattr(decoder, "transformer", None), name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return torch.nn.Identity()
