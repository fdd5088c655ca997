"""The chat evaluation's per-reply statistics by hand, and the Transformer chat model's word-level
tokenizer against GenScope's tokenizer (the same tokens, so perplexities compare)."""
from __future__ import annotations

import pytest

from gen_models.text import tokenize
from training.evaluate_chat import distinct, is_negative, is_question, reply_free_scores, repeats, safe_reply_rate

SENTENCES = ["I don't know, what's up?", "my phone battery dies too fast!!", "g++ and python3.11 at 5:30pm :)",
             "Café — naïve résumé", "what should i pack for a picnic", "ok.... lol   haha"]


def test_reply_statistics_by_hand():
    outputs = [["i", "don't", "know"], ["i", "don't", "know"], ["what", "do", "you", "do", "?"],
               ["i", "like", "to", "cook", ",", "i", "like", "to", "cook"]]
    assert [is_question(o) for o in outputs] == [False, False, True, False]
    assert [is_negative(o) for o in outputs] == [True, True, False, False]
    assert [repeats(o) for o in outputs] == [False, False, False, True]
    assert safe_reply_rate(outputs, top=1) == 0.5
    assert distinct(outputs, 1) == pytest.approx(11 / 20)  # i, don't, know, what, do, you, ?, like, to, cook and ","
    rows = [{"predicted": "cook"}, {"predicted": ""}, {"predicted": "music"}, {"predicted": "cook"}]
    rows = [{**r, "src": q} for r, q in zip(rows, ["i love cooking", "hi", "any music?", "do you cook?"])]
    scores = reply_free_scores(rows, outputs)
    assert scores["keyword_in_output"] == pytest.approx(1 / 3)  # rows with a keyword: 3, used in 1
    assert scores["question_rate"] == 0.25 and scores["negative_rate"] == 0.5 and scores["repetition_rate"] == 0.25
    assert scores["contradiction_rate"] == 0.0
    chosen = reply_free_scores(rows, outputs, ["know", None, "you", "music"])  # a keyword model's own choices
    assert chosen["keyword_in_output"] == pytest.approx(2 / 3)  # know: used, you: used, music: not


def test_contradiction_rules_by_hand_and_on_the_labelled_pairs():
    """Both rules on cases of their own, and the accuracy README quotes on the 50 hand-labelled
    pairs (a change of rule or threshold that loses accuracy fails here)."""
    from gen_models.contradiction import contradicts, feeling_clash, labelled_accuracy, polarity_words, self_contradiction

    assert self_contradiction("i don't like, i like") and self_contradiction("yes, i am a student. i'm not a student")
    assert not self_contradiction("i really like to cook, but i really like to cook")
    assert not self_contradiction("i don't know, i like sushi")  # "know" is negated, "sushi" affirmed
    assert polarity_words(tokenize("i never eat meat, i eat fish")) == ({"eat", "fish"}, {"eat", "meat"})
    assert feeling_clash("i failed my exam", "that's great! good for you")
    assert not feeling_clash("i failed my exam", "oh no, i'm sorry to hear that")
    assert contradicts("what kind of music do you like?", "i don't like music, but i like music")
    measured = labelled_accuracy()
    assert measured["pairs"] == 50 and measured["accuracy"] >= 0.82 and measured["precision"] >= 0.85


def test_word_level_tokenizer_splits_as_genscope():
    from training.train_transformer import train_word_tokenizer

    tokenizer = train_word_tokenizer([tokenize(s) for s in SENTENCES * 2], 1000)
    for sentence in SENTENCES:
        ids = tokenizer(sentence)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids) == ["<s>", *tokenize(sentence), "</s>"]
    assert tokenizer.convert_ids_to_tokens(tokenizer("zebra")["input_ids"]) == ["<s>", "<unk>", "</s>"]


def test_shipped_chat_transformer_reads_the_rnn_vocabulary():
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
    from gen_models.vocab import Vocab

    folder = CHECKPOINT_ROOT / "chat-transformer"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("chat-transformer not shipped")
    model = load_checkpoint(folder)
    rnn = Vocab.load(CHECKPOINT_ROOT / "chat-seq2seq" / "vocab.txt")
    assert set(model.tokenizer.get_vocab()) == set(rnn.itos)
    text = "i don't know what kind of music you like, haha!"
    pieces = model.tokenizer.convert_ids_to_tokens(model.reference_ids(text, []))
    assert pieces == [t if t in rnn.stoi else "<unk>" for t in tokenize(text)]


def test_shipped_chat_transformer_reads_its_input():
    """The collapse this model once had (a reply LM that ignores the message) would pass every view
    test: its replies to each test pair's own message must score better than to another's, and
    different messages must get different replies."""
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
    from gen_models.decoding import DecodeSettings, generate
    from training.evaluate_chat import DATA, _hf_nll
    from training.evaluation import read_rows

    folder = CHECKPOINT_ROOT / "chat-transformer"
    if not (folder / "model.safetensors").is_file():
        pytest.skip("chat-transformer not shipped")
    model = load_checkpoint(folder)
    rows = read_rows(DATA, "test")[:200]
    far = rows[100:] + rows[:100]  # consecutive pairs are consecutive turns: take messages far away
    true_nll, n = _hf_nll(model, rows)
    other_nll, _ = _hf_nll(model, [{**r, "src": f["src"]} for r, f in zip(rows, far)])
    assert (other_nll - true_nll) / n > 0.05, (true_nll / n, other_nll / n)
    replies = {generate(model, q, DecodeSettings(beam_size=4, max_len=20, record=False)).output_text
               for q in ("what kind of music do you like?", "do you have any pets?", "what is your favorite food?",
                         "i just got back from a trip to japan")}
    assert len(replies) >= 3, replies


def test_shipped_chat_transformer_falls_back_on_safe_replies_less_than_seq2seq():
    """Negative training's point, on the 100 development queries unlike the corpus (as each model
    decodes by default): fewer replies among the model's ten most frequent than chat-seq2seq
    (37% against 53% when shipped), and more distinct bigrams."""
    from gen_models.checkpoint import CHECKPOINT_ROOT, load_checkpoint
    from gen_models.decoding import DecodeSettings
    from training.evaluate_chat import (EVERYDAY_DEV, distinct, everyday_rows, output_tokens_in_reading_order,
                                        safe_reply_rate)
    from training.evaluation import decode_split

    if not (CHECKPOINT_ROOT / "chat-transformer" / "model.safetensors").is_file():
        pytest.skip("chat-transformer not shipped")
    rows = everyday_rows(EVERYDAY_DEV)
    measured = {}
    for name in ("chat-transformer", "chat-seq2seq"):
        settings = DecodeSettings.for_model(load_checkpoint(CHECKPOINT_ROOT / name).features, beam_size=4, max_len=30,
                                            record=False)
        outputs = [output_tokens_in_reading_order(t) for t in decode_split(name, rows, settings)[0]]
        measured[name] = (safe_reply_rate(outputs), distinct(outputs, 2))
    (transformer_safe, transformer_d2), (seq2seq_safe, seq2seq_d2) = measured["chat-transformer"], measured["chat-seq2seq"]
    assert transformer_safe <= seq2seq_safe - 0.08 and transformer_d2 > seq2seq_d2, measured
