#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses into corpus/<parser>/ (committed; re-run to regenerate).

Text formats (spec, policy, preset) are copied from experiments/ and tests/fixtures/; the binary ones are made here,
small but valid, plus a few near-misses, so each harness starts past its format's first checks. Files a fuzz run
found crashing are added by hand as corpus/<parser>/crash-<what> and are not touched by this script.
Plain Python, no dependencies.
"""
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "corpus")


def put(parser, name, data):
    d = os.path.join(OUT, parser)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(parser, src):
    put(parser, os.path.basename(src), open(os.path.join(ROOT, src), "rb").read())


def npy(descr, shape, payload=b""):
    shp = "(" + "".join("%d," % s for s in shape) + ")" if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"
    d = "{'descr': %s, 'fortran_order': False, 'shape': %s, }" % (descr, shp)
    total = (10 + len(d) + 1 + 63) // 64 * 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", total - 10) + (d + " " * (total - 10 - len(d) - 1) + "\n").encode() + payload


def pixel(r, p):
    y, x = divmod(p, 28)
    return (p * 31 + r * 17) % 256 if 8 <= y <= 20 and 10 <= x <= 17 else 0


# ---- text formats ----
for f in sorted(os.listdir(os.path.join(ROOT, "experiments/models"))):
    if f in ("mlp2.spec", "lenet5.spec", "deotte.spec"):
        copy("spec", "experiments/models/" + f)
for f in ("tiny.spec", "tinycnn.spec", "every_key.spec", "bad_key.spec"):
    copy("spec", "tests/fixtures/spec/" + f)
for f in sorted(os.listdir(os.path.join(ROOT, "experiments/policies"))):
    copy("policy", "experiments/policies/" + f)
for f in ("all.policy", "negative_sigma.policy", "typo.policy"):
    copy("policy", "tests/fixtures/augment/" + f)
for f in sorted(os.listdir(os.path.join(ROOT, "experiments/presets"))):
    copy("preset", "experiments/presets/" + f)
put("preset", "every_key.preset",
    "split folds=5 split-seed=3\nmembers model=mlp2 seeds=1-3 epochs=2 augment=kaggle batch=32 lr=0.01\n"
    "member model=lenet5 seed=9\ntta=4\nensemble=fit\nbudget_minutes=10\njobs=2\njobs_efficiency=0.8\n"
    "speed model=mlp2 train=4000 predict=20000\naugment policy=deskew copies=1 originals=no seed=2 apply=both\n")

# ---- .npy ----
put("npy", "f4_3x10.npy", npy("'<f4'", (3, 10), struct.pack("<30f", *[i / 7 for i in range(30)])))
put("npy", "i8_4.npy", npy("'<i8'", (4,), struct.pack("<4q", 5, 0, -1, 1 << 40)))
put("npy", "u1_2x3x4.npy", npy("'|u1'", (2, 3, 4), bytes(range(24))))
put("npy", "scalar.npy", npy("'<f8'", (), struct.pack("<d", 2.5)))
V2 = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1,)}\n"
put("npy", "v2_i8.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(V2)) + V2 + struct.pack("<q", 7))
put("npy", "fortran.npy", npy("'<f4'", (2, 2), b"\0" * 16).replace(b"False", b"True "))

# ---- datasets ----
LAB = "[('label', '|u1'), ('image', '|u1', (28, 28))]"
UNL = "[('image', '|u1', (28, 28))]"
img = [bytes(pixel(r, p) for p in range(784)) for r in range(2)]
put("dataset", "labelled_2.npy", npy(LAB, (2,), b"\x03" + img[0] + b"\x07" + img[1]))
put("dataset", "unlabelled_1.npy", npy(UNL, (1,), img[0]))
put("dataset", "labelled_0.npy", npy(LAB, (0,)))
put("dataset", "images_u1_1x28x28.npy", npy("'|u1'", (1, 28, 28), img[1]))
put("dataset", "bad_label.npy", npy(LAB, (1,), b"\x0a" + img[0]))

# ---- params files ----
PARAMS = ("[('src', '<u4'), ('copy', '<i4'), ('seed', '<u8'), ('epoch', '<u4'), ('id', '<u4'), ('m', '<f4', (6,)), "
          "('alpha', '<f4'), ('sigma', '<f4'), ('skew', '<f4')]")
rec = [struct.pack("<IiQII6ffff", 0, -1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0),
       struct.pack("<IiQII6ffff", 0, 0, 1, 0, 1, 0.98, -0.17, 1.2, 0.17, 0.98, -0.9, 34, 4, 0.25)]
put("params_file", "two.npy", npy(PARAMS, (2,), b"".join(rec)))
put("params_file", "two.jsonl",
    '{"row":0,"src":0,"copy":-1,"seed":1,"epoch":0,"id":0,"m":[1,0,0,0,1,0],"alpha":0,"sigma":0,"skew":0}\n'
    '{"row":1,"src":0,"copy":0,"seed":"18446744073709551615","epoch":0,"id":1,"m":[0.98,-0.17,1.2,0.17,0.98,-0.9],'
    '"alpha":34,"sigma":4,"skew":0.25,"ops":[["rotate",-3.25],["elastic",34,4]]}\n')

# ---- checkpoints ----
def section(tag, data):
    return tag.encode().ljust(8, b"\0") + struct.pack("<Q", len(data)) + data


def ckpt(best, ema=False):
    state = struct.pack("<IIQdQddiId", 2, 1, 7, 1.5, 40, 1.0, 0.3, 0, 1, 0.25).ljust(80, b"\0")
    params = struct.pack("<4f", 0.5, -1, 2, 0)
    payload = (section("spec", b"name t\ninput 1x2x2\nflatten\ndense units=1\n") + section("run", b"seed=7 n=10") +
               section("state", state) + section("params", params) + section("buffers", b"") +
               section("optim", struct.pack("<8f", *range(8))) +
               (section("bestp", params) + section("bestb", b"") if best else b"") +
               (section("ema", struct.pack("<f", 0.99) + params) if ema else b"") +
               section("extra", b"unknown sections are skipped") + section("metrics", b'{"epoch":1}\n'))
    return b"DIGITCKP" + struct.pack("<IIQII", 1, 0, len(payload), zlib.crc32(payload), 0) + payload


put("checkpoint", "small.ckpt", ckpt(False))
put("checkpoint", "small_best.ckpt", ckpt(True))
put("checkpoint", "small_ema.ckpt", ckpt(False, ema=True))
bad = bytearray(ckpt(False))
bad[28] = 1  # reserved word set: the harness leaves the (now wrong) CRC alone
bad[40] ^= 0xff
put("checkpoint", "bad_crc.ckpt", bytes(bad))

# ---- safetensors models ----
def model(spec, tensors, extra=None):
    hdr = {"__metadata__": {"format": "digits-model", "version": "0.1.0", "spec": spec, "spec_name": "t"}}
    if extra:
        hdr["__metadata__"].update(extra)
    data, at = b"", 0
    for name, shape in tensors:
        n = 1
        for s in shape:
            n *= s
        hdr[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [at, at + 4 * n]}
        data += struct.pack("<%df" % n, *[(i % 5 - 2) / 4 for i in range(n)])
        at += 4 * n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("model", "dense.safetensors",
    model("name d\ninput 1x3x3\nflatten\ndense units=4\nrelu\ndense units=2\n",
          [("dense1.weight", (4, 9)), ("dense1.bias", (4,)), ("dense2.weight", (2, 4)), ("dense2.bias", (2,))]))
put("model", "conv_bn.safetensors",
    model("name c\ninput 1x4x4\nconv filters=2 size=3 pad=same\nbatchnorm\nrelu\nmaxpool size=2\nflatten\n"
          "dense units=3\n",
          [("conv1.weight", (2, 3, 3, 1)), ("conv1.bias", (2,)), ("bn1.weight", (2,)), ("bn1.bias", (2,)),
           ("bn1.running_mean", (2,)), ("bn1.running_var", (2,)), ("dense1.weight", (3, 8)), ("dense1.bias", (3,))],
          {"seed": "1", "val_accuracy": "0.5"}))

# ---- CSV (one-row files: the 785-name header alone is ~7 KB) ----
def csv(rows, eol="\n"):
    return eol.join(",".join(r) for r in rows) + eol


H = ["label"] + ["pixel%d" % i for i in range(784)]
R = [[str(d)] + [str(pixel(r, p)) for p in range(784)] for r, d in enumerate((3, 7))]
put("ingest", "train_1.csv", csv([H, R[0]]))
put("ingest", "test_1.csv", csv([H[1:], R[1][1:]], "\r\n"))
put("ingest", "quoted_1.csv", csv([['"%s"' % h for h in H], ['"%s"' % v if i % 97 == 0 else v for i, v in enumerate(R[1])]]))
put("ingest", "header_only.csv", "\ufeff" + csv([H]))
shutil.copy(os.path.join(ROOT, "tests/fixtures/ingest/bad_binary.csv"), os.path.join(OUT, "ingest", "bad_binary.csv"))

# ---- images (kaggle/photo; kaggle/serve's bodies) ----
def png(w, h, rows, colour=0, depth=8, extra=b"", interlace=0):
    """rows: h byte strings of raw scanlines (filter byte added here); colour: PNG colour type."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def digit(w, h, ink, paper, x0, x1, y0, y1):
    """A bar-like digit (a '1' with a foot) of ink on paper, grey bytes per row."""
    return [bytes(ink if (x0 <= x < x1 and y0 <= y < y1) or (y1 - 2 <= y < y1 and x0 - 3 <= x < x1 + 3) else paper
                  for x in range(w)) for y in range(h)]


