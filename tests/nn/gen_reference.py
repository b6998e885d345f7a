#!/usr/bin/python3
"""Reference values for tests/nn/test_reference.c, computed by PyTorch (float64) from fixed float32 weights.

Two models, the same as the C test builds them:
  cnn: conv1 16@5x5 - relu - bn1 - maxpool 2 - conv2 16@3x3 pad 1 - relu - bn2 - conv3 32@3x3 stride 2 pad 1 -
       relu - bn3 - conv4 32@3x3 - relu - avgpool 2 - flatten - dense1 20 - relu - bn4 (1-d) - dense2 10;
       cross-entropy with label smoothing 0.1; batch 6 (16 and 32 channels take the AVX2 convolution paths)
  mlp: dense1 32 - relu - dense2 10 (a small mlp800); plain cross-entropy; batch 8
Inputs are 28x28 images in [0, 1]. One training-mode step (batch statistics) gives logits, loss, every gradient
and the updated batch-norm running statistics.

Everything is saved in PyTorch's own layouts (x NCHW, conv weights OIHW, dense weights after a flatten in C,H,W
order) so the C test has to do the permutations to NHWC / OHWI itself. Weights and inputs are float32; results are
float64 (the model runs in double) so the C test measures its own float32 error, not PyTorch's.

usage: /usr/bin/python3 tests/nn/gen_reference.py   (writes tests/fixtures/nn/ref_cnn/ and ref_mlp/)
"""
import collections
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "nn")


def cnn():
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 5)), ("relu1", nn.ReLU()), ("bn1", nn.BatchNorm2d(16)),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 16, 3, padding=1)), ("relu2", nn.ReLU()), ("bn2", nn.BatchNorm2d(16)),
        ("conv3", nn.Conv2d(16, 32, 3, stride=2, padding=1)), ("relu3", nn.ReLU()), ("bn3", nn.BatchNorm2d(32)),
        ("conv4", nn.Conv2d(32, 32, 3)), ("relu4", nn.ReLU()),
        ("pool2", nn.AvgPool2d(2)), ("flatten", nn.Flatten()),
        ("dense1", nn.Linear(128, 20)), ("relu5", nn.ReLU()), ("bn4", nn.BatchNorm1d(20)),
        ("dense2", nn.Linear(20, 10))]))


def mlp():
    return nn.Sequential(collections.OrderedDict([
        ("flatten", nn.Flatten()), ("dense1", nn.Linear(784, 32)), ("relu1", nn.ReLU()),
        ("dense2", nn.Linear(32, 10))]))


def make(name, model, batch, smoothing, seed):
    g = torch.Generator().manual_seed(seed)
    d = os.path.join(OUT, "ref_" + name)
    os.makedirs(d, exist_ok=True)
    # fixed float32 values: weights around the default init scale, non-trivial batch-norm state
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if key.endswith("running_var"):
                v = 0.5 + torch.rand(t.shape, generator=g)
            elif key.endswith("running_mean"):
                v = 0.2 * torch.randn(t.shape, generator=g)
            elif key.startswith("bn") and key.endswith("weight"):
                v = 0.5 + torch.rand(t.shape, generator=g)
            elif key.endswith("bias"):
                v = 0.1 * torch.randn(t.shape, generator=g)
            else:
                fan_in = t[0].numel()
                v = (torch.rand(t.shape, generator=g) * 2 - 1) * (6.0 / fan_in) ** 0.5
            t.copy_(v.float())
            np.save(os.path.join(d, key + ".npy"), t.numpy().astype(np.float32))
    x = torch.rand(batch, 1, 28, 28, generator=g).float()
    y = torch.randint(0, 10, (batch,), generator=g)
    np.save(os.path.join(d, "x.npy"), x.numpy())
    np.save(os.path.join(d, "y.npy"), y.numpy().astype(np.uint8))
    model = model.double().train()
    logits = model(x.double())
    loss = nn.CrossEntropyLoss(label_smoothing=smoothing)(logits, y)
    loss.backward()
    np.save(os.path.join(d, "logits.npy"), logits.detach().numpy())
    np.save(os.path.join(d, "loss.npy"), np.array(loss.item()))
    for key, p in model.named_parameters():
        np.save(os.path.join(d, key + ".grad.npy"), p.grad.numpy())
    for key, b in model.named_buffers():
        if not key.endswith("num_batches_tracked"):
            np.save(os.path.join(d, key + ".after.npy"), b.numpy())
    print(name, "loss", loss.item())


if __name__ == "__main__":
    torch.set_num_threads(1)
    make("cnn", cnn(), 6, 0.1, 1)
    make("mlp", mlp(), 8, 0.0, 2)
