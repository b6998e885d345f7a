#!/usr/bin/env python3
"""PyTorch peer for bench/throughput.sh: the same architectures as
experiments/models/{mlp800,lenet5,deotte,vgg-ls}.spec, trained with Adam on random 28x28 inputs (throughput does not depend on pixel values), timed per image.

usage: torch_peer.py MODEL BATCH [--threads T] [--steps N] [--infer N]
prints one line: model=.. batch=.. threads=.. train_img_s=.. infer_img_s=..
"""
import argparse
import time

import torch
import torch.nn as nn


def make(name):
    if name == "mlp800":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 800), nn.ReLU(), nn.Linear(800, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))
    if name == "deotte":
        def cbr(i, o, k, s=1, p=0):
            return [nn.Conv2d(i, o, k, stride=s, padding=p), nn.ReLU(), nn.BatchNorm2d(o)]
        return nn.Sequential(
            *cbr(1, 32, 3), *cbr(32, 32, 3), *cbr(32, 32, 5, 2, 2), nn.Dropout(0.4),
            *cbr(32, 64, 3), *cbr(64, 64, 3), *cbr(64, 64, 5, 2, 2), nn.Dropout(0.4),
            *cbr(64, 128, 4), nn.Flatten(), nn.Dropout(0.4), nn.Linear(128, 10))
    if name == "vgg-ls":  # long's member; its label smoothing does not change the cost
        def cbr(i, o, p):
            return [nn.Conv2d(i, o, 3, padding=p), nn.ReLU(), nn.BatchNorm2d(o)]
        return nn.Sequential(
            *cbr(1, 32, 1), *cbr(32, 32, 1), nn.MaxPool2d(2), nn.Dropout(0.2),
            *cbr(32, 64, 1), *cbr(64, 64, 1), nn.MaxPool2d(2), nn.Dropout(0.2),
            *cbr(64, 128, 0), nn.Flatten(), nn.Dropout(0.2), nn.Linear(3200, 10))
    raise SystemExit(f"unknown model {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("batch", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--infer", type=int, default=10000, help="images for the inference timing")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = make(a.model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))
    model.train()
    for i in range(a.steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
    train = a.steps * a.batch / (time.perf_counter() - t0)
    model.eval()
    xi = torch.rand(a.infer, 1, 28, 28)
    with torch.no_grad():
        model(xi[:256])
        t0 = time.perf_counter()
        for s in range(0, a.infer, 256):
            model(xi[s:s + 256])
        infer = a.infer / (time.perf_counter() - t0)
    print(f"model={a.model} batch={a.batch} threads={a.threads} train_img_s={train:.0f} infer_img_s={infer:.0f}",
          flush=True)


if __name__ == "__main__":
    main()
