"""Evaluate the sentence VAEs on the test sentences and give each checkpoint its latent map.

    python -m training.evaluate_vae [--models vae-plain vae-annealed]

Per checkpoint, on every test sentence (data/chitchat/sentences/test.jsonl.gz):
- ``nll``: reconstruction −log p(x|z) per sentence (nats) with one z ~ q(z|x) per sentence (seeded);
- ``kl``: KL(q(z|x) ‖ N(0, I)) per sentence (nats), exact;
- ``ppl``: per-word perplexity of the bound, exp((nll + kl) / words, ``</s>`` counted);
- ``active_units``: latent dimensions whose posterior-mean variance across the test set exceeds 0.01;
- ``reconstruction_bleu``: sacrebleu BLEU of greedy decodes from the posterior mean against the
  inputs (first ``--bleu-sentences`` test sentences);
- ``distinct_prior_samples``: distinct sentences among ``--samples`` greedy decodes from z ~ N(0, I).
Then a PCA (scikit-learn) of the posterior means of ``--map-size`` training sentences is stored in
the checkpoint (``map_points``, ``pca_components``, ``pca_center``, ``active_units`` buffers; the
sentences in config.json), which the app's latent map draws. Writes metrics.json ``test`` and the
model card.
"""
from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from safetensors.torch import load_file
from sklearn.decomposition import PCA

from gen_models.checkpoint import CHECKPOINT_ROOT, read_config, read_metrics, save_checkpoint
from gen_models.decoding import DecodeSettings, decode_companion
from gen_models.models.sentence_vae import SentenceVAE, VAEConfig
from gen_models.vocab import Vocab
from training.evaluation import save_results
from training.train_vae import read_sentences, sentence_batch

DATA = Path(__file__).resolve().parent.parent / "data" / "chitchat" / "sentences"
MODELS = ["vae-plain", "vae-annealed"]
ACTIVE_VARIANCE = 0.01
BATCH = 256


def load_unmapped(folder: Path) -> SentenceVAE:
    """A VAE checkpoint as training wrote it (its map buffers, if any, are recomputed here)."""
    config = read_config(folder)
    args = dict(config["args"], map_sentences=[])
    model = SentenceVAE(VAEConfig(**args), Vocab.load(folder / "vocab.txt"), name=folder.name)
    state = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()
             if not k.startswith(("map_points", "pca_", "active_units"))}
    model.load_state_dict(state, strict=False)
    return model.eval()


@torch.no_grad()
def posterior_means(model: SentenceVAE, sentences: list[list[str]]) -> np.ndarray:
    """(N, Z) posterior means."""
    means = []
    for i in range(0, len(sentences), BATCH):
        batch = sentence_batch(model, sentences[i : i + BATCH])
        means.append(model.posterior(batch["src"], batch["src_mask"])[0])
    return torch.cat(means).numpy()


@torch.no_grad()
def bound_terms(model: SentenceVAE, sentences: list[list[str]]) -> dict:
    """Per-sentence reconstruction NLL (one sampled z), KL, and the bound's per-word perplexity."""
    torch.manual_seed(0)
    model.train()  # z ~ q(z|x); no dropout layers in the model, word dropout is off
    nll = kl = words = 0.0
    for i in range(0, len(sentences), BATCH):
        chunk = sentences[i : i + BATCH]
        out = model(**sentence_batch(model, chunk))
        nll, kl, words = nll + float(out["nll"]) * len(chunk), kl + float(out["kl"]) * len(chunk), \
            words + float(out["tokens"]) * len(chunk)
    model.eval()
    n = len(sentences)
    return {"nll": nll / n, "kl": kl / n, "ppl": math.exp((nll + kl) / words)}


def greedy_text(model: SentenceVAE, z: torch.Tensor) -> str:
    """The greedy decode from one latent, through the generic search."""
    return decode_companion(model, model.encode_latent(z), DecodeSettings(strategy="greedy", max_len=30))


