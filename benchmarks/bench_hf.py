"""GenScope's traced beam search over a transformers model vs ``model.generate`` with attentions.

    python benchmarks/bench_hf.py [--repeats 7] [--threads 2]

A randomly initialised Marian-sized-down encoder-decoder (d_model 256, 3+3 layers, 4 heads,
vocabulary 8,000; built offline) on a 60-token source, and the shipped ``enzh-transformer`` (same
size, trained) on a documentation sentence; beam 4, exactly 40 new tokens. The baseline is
``generate(num_beams=4, output_attentions=True, return_dict_in_generate=True)``, the closest thing
transformers offers to a trace. Prints medians (run interleaved) and the ratio; target <= 1.0x.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_tracing import bench_args, median_ms  # noqa: E402
from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint  # noqa: E402
from gen_models.decoding import DecodeSettings, generate  # noqa: E402
from gen_models.models.hf_adapter import load_hf  # noqa: E402
from tests.hf_tiny import word_tokenizer  # noqa: E402

SHIPPED_INPUT = ("Choose Tools - Options - LibreOffice Calc - View to change the display of formulas, "
                 "grid lines and page breaks in the current spreadsheet document.")


def build_model(folder: Path) -> Path:
    """Save a random mid-sized Marian model with a word tokenizer into ``folder``."""
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    config = MarianConfig(vocab_size=8000, d_model=256, encoder_layers=3, decoder_layers=3,
                          encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=1024,
                          decoder_ffn_dim=1024, max_position_embeddings=256, pad_token_id=0,
                          eos_token_id=1, decoder_start_token_id=0)
    MarianMTModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def compare(generator, text: str, max_new: int, repeats: int) -> tuple[float, float, int]:
    """(traced ms, generate ms, source tokens) for beam 4 and exactly ``max_new`` new tokens."""
    ids = generator.tokenizer(text, return_tensors="pt")["input_ids"].to(generator.model.device)
    settings = DecodeSettings(beam_size=4, max_len=max_new, min_len=max_new)

    def ours():
        return generate(generator, text, settings)

    def theirs():
        with torch.no_grad():
            return generator.model.generate(ids, num_beams=4, max_new_tokens=max_new, min_new_tokens=max_new,
                                            length_penalty=0.0, early_stopping=True, output_attentions=True,
                                            return_dict_in_generate=True)

    return (*median_ms(ours, theirs, repeats=repeats), ids.size(1))


def main() -> None:
    args = bench_args(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"random Marian": (load_hf(str(build_model(Path(tmp) / "marian"))),
                                  " ".join(f"w{(7 * i) % 40}" for i in range(59)))}
    shipped = CHECKPOINT_ROOT / "enzh-transformer"
    if shipped.is_dir():
        runs["shipped enzh-transformer"] = (load_checkpoint(shipped), SHIPPED_INPUT)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats}, beam 4, 40 new tokens")
    for name, (generator, text) in runs.items():
        traced, baseline, source = compare(generator, text, 40, args.repeats)
        print(f"{name} ({source} source tokens): GenScope traced {traced:.1f} ms (whole tree, every node's "
              f"attentions) vs transformers generate {baseline:.1f} ms (output_attentions=True) = "
              f"{traced / baseline:.2f}x")


if __name__ == "__main__":
    main()
