"""Images: every mode to RGB, EXIF orientation, the eval transform, and clean failures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import swintrace
from swintrace.cli import main
from swintrace.images.prepare import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, load_image, to_rgb


def _white_value(channel: int) -> float:
    return (1.0 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]


def test_transparent_pixels_become_white(tmp_path):
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent red
    image.putpixel((0, 0), (0, 0, 255, 255))
    path = tmp_path / "rgba.png"
    image.save(path)
    assert to_rgb(Image.open(path)).getpixel((20, 20)) == (255, 255, 255)
    assert to_rgb(Image.open(path)).getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize(
    ("mode", "color", "expected"),
    [
        ("L", 128, (128, 128, 128)),
        ("LA", (128, 0), (255, 255, 255)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("I;16", 65535, (255, 255, 255)),
        ("I;16", 32896, (128, 128, 128)),
        ("1", 1, (255, 255, 255)),
        ("RGB", (10, 20, 30), (10, 20, 30)),
    ],
)
def test_every_mode_becomes_rgb(mode, color, expected):
    assert to_rgb(Image.new(mode, (8, 8), color)).getpixel((3, 3)) == expected


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0] + [0, 255, 0] * 255)
    image.info["transparency"] = 0
    path = tmp_path / "p.png"
    image.save(path, transparency=0)
    assert to_rgb(Image.open(path)).getpixel((1, 1)) == (255, 255, 255)


def test_eval_transform_geometry_and_values():
    image = Image.new("RGB", (451, 300), (255, 255, 255))
    display = EvalTransform.standard(224).apply(image)
    assert display.size == (224, 224) and EvalTransform.standard(224) == EvalTransform(256, 224)
    assert EvalTransform(224, None).apply(image).size == (int(224 * 451 / 300), 224)
    assert EvalTransform(384, None, square=True).apply(image).size == (384, 384)
    # torchvision's Swin-T transform: shorter side to 232, then the center 224 x 224
    gradient = Image.fromarray(np.tile(np.arange(451, dtype=np.uint16) % 256, (300, 1)).astype(np.uint8))
    resized = gradient.resize((int(232 * 451 / 300), 232), Image.BICUBIC)
    left = int(round((resized.width - 224) / 2.0))
    expected = np.asarray(resized.crop((left, 4, left + 224, 228)))
    assert np.array_equal(np.asarray(EvalTransform(232, 224).apply(gradient)), expected)
    loaded_tensor = swintrace.images.prepare.to_tensor(display)
    assert loaded_tensor.shape == (1, 3, 224, 224)
    for channel in range(3):
        assert loaded_tensor[0, channel].allclose(torch.full((224, 224), _white_value(channel)))


def test_a_sources_data_config_becomes_a_transform():
    from swintrace.images.prepare import INTERPOLATIONS
    from swintrace.trace.validate import INTERPOLATION_NAMES

    assert tuple(INTERPOLATIONS) == INTERPOLATION_NAMES  # a trace names the filters images are resized with
    timm = EvalTransform.from_data_config(224, {"crop_pct": 0.9, "interpolation": "bicubic"})
    assert timm == EvalTransform(248, 224)  # timm: floor(224 / 0.9), then the center 224
    squash = EvalTransform.from_data_config(224, {"crop_pct": 0.95, "crop_mode": "squash", "mean": (0.5,) * 3})
    assert (squash.resize, squash.crop, squash.square, squash.mean) == (235, 224, True, (0.5, 0.5, 0.5))
    image = Image.new("RGB", (451, 300), (255, 255, 255))
    assert squash.apply(image).size == (224, 224)
    assert squash.describe() == ("resized to 235x235 (bicubic), center crop 224, "
                                 "normalised with mean (0.5, 0.5, 0.5) and std (0.229, 0.224, 0.225)")
    assert EvalTransform.from_dict(squash.to_dict()) == squash and "mean" not in timm.to_dict()
    white = squash.to_tensor(squash.apply(image))  # 1, 3, 224, 224: (1 - mean) / std, the source's own
    assert torch.allclose(white[0, :, 0, 0], (1 - torch.tensor(0.5)) / torch.tensor(squash.std))
    with pytest.raises(swintrace.UserError, match="one of the filters nearest, bilinear"):
        EvalTransform(224, 224, interpolation="random")


def test_exif_rotation_traces_like_the_upright_image(tmp_path, teach_model):
    upright = Image.new("RGB", (48, 32))
    for x in range(48):
        for y in range(32):
            upright.putpixel((x, y), (x * 5, y * 7, (x * y) % 256))
    upright.save(tmp_path / "upright.png")
    rotated = upright.transpose(Image.Transpose.ROTATE_90)  # stored turned 90 degrees CCW...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...and tagged "turn 90 degrees CW to view"
    rotated.save(tmp_path / "rotated.png", exif=exif)
    a = load_image(tmp_path / "upright.png", 32)
    b = load_image(tmp_path / "rotated.png", 32)
    assert torch.equal(a.tensor, b.tensor)
    with torch.no_grad():
        assert torch.equal(teach_model(a.tensor), teach_model(b.tensor))


def _run(tmp_path, image_path, capsys):
    code = main(["run", "--model", "swin_teach", "--image", str(image_path), "--out", str(tmp_path / "t.jsonl")])
    return code, capsys.readouterr().err.strip().splitlines()


def test_cat_traces(tmp_path, capsys):
    code, _ = _run(tmp_path, "examples/cat.jpg", capsys)
    assert code == 0
    header = swintrace.load_trace(tmp_path / "t.jsonl").header
    # swin_teach's trained weights saw 32x32 images whole: any image is resized to that, not cropped
    assert header["input"]["description"] == "image cat.jpg (451x300), resized to 32x32 (bicubic)"
    assert header["input"]["shape"] == [1, 3, 32, 32] and len(header["input"]["thumbnail_png"]) > 100


def test_the_sample_cat_ships_inside_the_package_and_traces_from_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no examples/ here: the installed package's own copy
    assert main(["run", "--model", "swin_teach", "--image", "sample:cat", "--out", "t.jsonl"]) == 0
    header = swintrace.load_trace(tmp_path / "t.jsonl").header
    assert header["input"]["description"] == "image sample:cat (451x300), resized to 32x32 (bicubic)"
    assert main(["run", "--model", "swin_teach", "--image", "sample:dog", "--out", "t.jsonl"]) == 2
    assert "unknown sample image 'dog'; the samples: cat" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jpg", None, "image not found"),
        ("empty.jpg", b"", "image file is empty"),
        ("text.jpg", b"this is not a picture\n", "not an image Pillow can read"),
        ("random.png", bytes(range(256)) * 8, "not an image Pillow can read"),
    ],
)
def test_bad_images_fail_cleanly(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, err = _run(tmp_path, path, capsys)
    assert code == 2 and len(err) == 1 and message in err[0]


def test_directory_and_truncated_jpeg(tmp_path, capsys):
    code, err = _run(tmp_path, tmp_path, capsys)
    assert code == 2 and "is a directory" in err[0]
    whole = (tmp_path / "whole.jpg")
    Image.new("RGB", (64, 64), (200, 10, 10)).save(whole, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 2])
    code, err = _run(tmp_path, truncated, capsys)
    assert code == 2 and len(err) == 1 and "truncated.jpg" in err[0]


def test_decompression_bomb_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is over twice the limit
    code, err = _run(tmp_path, path, capsys)
    assert code == 2 and len(err) == 1 and "refused bomb.png" in err[0]


def test_odd_sizes_and_no_crop(tmp_path, capsys):
    Image.new("RGB", (7, 200), (0, 128, 255)).save(tmp_path / "thin.png")  # thin, within the 32:1 limit
    out = tmp_path / "thin.jsonl"
    assert main(["run", "--model", "swin_teach", "--image", str(tmp_path / "thin.png"), "--no-crop",
                 "--size", "20", "--out", str(out)]) == 0
    assert swintrace.load_trace(out).header["input"]["shape"] == [1, 3, int(20 * 200 / 7), 20]
