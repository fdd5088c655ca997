"""The generators, one file each. A new model is its file plus one line in ``MODELS``.

Each class carries its ``model_type`` (the key in a checkpoint's config.json), its
``config_class`` (constructor arguments), its ``features`` (what it can do and show) and, when it
is trained by ``training/train.py``, ``new_config`` and ``training_batch``. Hugging Face models are
not listed: :mod:`.hf_adapter` wraps any ``transformers`` folder.
"""
from .captioner import AttentionCaptioner
from .copy_lstm import CopyLSTM
from .hgfu import HGFU
from .memory_network import MemoryNetwork
from .mta_lstm import MTALSTM, TopicAveragedLSTM
from .ntm import NTM
from .pointer_generator import PointerGenerator
from .pointer_network import PointerNetwork
from .sentence_vae import SentenceVAE
from .seq2bf import Seq2BF
from .seq2seq import Seq2SeqAttention

MODELS = (
    Seq2SeqAttention,
    PointerGenerator,
    MTALSTM,
    TopicAveragedLSTM,
    PointerNetwork,
    SentenceVAE,
    HGFU,
    Seq2BF,
    MemoryNetwork,
    NTM,
    CopyLSTM,
    AttentionCaptioner,
)
MODEL_TYPES: dict[str, type] = {cls.model_type: cls for cls in MODELS}

__all__ = ["MODELS", "MODEL_TYPES"]
