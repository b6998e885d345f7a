#!/usr/bin/python3
"""Generate digit images unlike MNIST for kaggle/photo: tests/fixtures/photo/.

Two kinds, every choice drawn from one fixed seed (nothing hand-picked):
  font-*   digits rendered from Debian's DejaVu fonts (fonts-dejavu-core, fonts-dejavu-extra): several faces and
           weights, 60-200 px canvases, off-centre, slightly rotated, light or dark background, coloured ink,
           noise, PNG or JPEG;
  train-*  train.csv digits made into "photos": scaled up 3-9x, thickened or thinned, dark ink on light coloured
           paper with uneven lighting, off-centre, noise, saved as JPEG. The rows are drawn from the default preset's
           hold-out (a run's val_ids.npy), so a model trained with that split has never seen them.
labels.csv lists file,label,source,row; sources.npy holds the 28x28 train.csv digit of each train-* image (uint8
(n, 28, 28), in labels.csv order of the train-* rows) so a test can compare the preprocessing with the original.

Needs python3-pil and python3-numpy (Debian). Usage:
  tests/kaggle/gen_photos.py --train data/train.npy --val-ids RUN/val_ids.npy [--seed S] [--out DIR]
The committed set (tests/fixtures/photo) is seed 16 with the default preset's split (val-frac 0.1, split-seed 1).
"""
import argparse
import csv
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 16
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Oblique.ttf",
         "DejaVuSansCondensed.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSans-ExtraLight.ttf"]
PER_DIGIT_FONT = 3
PER_DIGIT_TRAIN = 3


def load_train(path):
    a = np.load(path)  # structured: label, pixels
    names = a.dtype.names
    labels = np.asarray(a[names[0]]).astype(np.int64)
    pix = np.asarray(a[names[1]]).reshape(len(a), 28, 28).astype(np.uint8)
    return labels, pix


def noise_and_save(rng, img, fmt):
    """Add sensor noise to an RGB image and encode it (PNG or JPEG) -> bytes."""
    a = np.asarray(img).astype(np.float32)
    a += rng.normal(0, rng.uniform(3, 12), a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, "PNG", optimize=True)
    else:
        img.save(buf, "JPEG", quality=int(rng.integers(55, 90)))
    return buf.getvalue()


def colours(rng, light_bg):
    paper = tuple(int(v) for v in rng.integers(200, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    return (paper, ink) if light_bg else (ink, paper)


def font_image(rng, digit):
    face = FONTS[int(rng.integers(len(FONTS)))]
    side = int(rng.integers(60, 201))
    size = int(side * rng.uniform(0.35, 0.7))
    font = ImageFont.truetype(os.path.join(FONT_DIR, face), size)
    light = rng.random() < 0.7
    bg, ink = colours(rng, light)
    glyph = Image.new("L", (side, side), 0)
    d = ImageDraw.Draw(glyph)
    box = d.textbbox((0, 0), str(digit), font=font)
    gw, gh = box[2] - box[0], box[3] - box[1]
    x = int(rng.integers(0, max(1, side - gw))) - box[0]
    y = int(rng.integers(0, max(1, side - gh))) - box[1]
    d.text((x, y), str(digit), fill=255, font=font)
    glyph = glyph.rotate(float(rng.uniform(-8, 8)), resample=Image.BILINEAR)
    img = Image.composite(Image.new("RGB", glyph.size, ink), Image.new("RGB", glyph.size, bg), glyph)
    fmt = "png" if rng.random() < 0.3 else "jpg"
    return face, fmt, noise_and_save(rng, img, fmt)


def train_image(rng, digit28):
    scale = int(rng.integers(3, 10))
    g = Image.fromarray(digit28, "L").resize((28 * scale, 28 * scale), Image.BICUBIC)
    stroke = rng.choice(["thin", "normal", "thick"])
    r = 2 * max(1, scale // 3) + 1
    if stroke == "thick":
        g = g.filter(ImageFilter.MaxFilter(r))
    elif stroke == "thin":
        g = g.filter(ImageFilter.MinFilter(r))
    side = int(28 * scale * rng.uniform(1.3, 2.2))
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(g, (int(rng.integers(0, side - g.width)), int(rng.integers(0, side - g.height))))
    paper, ink = colours(rng, True)
    # uneven lighting: the paper darkens towards one corner by up to 25%
    yy, xx = np.mgrid[0:side, 0:side] / side
    light = 1 - rng.uniform(0, 0.25) * (xx * rng.uniform() + yy * rng.uniform())
    m = np.asarray(canvas, np.float32)[..., None] / 255
    a = (np.array(paper, np.float32) * light[..., None]) * (1 - m) + np.array(ink, np.float32) * m
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    if side > 240:  # keep the committed set small
        img = img.resize((240, 240), Image.BILINEAR)
    return stroke, noise_and_save(rng, img, "jpg")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="data/train.npy (digits-ingest output)")
    ap.add_argument("--val-ids", required=True, help="a default-preset run's val_ids.npy (the hold-out rows)")
    ap.add_argument("--seed", type=int, default=SEED, help="another seed gives a fresh set (default %(default)s)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures", "photo"))
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    labels, pix = load_train(a.train)
    val = np.sort(np.load(a.val_ids).astype(np.int64))
    os.makedirs(a.out, exist_ok=True)
    rows, sources = [], []
    for digit in range(10):
        for k in range(PER_DIGIT_FONT):
            face, fmt, data = font_image(rng, digit)
            name = f"font-{digit}-{k}.{fmt}"
            open(os.path.join(a.out, name), "wb").write(data)
            rows.append((name, digit, face, -1))
    for digit in range(10):
        pool = val[labels[val] == digit]
        for k, row in enumerate(rng.choice(pool, PER_DIGIT_TRAIN, replace=False)):
            stroke, data = train_image(rng, pix[row])
            name = f"train-{digit}-{k}.jpg"
            open(os.path.join(a.out, name), "wb").write(data)
            rows.append((name, digit, "train.csv " + stroke, int(row)))
            sources.append(pix[row])
    with open(os.path.join(a.out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "source", "row"])
        w.writerows(rows)
    np.save(os.path.join(a.out, "sources.npy"), np.stack(sources))
    total = sum(os.path.getsize(os.path.join(a.out, r[0])) for r in rows)
    print(f"{len(rows)} images, {total // 1024} KB, in {a.out}")


if __name__ == "__main__":
    main()