GREY28 = digit(28, 28, 255, 0, 12, 16, 5, 23)
put("photo", "grey_28.png", png(28, 28, GREY28))
put("photo", "dark_ink_40x30.png", png(40, 30, digit(40, 30, 20, 230, 18, 22, 4, 26)))
# RGBA drawing: black strokes on a transparent canvas
put("photo", "rgba_32.png", png(32, 32, [bytes(sum(([0, 0, 0, 255] if v else [0, 0, 0, 0] for v in r), []))
                                        for r in digit(32, 32, 1, 0, 14, 18, 6, 26)], colour=6))
# palette, 1 bit, with a transparent background entry
PAL = struct.pack(">I", 6) + b"PLTE" + b"\xff\xff\xff\x00\x00\x00"
PAL += struct.pack(">I", zlib.crc32(b"PLTE\xff\xff\xff\x00\x00\x00") & 0xffffffff)
TRNS = struct.pack(">I", 1) + b"tRNS\x00" + struct.pack(">I", zlib.crc32(b"tRNS\x00") & 0xffffffff)
bits = [bytes(int("".join("1" if v else "0" for v in r[i:i + 8]), 2) for i in range(0, 24, 8))
        for r in digit(24, 24, 1, 0, 10, 13, 4, 20)]
put("photo", "palette_1bit_24.png", png(24, 24, bits, colour=3, depth=1, extra=PAL + TRNS))
# 16-bit grey, Adam7-interlaced (one pass image per Adam7 pass)
G16 = digit(16, 16, 255, 0, 7, 9, 2, 14)
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
raw = b""
for x0, y0, dx, dy in ADAM7:
    for y in range(y0, 16, dy):
        raw += b"\0" + b"".join(bytes([G16[y][x], G16[y][x]]) for x in range(x0, 16, dx))
