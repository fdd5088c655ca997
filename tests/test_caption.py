"""Show, attend and tell on generated scenes: the scenes and their grammar against their own objects,
the claim checker, pictures as text, decoding through the generic search, the views, the CLI and the
app's API."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from gen_models.decoding import DecodeSettings, generate
from gen_models.models.captioner import AttentionCaptioner, CaptionConfig, caption_batch, caption_vocab
from gen_models.scenes import (
    CANVAS,
    COLOURS,
    SHAPES,
    SceneObject,
    check_caption,
    image_data_url,
    parse_scene_seed,
    random_scene,
    read_image_text,
    word_referents,
)
from gen_models.trace import GenerationTrace
from training.caption_metrics import (cell_centres, cell_overlaps_box, in_box, named_regions, object_evenness,
                                     pointing, repeated_peaks)
from visualizers.caption import attention_total_figure, caption_strip_figure, word_attention_figure
from visualizers.common import ViewOptions


def tiny_captioner() -> AttentionCaptioner:
    torch.manual_seed(0)
    vocab = caption_vocab()
    return AttentionCaptioner(CaptionConfig(len(vocab), 8, 16, 8, channels=(4, 4, 4, 4)), vocab, name="tiny").eval()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_every_scene_is_captioned_truly_and_its_objects_lie_apart_on_the_canvas(seed):
    scene = random_scene(seed)
    assert scene.image.shape == (CANVAS, CANVAS, 3) and 1 <= len(scene.objects) <= 4
    for i, obj in enumerate(scene.objects):
        assert 0 <= obj.box[0] < obj.box[2] <= CANVAS and 0 <= obj.box[1] < obj.box[3] <= CANVAS
        for other in scene.objects[i + 1:]:
            assert obj.box[2] <= other.box[0] or other.box[2] <= obj.box[0] or \
                obj.box[3] <= other.box[1] or other.box[3] <= obj.box[1]
    claims = check_caption(scene.caption, scene.objects)
    assert claims and all(c.true for c in claims), (scene.caption, claims)
    words, referents = scene.caption.split(), word_referents(scene.caption, scene.objects)
    assert len(referents) == len(words)
    for word, named in zip(words, referents):
        if named is not None:  # a colour or shape word names objects of that colour / shape
            assert named and all(word in (scene.objects[i].colour, scene.objects[i].shape,
                                          scene.objects[i].shape + "s") for i in named)
    assert np.array_equal(random_scene(seed).image, scene.image)


def objects(*specs) -> list[SceneObject]:
    return [SceneObject(shape, colour, size, list(box)) for shape, colour, size, box in specs]


def test_false_claims_are_caught_attributes_counts_and_relations():
    scene = objects(("circle", "red", "small", (2, 30, 12, 40)), ("square", "blue", "large", (40, 28, 60, 48)))
    assert [c.true for c in check_caption("a small red circle left of a large blue square", scene)] == [True] * 3
    assert [c.true for c in check_caption("a large blue square left of a small red circle", scene)] == [True, True, False]
    assert [c.true for c in check_caption("a small green circle", scene)] == [False]
    assert [c.true for c in check_caption("two red circles", scene)] == [False]
    assert check_caption("a red circle", scene) is None  # a singular phrase names its size
    assert check_caption("left of a small red circle", scene) is None


@pytest.mark.parametrize("text, seed", [("random scene seed 7", 7), ("Random scene 12", 12), ("random scene", 0)])
def test_scene_seeds_parse_and_bad_ones_are_named(text, seed):
    assert parse_scene_seed(text) == seed
    with pytest.raises(ValueError, match="random scene seed S"):
        parse_scene_seed("a red circle")
    with pytest.raises(ValueError, match="seed must be at most"):
        parse_scene_seed("random scene seed 99999999999")


def test_a_picture_travels_as_text_and_malformed_pictures_are_named():
    scene = random_scene(5)
    assert np.array_equal(read_image_text(image_data_url(scene.image)), scene.image)
    wide = Image.new("RGBA", (300, 100), (0, 0, 0, 0))  # transparent: flattened on white, padded square
    ImageDraw.Draw(wide).ellipse((120, 20, 180, 80), fill=(220, 40, 40, 255))
    pixels = read_image_text(image_data_url(wide))
    assert pixels.shape == (CANVAS, CANVAS, 3) and (pixels[0, 0] == 255).all() and pixels[32, 32, 0] > 150
    for text, message in [("image data:image/png;base64,@@@", "must be 'image data:image/png;base64"),
                          ("image data:image/png;base64,aGVsbG8=", "could not be read")]:
        with pytest.raises(ValueError, match=message):
            read_image_text(text)


def test_the_doubly_stochastic_term_is_the_squared_gap_of_each_regions_total_attention():
    model = tiny_captioner().train()
    batch = caption_batch([1, 2, 3], model.vocab)
    out = model(batch["images"], batch["dec_in"], batch["target"])
    state = model.initial_state(model.encoder(batch["images"]))
    totals = torch.zeros(3, 64)
    for t in range(batch["target"].size(1)):
        _, state, alpha, _ = model.decode_step(state, batch["dec_in"][:, t])
        totals += alpha * (batch["target"][:, t] != model.vocab.pad_id).float()[:, None]
    assert torch.allclose(out["doubly_stochastic"], ((1 - totals) ** 2).sum(1).mean(), atol=1e-4)


def test_attention_supervision_targets_the_named_objects_cells_and_training_on_it_points():
    """Liu et al. (2017)'s attention correctness: each colour or shape word's targets are the cells
    the pointing score accepts (centre inside a named box); the loss is −log of the emitting step's
    mass on them; a few optimiser steps on it alone raise pointing on the batch's own scenes."""
    torch.manual_seed(0)
    model = tiny_captioner().train()
    batch = caption_batch(list(range(8)), model.vocab)
    words = [scene.caption.split() for scene in batch["scenes"]]
    regions = named_regions(words, batch["scenes"], 8, 64, batch["target"].size(1))  # (B, T, 64)
    centres = cell_centres(8, 64)
    for b, (caption, scene) in enumerate(zip(words, batch["scenes"])):
        for t, referents in enumerate(word_referents(" ".join(caption), scene.objects)):
            cells = set(regions[b, t].nonzero().flatten().tolist())
            if not referents:
                assert not cells  # size, count and joining words, and the end, are not supervised
                continue
            assert cells and all(any(in_box(centres[i], scene.objects[o].box) for o in referents) for i in cells) \
                or all(any(cell_overlaps_box(i, 8, 64, scene.objects[o].box) for o in referents) for i in cells)

    def scores() -> tuple[float, float]:
        model.eval()
        hits = []
        with torch.no_grad():
            out = model(batch["images"], batch["dec_in"], batch["target"], regions)
            state = model.initial_state(model.encoder(batch["images"]))
            alphas = []
            for t in range(batch["target"].size(1)):
                _, state, alpha, _ = model.decode_step(state, batch["dec_in"][:, t])
                alphas.append(alpha)
            attention = torch.stack(alphas, 1).numpy()  # (B, T, 64), teacher-forced
        for b, (caption, scene) in enumerate(zip(words, batch["scenes"])):
            hits += pointing(caption, attention[b, : len(caption)], scene.objects, 8, 64)
        model.train()
        return float(out["attention_supervision"]), float(np.mean(hits))

    loss_before, pointing_before = scores()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = model(batch["images"], batch["dec_in"], batch["target"], regions)["attention_supervision"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loss_after, pointing_after = scores()
    assert loss_after < 0.5 * loss_before and pointing_after > pointing_before + 0.2


def test_beam_search_captions_a_scene_with_attention_over_the_grid_and_the_scene_in_extra():
    trace = generate(tiny_captioner(), "random scene seed 3", DecodeSettings(beam_size=3, max_len=6))
    scene = random_scene(3)
    assert len(trace.source_tokens) == 64 and trace.source_tokens[:2] == ["r0c0", "r0c1"]
    assert all(s.attention.shape == (64,) and abs(s.attention.sum() - 1) < 1e-5 for s in trace.steps)
    assert all(0 <= s.extra["beta"] <= 1 for s in trace.steps)
    assert trace.extra["grid"] == 8 and trace.extra["image_size"] == [CANVAS, CANVAS]
    assert np.array_equal(trace.extra["image"], scene.image) and trace.extra["true_caption"] == scene.caption
    assert trace.extra["objects"] == scene.object_dicts() and not {"<s>", "<pad>", "<unk>"} & set(trace.output_tokens)
    back = GenerationTrace.from_json(trace.to_json())
    assert back.to_json() == GenerationTrace.from_json(back.to_json()).to_json()
    for figure in (word_attention_figure, caption_strip_figure, attention_total_figure):
        assert figure(back, ViewOptions(pinned_step=1)).data  # drawn from the JSON round trip too


def test_the_picture_view_overlays_the_pinned_words_attention_and_the_boxes():
    trace = generate(tiny_captioner(), "random scene seed 3", DecodeSettings(strategy="greedy", max_len=5))
    figure = word_attention_figure(trace, ViewOptions(pinned_step=2))
    heat = figure.data[1]
    assert np.allclose(np.asarray(heat.z).reshape(-1), trace.steps[2].attention)
    assert (np.asarray(heat.customdata) == 2).all() and len(figure.layout.shapes) == len(trace.extra["objects"])
    assert f"word 2 “{trace.steps[2].token}”" in figure.layout.title.text
    strip = caption_strip_figure(trace, ViewOptions())
    assert sum(d.type == "heatmap" for d in strip.data) == len(trace.steps)
    trace.steps[0].attention = np.ones(10) / 10
    with pytest.raises(ValueError, match="does not fit a 8 × 8 grid"):
        word_attention_figure(trace, ViewOptions(pinned_step=0))


def test_pointing_repeats_and_evenness_read_the_attention_against_the_boxes():
    scene = objects(("circle", "red", "small", (0, 0, 12, 12)), ("square", "blue", "large", (40, 40, 64, 64)))
    caption = "a small red circle above a large blue square".split()
    attention = np.full((len(caption), 64), 1e-3)
    attention[:4, 0] = 1  # the circle's words on the top-left cell
    attention[4:, 63] = 1  # the square's words on the bottom-right cell
    assert pointing(caption, attention, scene, 8, 64) == [True, True, True, True]
    attention[7, 0] = 2  # "blue" peaks on the circle
    assert pointing(caption, attention, scene, 8, 64) == [True, True, False, True]
    assert repeated_peaks(np.eye(4, 64)) == 0 and repeated_peaks(np.eye(4, 64)[[0, 0, 1, 1]]) == 0.5
    assert object_evenness(np.eye(64)[[0, 63]], scene, 8, 64) == pytest.approx(1)


def test_cli_traces_a_picture_file_and_refuses_one_for_a_text_model(tmp_path, checkpoint_root, capsys):
    from gen_models.__main__ import main

    path = tmp_path / "drawing.png"
    Image.fromarray(random_scene(4).image).save(path)
    main(["--root", str(checkpoint_root), "trace", "--model", "tiny-caption", "--image", str(path), "--max-len", "4"])
    trace = json.loads(capsys.readouterr().out)
    assert trace["extra"]["grid"] == 8 and "objects" not in trace["extra"] and len(trace["steps"][0]["attention"]) == 64
    with pytest.raises(SystemExit):
        main(["--root", str(checkpoint_root), "trace", "--model", "tiny-seq2seq", "--image", str(path)])
    assert "--image is for models that read a picture" in capsys.readouterr().err


def test_a_drawing_becomes_the_input_text_and_an_empty_canvas_changes_nothing():
    from ui.picture import picture_text

    canvas = np.zeros((256, 256, 4), dtype=np.uint8)
    assert picture_text({"composite": canvas}) == {"__type__": "update"}
    canvas[100:160, 100:160] = (40, 80, 220, 255)
    text = picture_text({"composite": canvas, "background": None, "layers": []})
    assert text.startswith("image data:image/png;base64,") and read_image_text(text)[32, 32, 2] > 150


def test_app_traces_a_scene_and_shows_the_picture_tab(app_url):
    from gradio_client import Client

    from tests.test_app_api import named, plot_json
    from ui.handlers import model_outputs, trace_outputs

    client = Client(app_url, verbose=False)
    card = named(client.predict("tiny-caption", "", api_name="/model_card"), model_outputs())
    assert card["picture_input"]["visible"] is True and card["text"]["value"] == "random scene seed 3"
    outputs = named(client.predict("tiny-caption", "random scene seed 3", api_name="/trace", max_len=5), trace_outputs())
    trace = json.loads(outputs["trace_json"])
    assert trace["extra"]["grid"] == 8 and len(trace["extra"]["objects"]) == len(random_scene(3).objects)
    picture = plot_json(outputs["picture"])
    assert picture["layout"]["title"]["text"].startswith("Attention on the picture at word 0")
    assert outputs["caption_strip"]["visible"] and outputs["hull"]["visible"] is False
    drawn = named(client.predict("tiny-caption", image_data_url(random_scene(9).image), api_name="/trace",
                                 max_len=5),
                  trace_outputs())
    assert "objects" not in json.loads(drawn["trace_json"])["extra"]
    hull_card = named(client.predict("tiny-hull", "", api_name="/model_card"), model_outputs())
    assert hull_card["picture_input"]["visible"] is False


def test_vocabulary_holds_every_word_the_grammar_writes():
    vocab = caption_vocab()
    for seed in range(40):
        assert all(w in vocab.stoi for w in random_scene(seed).caption.split())
    assert all(c in vocab.stoi for c in COLOURS) and all(s in vocab.stoi and s + "s" in vocab.stoi for s in SHAPES)