def evaluate(name: str, args: argparse.Namespace) -> dict:
    """Test metrics of one checkpoint; stores its latent map."""
    folder = CHECKPOINT_ROOT / name
    model = load_unmapped(folder)
    test = read_sentences(DATA, "test", 25)
    means = posterior_means(model, test)
    results = bound_terms(model, test)
    variance = means.var(axis=0)
    results["active_units"] = int((variance > ACTIVE_VARIANCE).sum())
    results["posterior_mean_variance"] = [round(float(v), 4) for v in variance]
    subset = test[: args.bleu_sentences]
    decoded = [greedy_text(model, torch.tensor(m)) for m in means[: len(subset)]]
    results["reconstruction_bleu"] = sacrebleu.corpus_bleu(decoded, [[" ".join(s) for s in subset]]).score
    prior = torch.randn(args.samples, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    samples = [greedy_text(model, z) for z in prior]
    results["distinct_prior_samples"] = len(set(samples))
    results["prior_sample_examples"] = samples[:10]
    results["reconstruction_examples"] = [{"input": " ".join(s), "output": d} for s, d in zip(subset[:10], decoded)]
    write_map(model, folder, variance > ACTIVE_VARIANCE, args.map_size)
    return results


def write_map(model: SentenceVAE, folder: Path, active: np.ndarray, size: int) -> None:
    """PCA of training sentences' posterior means into the checkpoint (weights unchanged)."""
    rng = random.Random(0)
    train = read_sentences(DATA, "train", 25)
    chosen = rng.sample(train, size)
    means = posterior_means(model, chosen)
    pca = PCA(n_components=2, random_state=0).fit(means)
    config = read_config(folder)
    extra = {k: v for k, v in config.items() if k not in ("model_type", "args")}
    mapped = SentenceVAE(VAEConfig(**dict(config["args"], map_sentences=[" ".join(s) for s in chosen])),
                         model.vocab, name=folder.name)
    weights = {k: v for k, v in model.state_dict().items() if k != "map_points"}
    mapped.load_state_dict(weights, strict=False)
    mapped.map_points.copy_(torch.tensor(pca.transform(means), dtype=torch.float32))
    mapped.pca_components.copy_(torch.tensor(pca.components_, dtype=torch.float32))
    mapped.pca_center.copy_(torch.tensor(pca.mean_, dtype=torch.float32))
    mapped.active_units.copy_(torch.tensor(active, dtype=torch.float32))
    extra["latent_map"] = {"sentences": size, "explained_variance": [round(float(v), 4)
                                                                    for v in pca.explained_variance_ratio_]}
    save_checkpoint(mapped, folder, extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--bleu-sentences", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--map-size", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in args.models:
        results = evaluate(name, args)
        save_results(name, {"test": results}, {"strategy": "greedy", "latent": "posterior mean"})
        (CHECKPOINT_ROOT / name / "README.md").write_text(model_card(name, read_metrics(CHECKPOINT_ROOT / name)),
                                                        encoding="utf-8")
        print(name, json.dumps({k: v for k, v in results.items() if not isinstance(v, list)}), flush=True)


def model_card(name: str, metrics: dict) -> str:
    """The checkpoint's README.md from its training arguments, curves and test results."""
    train, test = metrics["training"], metrics["test"]
    schedule = ("no annealing (KL weight 1 from the first update)" if train["anneal"] == "none" else
                f"logistic KL annealing w(t) = 1/(1 + exp(−{train['anneal_k']}·(t − {train['anneal_x0']:.0f})))")
    dropout = ("no word dropout" if not train["word_dropout"] else
               f"word dropout {train['word_dropout']} (keep rate {1 - train['word_dropout']:.2f})")
    curves = "\n".join(f"| {c['epoch']} | {c['updates']:,} | {c['kl_weight']:.3f} | {c['valid_nll']:.2f} | "
                       f"{c['valid_kl']:.2f} | {c['valid_ppl']:.1f} | {c['cpu_minutes']:.1f} |"
                       for c in metrics["curves"])
    recon = "\n".join(f"| {e['input']} | {e['output']} |" for e in test["reconstruction_examples"])
    samples = "\n".join(f"- {s}" for s in test["prior_sample_examples"])
    results_row = (f"| {test['nll']:.1f} | {test['kl']:.2f} | {test['ppl']:.1f} | {test['active_units']} of "
                   f"{len(test['posterior_mean_variance'])} | {test['reconstruction_bleu']:.1f} | "
                   f"{test['distinct_prior_samples']} |")
    return f"""# {name} — sentence VAE (Bowman et al. 2016)

Exhibit 6 of GenScope. GRU encoder (256) → Gaussian posterior over a {len(test['posterior_mean_variance'])}-dimensional
latent z → GRU decoder (256) whose first state is tanh(W z); embeddings 128, vocabulary 10,000.

- **Data**: short English chat sentences (3–25 tokens) from `chitchat-dataset` (MIT;
  `python data/prepare_chitchat.py`), split by conversation: 174,022 train / 6,812 valid / 9,155 test,
  held-out sentences unseen in train.
- **Training**: {schedule}; {dropout}. One thread, {train['cpu_budget']:.0f} CPU-minutes
  (`bash training/train_vae.sh` trains both VAEs); the epoch with the best validation ELBO is kept.
- **Evaluation**: `python -m training.evaluate_vae` (all 9,155 test sentences; BLEU on the first 1,000).

## Test results

| NLL (nats/sentence) | KL (nats/sentence) | perplexity of the bound | active units | reconstruction BLEU \
| distinct prior samples (of 100) |
|---|---|---|---|---|---|
{results_row}

## Curves (validation, posterior mean)

| epoch | updates | KL weight | NLL | KL | ppl | CPU minutes |
|---|---|---|---|---|---|---|
{curves}

## Ten reconstructions (greedy from the posterior mean)

| input | output |
|---|---|
{recon}

## Samples from the prior (greedy from z ~ N(0, I), seed 0)

{samples}
"""


if __name__ == "__main__":
    main()
