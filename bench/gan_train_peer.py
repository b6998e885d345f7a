#!/usr/bin/python3
"""PyTorch peer of `digits-gan train`: the same conditional DCGAN, trained the same way, for a bench against it.

What is the same as nn/gan.c with experiments/models/gan-g.spec and gan-d.spec:
  G: z (100, N(0, 1)) + Embedding(10, 10) of the label -> Linear(110, 6272) -> 128x7x7 -> BatchNorm2d, ReLU ->
     ConvTranspose2d(128, 64, 4, 2, 1) -> BatchNorm2d, ReLU -> ConvTranspose2d(64, 1, 4, 2, 1) -> tanh
  D: image -> Conv2d(1, 64, 4, 2, 1) -> LeakyReLU(0.2) -> the label's Embedding(10, 10) appended to every pixel's
     channels (74) -> Conv2d(74, 128, 4, 2, 1) -> BatchNorm2d -> LeakyReLU(0.2) -> Linear(6272, 1): a logit
  init as nn_net_init: a weight followed (past batch norm) by a ReLU or leaky ReLU uniform +-sqrt(6 / fan_in) (He),
     otherwise +-sqrt(6 / (fan_in + fan_out)) (Glorot), a transposed convolution's fan_in being C KH KW / stride^2;
     biases 0; embeddings uniform +-sqrt(3) (variance 1); batch norm scale 1, shift 0, eps 1e-5, momentum 0.1
  data: the labelled dataset's pixels p / 127.5 - 1; every epoch a new order, the last partial batch dropped;
     batch 64; the fake images get the real batch's labels
  step: D on the real batch (target 1) and on G(z, labels) (target 0), BCE-with-logits means, gradients summed, one
     Adam step; then G through the updated D with the non-saturating loss (target 1) on the same fake images, one
     Adam step. Adam lr 2e-4, betas (0.5, 0.999), eps 1e-8, no weight decay, constant rate; both nets in training
     mode throughout (D's batch norm sees the real and the fake batches separately)
  samples: G in inference mode (running statistics), image i of label i % 10 from the noise digits-gan sample
     draws for (seed, i) (core/dg_rng's Philox4x32-10 and Box-Muller, reimplemented below), pixels
     round-half-even((x + 1) * 127.5) clipped to 0..255, written as the project's labelled dataset .npy
     (core/dg_dataset.h: a 128-byte header, records of a label byte and 784 pixel bytes), byte for byte what
     `digits-gan sample --label all` writes from the same weights.
What differs: the random streams (PyTorch's generator for the order, the noise and the initial weights, where
digits-gan keys Philox by (seed, purpose, epoch, index)), the internal layouts (nn/net keeps NHWC activations; a
dense layer's units after or before a 7x7x128 map are in (h, w, c) order there, (c, h, w) here, a permutation that
--check maps), and the summation order of float32 arithmetic.

usage:
  gan_train_peer.py --data train.npy [--threads T] [--seconds S | --epochs N] [--seed S] [--samples N -o FILE]
      trains for S seconds of training (whole steps: the step during which the time runs out is the last) or
      N epochs (default 20, the spec's), whichever ends first; prints one JSON line per epoch (a partial one when
      the time ran out mid-epoch) and a summary line with images/s; then writes N generated digits to FILE
  gan_train_peer.py --check RUN --samples N -o FILE
      loads a digits-gan checkpoint (RUN/gan.ckpt) into these modules (parameter counts must match tensor by
      tensor) and writes the N digits `digits-gan sample --label all -n N --seed S` writes (compare with cmp)
"""
import argparse
import json
import math
import os
import struct
import sys
import time
import zlib

import numpy as np

Z, CLASSES, EMB, BATCH, LR, BETAS = 100, 10, 10, 64, 2e-4, (0.5, 0.999)
RNG_GAN_SAMPLE = 16 + 6  # nn/gan.c: DG_RNG_USER + 6
DESCR = "[('label', '|u1'), ('image', '|u1', (28, 28))]"
HEADER_BYTES = 128  # core/dg_dataset.c