IHDR16 = struct.pack(">IIBBBBB", 16, 16, 16, 0, 0, 0, 1)
put("photo", "grey16_adam7.png", b"\x89PNG\r\n\x1a\n" +
    b"".join(struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
             for t, d in ((b"IHDR", IHDR16), (b"IDAT", zlib.compress(raw, 9)), (b"IEND", b""))))
put("photo", "blank_20.png", png(20, 20, [bytes(20)] * 20))
put("photo", "two_digits.png", png(40, 24, [bytes(255 if (6 <= x < 10 or 28 <= x < 32) and 3 <= y < 21 else 0
                                                  for x in range(40)) for y in range(24)]))
put("photo", "huge_header.png", png(20000, 20000, [])[:33])
put("photo", "truncated.png", png(28, 28, GREY28)[:60])
for f in ("font-7-1.jpg", "train-5-2.jpg"):
    shutil.copy(os.path.join(ROOT, "tests/fixtures/photo", f), os.path.join(OUT, "photo", f))

# serve: the Content-Type, a newline, the body (tests/fuzz/fuzz_serve.c)
import base64
put("serve", "png.req", b"image/png\n" + png(28, 28, GREY28))
put("serve", "jpeg.req", b"image/jpeg; charset=binary\n" + open(os.path.join(ROOT, "tests/fixtures/photo/font-7-1.jpg"), "rb").read())
put("serve", "json.req", b"application/json\n" + json.dumps({"image": base64.b64encode(png(28, 28, GREY28)).decode()}).encode())
put("serve", "data_url.req", b"application/json\n" + json.dumps(
    {"image": "data:image/png;base64," + base64.b64encode(png(32, 32, digit(32, 32, 0, 255, 14, 18, 6, 26))).decode()}).encode())
put("serve", "blank.req", b"image/png\n" + png(20, 20, [bytes(20)] * 20))
put("serve", "bad_json.req", b"application/json\n{\"image\": 3}")
put("serve", "wrong_type.req", b"text/plain\nhello")

# ---- sweep files (tests/fuzz/fuzz_sweep_file.c writes base.spec and b2.spec beside the input) ----
for f in sorted(os.listdir(os.path.join(ROOT, "experiments/sweeps"))):
    if f.endswith(".sweep"):
        copy("sweep_file", "experiments/sweeps/" + f)
put("sweep_file", "grid.sweep", json.dumps({
    "model": "base.spec", "params": {"train.lr": [0.01, 0.1], "layer2.units": [8, 16, 32], "train.schedule": ["cosine", "step"]},
    "budget": {"trials": 5, "until": "23:30"}, "split": {"folds": 3, "split_seed": 2}, "seeds": 2, "rows": 500}, indent=1))
put("sweep_file", "random.sweep", json.dumps({
    "model": "base.spec", "strategy": "random",
    "params": {"model": ["base.spec", "b2.spec"], "layer4.rate": {"uniform": [0, 0.5]},
               "train.lr": {"log_uniform": [0.001, 0.1]}, "train.batch": {"int": [16, 128]},
               "rotate": {"choice": [0, 5, 10]}},
    "policy": ["rotate degrees=${rotate}", "shift fraction=0.1"], "budget": {"epochs": 60}, "metric": "val_loss",
    "seed": 3, "threads": 1}, indent=1))
put("sweep_file", "asha.sweep", json.dumps({
    "model": "base.spec", "strategy": "asha", "asha": {"rungs": [1, 2, 4], "eta": 2},
    "params": {"layer2.units": [8, 16], "sigma": [3, 4]}, "policy": "elastic alpha=30 sigma=${sigma} p=0.5",
    "budget": {"epochs": 40}, "about": ["anything", 1]}, indent=1))
put("sweep_file", "bad_key.sweep", '{\n  "model": "base.spec",\n  "params": {"layer2.unitz": [8]}\n}\n')
