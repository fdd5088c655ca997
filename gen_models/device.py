"""Where models run: ``$GENSCOPE_DEVICE`` (or the CLI's ``--device``) is ``auto`` (the default: CUDA
when PyTorch sees a GPU, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

A model's weights and its decoding state live on that device; decoding creates its tensors next to
the source ids (``Encoded.source_ids.device``) and moves each step's internals to the host once,
for all hypotheses together. Hugging Face models keep their checkpoint's dtype on a GPU (fp16 or
bf16 weights stay so) and run in float32 on the CPU.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

DEVICE_ENV = "GENSCOPE_DEVICE"
CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: Optional[str] = None) -> torch.device:
    """The device named by ``choice`` or ``$GENSCOPE_DEVICE`` (ValueError naming the choices, or
    saying that no GPU is visible when CUDA is asked for)."""
    name = str(choice or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in CHOICES and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"{DEVICE_ENV} must be one of {', '.join(CHOICES)} or cuda:N, got {name[:40]!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_ENV}={name}, but PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    return torch.device(name)


def module_device(module: nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (the CPU for one with neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