# ---- core/dg_rng: Philox4x32-10, vectorized over streams ----

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(c0, c1, c2, c3, k0, k1):
    """One Philox4x32-10 block per element of the uint64 arrays c0..c3 (values < 2^32)."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + W0) & MASK
            k1 = (k1 + W1) & MASK
        p0 = np.uint64(M0) * c0
        p1 = np.uint64(M1) * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & np.uint64(MASK)
        hi1, lo1 = p1 >> np.uint64(32), p1 & np.uint64(MASK)
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
    return c0, c1, c2, c3


def dg_normals(seed, purpose, epoch, indices, n):
    """dg_rng_normal drawn n times from the stream (seed, purpose, epoch, index) of each index: (len, n) float32."""
    idx = np.asarray(indices, dtype=np.uint64)
    words = 2 * n
    blocks = (words + 3) // 4
    u = np.empty((len(idx), blocks * 4), dtype=np.uint64)
    k0, k1 = seed & MASK, (seed >> 32) & MASK
    for b in range(blocks):
        full = lambda v: np.full(len(idx), v, dtype=np.uint64)
        out = philox(full(b), idx, full(epoch), full(purpose), k0, k1)
        for j in range(4):
            u[:, 4 * b + j] = out[j]
    u = u[:, :words].astype(np.float64)
    u1 = (u[:, 0::2] + 1.0) * (1.0 / 4294967296.0)
    u2 = u[:, 1::2] * (1.0 / 4294967296.0)
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(6.283185307179586 * u2)).astype(np.float32)


# ---- the project's dataset file ----

def load_dataset(path):
    d = np.load(path, mmap_mode="r")
    if d.dtype.names != ("label", "image"):
        sys.exit(f"{path}: not a labelled digits dataset (dtype {d.dtype})")
    return np.ascontiguousarray(d["image"]).reshape(-1, 784), np.ascontiguousarray(d["label"])


def write_dataset(path, labels, pixels):
    """labels (N,) uint8, pixels (N, 784) uint8 -> the labelled dataset, written to a temporary then renamed."""
    d = "{'descr': %s, 'fortran_order': False, 'shape': (%d,), }" % (DESCR, len(labels))
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", HEADER_BYTES - 10) + d.encode()
    head += b" " * (HEADER_BYTES - 1 - len(head)) + b"\n"
    rec = np.empty((len(labels), 785), dtype=np.uint8)
    rec[:, 0] = labels
    rec[:, 1:] = pixels
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(rec.tobytes())
    os.replace(tmp, path)


# ---- the nets ----

def build(torch):
    nn = torch.nn

    class Gen(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(CLASSES, EMB)
            self.dense = nn.Linear(Z + EMB, 128 * 7 * 7)
            self.bn1 = nn.BatchNorm2d(128)
            self.deconv1 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
            self.bn2 = nn.BatchNorm2d(64)
            self.deconv2 = nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1)

        def forward(self, z, labels):
            h = self.dense(torch.cat([z, self.embed(labels)], 1)).view(-1, 128, 7, 7)
            h = torch.relu(self.bn1(h))
            h = torch.relu(self.bn2(self.deconv1(h)))
            return torch.tanh(self.deconv2(h))

    class Disc(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 64, 4, stride=2, padding=1)
            self.embed = nn.Embedding(CLASSES, EMB)
            self.conv2 = nn.Conv2d(64 + EMB, 128, 4, stride=2, padding=1)
            self.bn = nn.BatchNorm2d(128)
            self.dense = nn.Linear(128 * 7 * 7, 1)

        def forward(self, x, labels):
            h = nn.functional.leaky_relu(self.conv1(x), 0.2)
            e = self.embed(labels)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
            h = nn.functional.leaky_relu(self.bn(self.conv2(torch.cat([h, e], 1))), 0.2)
            return self.dense(h.flatten(1)).squeeze(1)

    return Gen, Disc


def init_like_c(torch, g, d):
    """nn_net_init's distributions (see the docstring); PyTorch's generator draws them."""
    def uni(t, limit):
        torch.nn.init.uniform_(t, -limit, limit)
    he = lambda fan_in: math.sqrt(6.0 / fan_in)
    glorot = lambda fan_in, fan_out: math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        uni(g.embed.weight, math.sqrt(3.0))
        uni(g.dense.weight, glorot(Z + EMB, 6272))       # followed by reshape, not a ReLU: Glorot
        uni(g.deconv1.weight, he(4 * 4 * 128 / 4))       # batch norm, then ReLU
        uni(g.deconv2.weight, glorot(4 * 4 * 64 / 4, 4 * 4 * 1))  # tanh
        uni(d.conv1.weight, he(4 * 4 * 1))
        uni(d.embed.weight, math.sqrt(3.0))
        uni(d.conv2.weight, he(4 * 4 * (64 + EMB)))
        uni(d.dense.weight, glorot(6272, 1))
        for m in (g, d):
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    p.zero_()


# ---- a digits-gan checkpoint (nn/checkpoint.h) into the modules ----

def read_ckpt(path):
    b = open(path, "rb").read()
    if b[:8] != b"DIGITCKP":
        sys.exit(f"{path}: not a checkpoint")
    (n,) = struct.unpack_from("<Q", b, 16)
    (crc,) = struct.unpack_from("<I", b, 24)
    pay = b[32:32 + n]
    if len(pay) != n or zlib.crc32(pay) != crc:
        sys.exit(f"{path}: truncated or corrupted")
    sec, o = {}, 0
    while o < n:
        tag = pay[o:o + 8].rstrip(b"\0").decode()
        (k,) = struct.unpack_from("<Q", pay, o + 8)
        sec[tag] = pay[o + 16:o + 16 + k]
        o += 16 + k
    return sec


def load_c_weights(torch, g, d, path):
    """nn/net's tensors in order (per layer: weight then bias; batch norm scale, shift; buffers mean, var), G's then
    D's, into the modules, with nn/net's layouts mapped: conv (OC, KH, KW, C) and deconv (C, KH, KW, OC) weights,
    the dense units of G and the dense inputs of D in (h, w, c) order."""
    sec = read_ckpt(path)
    spec = sec["spec"].decode()
    if not spec.startswith("[generator]"):
        sys.exit(f"{path}: not a digits-gan checkpoint")
    params = np.frombuffer(sec["params"], dtype="<f4")
    buffers = np.frombuffer(sec["buffers"], dtype="<f4")
    pos = {"p": 0, "b": 0}

    def take(kind, shape):
        src = params if kind == "p" else buffers
        k = int(np.prod(shape))
        if pos[kind] + k > len(src):
            sys.exit(f"{path}: fewer values than these modules hold (another architecture)")
        v = torch.from_numpy(src[pos[kind]:pos[kind] + k].copy()).view(*shape)
        pos[kind] += k
        return v

    hwc_units = lambda w: w.view(7, 7, 128, -1).permute(2, 0, 1, 3).reshape(6272, -1)
    with torch.no_grad():
        g.embed.weight.copy_(take("p", (10, 10)))
        g.dense.weight.copy_(hwc_units(take("p", (6272, 110))))
        g.dense.bias.copy_(hwc_units(take("p", (6272, 1))).view(6272))
        for bn, dc, shp in ((g.bn1, g.deconv1, (128, 4, 4, 64)), (g.bn2, g.deconv2, (64, 4, 4, 1))):
            bn.weight.copy_(take("p", (bn.num_features,)))
            bn.bias.copy_(take("p", (bn.num_features,)))
            bn.running_mean.copy_(take("b", (bn.num_features,)))
            bn.running_var.copy_(take("b", (bn.num_features,)))
            dc.weight.copy_(take("p", shp).permute(0, 3, 1, 2))
            dc.bias.copy_(take("p", (shp[3],)))
        d.conv1.weight.copy_(take("p", (64, 4, 4, 1)).permute(0, 3, 1, 2))
        d.conv1.bias.copy_(take("p", (64,)))
        d.embed.weight.copy_(take("p", (10, 10)))
        d.conv2.weight.copy_(take("p", (128, 4, 4, 74)).permute(0, 3, 1, 2))
        d.conv2.bias.copy_(take("p", (128,)))
        d.bn.weight.copy_(take("p", (128,)))
        d.bn.bias.copy_(take("p", (128,)))
        d.bn.running_mean.copy_(take("b", (128,)))
        d.bn.running_var.copy_(take("b", (128,)))
        d.dense.weight.copy_(take("p", (1, 7, 7, 128)).permute(0, 3, 1, 2).reshape(1, 6272))
        d.dense.bias.copy_(take("p", (1,)))
    if pos["p"] != len(params) or pos["b"] != len(buffers):
        sys.exit(f"{path}: {len(params)} parameters and {len(buffers)} buffers, these modules hold {pos['p']} and "
                 f"{pos['b']} (another architecture)")
    return len(params), len(buffers)


def sample(torch, g, n, seed):
    """The digits `digits-gan sample --label all -n n --seed seed` writes: (labels, pixels)."""
    g.eval()
    labels = (np.arange(n) % 10).astype(np.uint8)
    pix = np.empty((n, 784), dtype=np.uint8)
    with torch.no_grad():
        for i in range(0, n, 1000):
            k = min(1000, n - i)
            z = torch.from_numpy(dg_normals(seed, RNG_GAN_SAMPLE, 0, range(i, i + k), Z))
            img = g(z, torch.from_numpy(labels[i:i + k].astype(np.int64))).numpy().reshape(k, 784)
            v = (img + np.float32(1)) * np.float32(127.5)
            pix[i:i + k] = np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return labels, pix


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=0, help="training time budget (0: none)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1, help="PyTorch's seed, and the samples' noise (as digits-gan)")
    ap.add_argument("--samples", type=int, default=0, help="generated digits to write (image i: label i %% 10)")
    ap.add_argument("-o", "--out", help="the samples' dataset file")
    ap.add_argument("--check", metavar="RUN", help="load a digits-gan run's weights instead of training")
    a = ap.parse_args()
    if bool(a.samples) != bool(a.out):
        ap.error("--samples N and -o FILE go together")
    if not a.check and not a.data:
        ap.error("--data FILE (or --check RUN) is required")
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    Gen, Disc = build(torch)
    g, d = Gen(), Disc()
    count = lambda m: sum(p.numel() for p in m.parameters())
    if a.check:
        path = os.path.join(a.check, "gan.ckpt") if os.path.isdir(a.check) else a.check
        npar, nbuf = load_c_weights(torch, g, d, path)
        print(json.dumps({"check": path, "params_g": count(g), "params_d": count(d), "ckpt_params": npar,
                          "ckpt_buffers": nbuf}), flush=True)
        if a.out:
            write_dataset(a.out, *sample(torch, g, a.samples, a.seed))
        return
    init_like_c(torch, g, d)
    images, labels_all = load_dataset(a.data)
    images = torch.from_numpy(images)
    labels_all = torch.from_numpy(labels_all.astype(np.int64))
    n = len(labels_all)
    steps = n // BATCH
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    og = torch.optim.Adam(g.parameters(), lr=LR, betas=BETAS, eps=1e-8)
    od = torch.optim.Adam(d.parameters(), lr=LR, betas=BETAS, eps=1e-8)
    ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)
    g.train(), d.train()
    print(json.dumps({"impl": f"torch-{torch.__version__}", "threads": a.threads, "params_g": count(g),
                      "params_d": count(d), "rows": n, "batch": BATCH}), flush=True)
    t_start = time.perf_counter()
    total_steps, total_secs, stop = 0, 0.0, False
    for ep in range(a.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        sld = slg = sdr = sdf = 0.0
        done = 0
        for s in range(steps):
            idx = order[s * BATCH:(s + 1) * BATCH]
            x = images[idx].float().div_(127.5).sub_(1.0).view(BATCH, 1, 28, 28)
            lab = labels_all[idx]
            z = torch.randn(BATCH, Z)
            # D: real (target 1) and fake (target 0), gradients summed, one step
            od.zero_grad(set_to_none=True)
            out_r = d(x, lab)
            l_real = bce(out_r, ones)
            fake = g(z, lab)
            out_f = d(fake.detach(), lab)
            l_fake = bce(out_f, zeros)
            (l_real + l_fake).backward()
            od.step()
            # G through the updated D, non-saturating loss; D's weight gradients are not needed here, so autograd
            # is told not to compute them (as digits-gan's nn_net_input_grad; CycleGAN's set_requires_grad idiom)
            og.zero_grad(set_to_none=True)
            d.requires_grad_(False)
            l_g = bce(d(fake, lab), ones)
            l_g.backward()
            d.requires_grad_(True)
            og.step()
            sld += l_real.item() + l_fake.item()
            slg += l_g.item()
            sdr += torch.sigmoid(out_r).mean().item()
            sdf += torch.sigmoid(out_f).mean().item()
            done += 1
            if a.seconds > 0 and time.perf_counter() - t_start >= a.seconds:
                stop = True
                break
        secs = time.perf_counter() - t0
        total_steps += done
        total_secs += secs
        line = {"epoch": ep + 1, "loss_d": sld / done, "loss_g": slg / done, "d_real": sdr / done,
                "d_fake": sdf / done, "images_per_s": round(done * BATCH / secs, 1), "steps": done,
                "seconds": round(secs, 3)}
        if done < steps:
            line["partial"] = True
        print(json.dumps(line), flush=True)
        if stop:
            break
    print(json.dumps({"impl": f"torch-{torch.__version__}", "threads": a.threads, "steps": total_steps,
                      "images": total_steps * BATCH, "seconds": round(total_secs, 3),
                      "images_per_s": round(total_steps * BATCH / total_secs, 1)}), flush=True)
    if a.out:
        write_dataset(a.out, *sample(torch, g, a.samples, a.seed))


if __name__ == "__main__":
    main()
