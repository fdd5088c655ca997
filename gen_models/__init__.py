"""GenScope's engine: generators, the stepper protocol, generic traced decoding, checkpoints."""
from .checkpoint import list_checkpoints, load_checkpoint
from .decoding import DecodeSettings, generate
from .trace import BeamNode, Candidate, GenerationTrace, Step

__all__ = ["BeamNode", "Candidate", "DecodeSettings", "GenerationTrace", "Step", "generate",
           "list_checkpoints", "load_checkpoint"]
