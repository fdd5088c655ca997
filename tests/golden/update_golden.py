"""Regenerate tests/golden/outputs.json from the shipped checkpoints (run after a deliberate retrain).

    python -m tests.golden.update_golden
"""
from __future__ import annotations

import json
from pathlib import Path

from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
from gen_models.decoding import DecodeSettings, generate

GOLDEN = Path(__file__).resolve().parent / "outputs.json"
INPUTS = {
    "debian": [
        "liba52-0.7.4: liba52 is a free library for decoding ATSC A/52 streams. The A/52 standard is used "
        "in a variety of applications, including digital television and DVD. It is also known as AC-3.",
        "libjmock-java: JMock is a library that supports test-driven development of Java code with mock "
        "objects. Mock objects help you design and test the interactions between the objects in your programs.",
        "python3-quuxlify: This package provides the Python 3 module for quuxlify, a small library that "
        "converts quux files into plain text.",
    ],
    "enzh": [
        "Press Esc to cancel the selection.",
        "Choose Tools - Options - LibreOffice Calc - View to change the display of formulas.",
        "Use the MINA function to find the smallest value in the range A1:B100.",
    ],
    "poems": ["明月 故乡 秋风", "春风 杨柳 江南", "边塞 黄沙 将军"],
    "hull": ["random 10 seed 1", "random 30 seed 4", "0.1 0.1; 0.9 0.2; 0.5 0.5; 0.8 0.9; 0.2 0.8; 0.4 0.3; 0.6 0.6"],
    "conversation": ["what kind of music do you like?", "do you have any pets?",
                     "have you ever been to a jazz concert?"],
    "chat": ["i just took a nap and now i feel worse", "what kind of music do you like?",
             "i love going to the beach in the summer\ndo you have any pets at home?"],
    "stories": ["random story task 1 seed 2000001", "random story task 2 seed 2000002",
                "John picked up the football. John went to the garden. Mary moved to the office. Where is the football?"],
    "copy": ["random copy 10 seed 1", "random copy 20 seed 2", "10110010 01100111 11110000 00001111"],
}
MODELS = {"debian-seq2seq": "debian", "debian-pointer": "debian", "debian-pointer-coverage": "debian", "debian-pointer-scst": "debian",
          "enzh-seq2seq": "enzh", "enzh-pointer-coverage": "enzh", "enzh-transformer": "enzh",
          "poem-mta": "poems", "poem-tav": "poems", "hull-ptrnet": "hull", "vae-plain": "chat", "vae-annealed": "chat",
          "chat-seq2seq": "conversation", "chat-hgfu": "conversation", "chat-seq2bf": "conversation",
          "memory-network": "stories", "ntm-copy": "copy", "copy-lstm": "copy"}
SETTINGS = {"beam_size": 4, "max_len": 30}


def golden_outputs() -> dict:
    """{model: [{"src", "output_tokens"}]} decoded now."""
    result = {}
    for name, exhibit in MODELS.items():
        model = load_checkpoint(CHECKPOINT_ROOT / name)
        result[name] = [{"src": src, "output_tokens": generate(model, src, DecodeSettings(**SETTINGS)).output_tokens}
                        for src in INPUTS[exhibit]]
    return result


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({"settings": SETTINGS, "outputs": golden_outputs()}, indent=1,
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
