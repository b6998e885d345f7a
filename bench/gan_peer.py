#!/usr/bin/python3
"""PyTorch peer of bench/gan_speed.c: the same conditional DCGAN generator (noise 100 + Embedding(10, 10) ->
Linear 6272 -> 7x7x128 -> BatchNorm2d, ReLU -> ConvTranspose2d 64 4x4 stride 2 -> BatchNorm2d, ReLU ->
ConvTranspose2d 1 4x4 stride 2 -> tanh), forward in training mode and backward from a fixed output gradient, no
optimizer step; images per second over the run and from the median and fastest step.

usage: /usr/bin/python3 bench/gan_peer.py [--batch B] [--threads T] [--seconds S]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


class Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 10)
        self.dense = nn.Linear(110, 7 * 7 * 128)
        self.net = nn.Sequential(
            nn.BatchNorm2d(128), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, z, labels):
        h = self.dense(torch.cat([z, self.embed(labels)], 1))
        return self.net(h.view(-1, 128, 7, 7))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    g = Gen().train()
    z = torch.rand(a.batch, 100) * 2 - 1
    labels = torch.arange(a.batch) % 10
    dout = (torch.rand(a.batch, 1, 28, 28) * 2 - 1) * 1e-3
    times, s = [], 0
    while True:
        ts = time.perf_counter()
        if s == 3:
            t0 = ts
        g.zero_grad(set_to_none=True)
        g(z, labels).backward(dout)
        if s >= 3:
            times.append(time.perf_counter() - ts)
            if time.perf_counter() - t0 >= a.seconds:
                break
        s += 1
    rate = len(times) * a.batch / (time.perf_counter() - t0)
    print(f"impl=torch-{torch.__version__} batch={a.batch} threads={a.threads} fwd_bwd_img_s={rate:.0f} "
          f"(median step {a.batch / statistics.median(times):.0f}, best {a.batch / min(times):.0f}) "
          f"steps={len(times)}", flush=True)


if __name__ == "__main__":
    main()
