#!/usr/bin/python3
"""Reference values for tests/nn/test_gan_reference.c, computed by PyTorch: tests/fixtures/nn/gan_torch.h.

Each new layer of nn/layers_gan on its own, from fixed float32 inputs and weights, run in float64 (so the C test
measures its own float32 error, not PyTorch's):
  deconv_a: ConvTranspose2d(16, 16, 4, stride=2, padding=1), 3x3 -> 6x6, batch 2 (the generator's shape)
  deconv_b: ConvTranspose2d(4, 3, 5, stride=2, padding=2, output_padding=1), 4x5 -> 8x10, batch 2
            each: output, and for a fixed output gradient the input, weight and bias gradients;
  embed:    torch.cat([x, Embedding(10, 3)(labels)[:, :, None, None].expand(-1, -1, H, W)], 1) on a 2x3x2 input,
            its output and the input and table gradients of sum(r * tanh(out));
  bce:      BCEWithLogitsLoss (mean) on logits up to +-80 with targets in [0, 1]: loss and d(logits).
And a whole conditional GAN step through nn/net, the specs G_SPEC and D_SPEC below (written into the header, so
the C test builds the same nets): z (B, 4), labels -> G (embed, dense, reshape, batch norm, ReLU, deconv, batch
norm, ReLU, deconv, tanh) -> 8x8 image -> D (conv, leaky ReLU, embed, conv, batch norm, leaky ReLU, dense) -> logit,
training mode; the generator's loss BCE(D(G(z, l), l), 1): the image, D's logits, the loss, D's input gradient
and every G parameter's gradient; the discriminator's loss on a real batch BCE(D(x, l), 1): every D gradient.

Layouts: everything is written in the C side's layouts (NHWC activations; conv weights (OC, KH, KW, C); deconv
weights (C, KH, KW, OC), PyTorch's (C, OC, KH, KW) permuted (0, 2, 3, 1); a dense layer after a spatial input
flattens in (H, W, C) order; reshape c=8 h=2 w=2 is view(B, 2, 2, 8) then NCHW), each tensor with its nn/net name.

usage: /usr/bin/python3 tests/nn/gen_gan_reference.py > tests/fixtures/nn/gan_torch.h
(Debian: apt-get install python3-torch; not needed by CI, the header is committed.)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(18)
torch.set_default_dtype(torch.float64)

G_SPEC = """name gan_g
input 4x1x1
output image
embed classes=10 dim=3
dense units=32
reshape c=8 h=2 w=2
batchnorm
relu
deconv filters=4 size=4 stride=2 pad=1
batchnorm
relu
deconv filters=1 size=4 stride=2 pad=1
tanh
"""
D_SPEC = """name gan_d
input 1x8x8
output logit
conv filters=4 size=3 stride=2 pad=1
leakyrelu slope=0.2
embed classes=10 dim=2
conv filters=8 size=3 stride=2 pad=1
batchnorm
leakyrelu slope=0.2
dense units=1
"""
B = 6

out = []


def f32(t):
    """Round to float32 values (kept in float64)."""
    return t.detach().to(torch.float32).to(torch.float64)


def emit(name, t, comment=None):
    v = t.detach().to(torch.float32).reshape(-1).tolist()
    if comment:
        out.append("/* %s */" % comment)
    def lit(x):
        t = "%.9g" % x
        return t + (".0f" if all(ch not in t for ch in ".e") else "f")
    body = ", ".join(lit(x) for x in v)
    lines, line = [], "   "
    for tok in body.split(" "):
        if len(line) + len(tok) + 1 > 116:
            lines.append(line)
            line = "   "
        line += " " + tok
    lines.append(line)
    out.append("static const float %s[%d] = {\n%s\n};" % (name, len(v), "\n".join(lines)))


def nhwc(t):
    return t.permute(0, 2, 3, 1) if t.dim() == 4 else t


def deconv_case(tag, Bn, C, OC, H, W, k, s, p, op):
    x = f32(torch.rand(Bn, C, H, W) * 2 - 1).requires_grad_()
    m = nn.ConvTranspose2d(C, OC, k, stride=s, padding=p, output_padding=op)
    with torch.no_grad():
        m.weight.copy_(f32(m.weight * 2))
        m.bias.copy_(f32(torch.rand(OC) - 0.5))
    y = m(x)
    dy = f32(torch.rand_like(y) * 2 - 1)
    y.backward(dy)
    out.append("/* %s: ConvTranspose2d(%d, %d, %d, stride=%d, padding=%d, output_padding=%d) on %dx%d, batch %d */"
               % (tag, C, OC, k, s, p, op, H, W, Bn))
    out.append("static const int %s_dims[9] = {%d, %d, %d, %d, %d, %d, %d, %d, %d}; /* B H W C OC K s p op */"
               % (tag, Bn, H, W, C, OC, k, s, p, op))
    emit(tag + "_x", nhwc(x))
    emit(tag + "_w", m.weight.permute(0, 2, 3, 1))
    emit(tag + "_b", m.bias)
    emit(tag + "_y", nhwc(y))
    emit(tag + "_dy", nhwc(dy))
    emit(tag + "_dx", nhwc(x.grad))
    emit(tag + "_dw", m.weight.grad.permute(0, 2, 3, 1))
    emit(tag + "_db", m.bias.grad)


def embed_case():
    x = f32(torch.rand(2, 3, 2, 2) * 2 - 1).requires_grad_()
    e = nn.Embedding(10, 3)
    with torch.no_grad():
        e.weight.copy_(f32(e.weight))
    labels = torch.tensor([7, 2])
    y = torch.cat([x, e(labels)[:, :, None, None].expand(-1, -1, 2, 2)], 1)
    r = f32(torch.rand_like(y) * 2 - 1)
    (r * torch.tanh(y)).sum().backward()
    out.append("/* embed: Embedding(10, 3) appended to a (2, 2, 2, 3) NHWC input, labels {7, 2}; gradients of "
               "sum(r * tanh(out)) */")
    out.append("static const unsigned char embed_labels[2] = {7, 2};")
    emit("embed_x", nhwc(x))
    emit("embed_table", e.weight)
    emit("embed_y", nhwc(y))
    emit("embed_r", nhwc(r))
    emit("embed_dx", nhwc(x.grad))
    emit("embed_dtable", e.weight.grad)


def bce_case():
    z = torch.tensor([80.0, -80.0, 80.0, -80.0, 0.0, 3.5, -2.25, 17.0], requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.3, 0.9, 0.0, 1.0])
    loss = nn.BCEWithLogitsLoss()(z, t)
    loss.backward()
    out.append("/* bce: BCEWithLogitsLoss() (mean) */")
    emit("bce_z", z)
    emit("bce_t", t)
    out.append("static const double bce_loss = %.17g;" % loss.item())
    emit("bce_dz", z.grad)


class Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed1 = nn.Embedding(10, 3)
        self.dense1 = nn.Linear(7, 32)
        self.bn1 = nn.BatchNorm2d(8)
        self.deconv1 = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(4)
        self.deconv2 = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)

    def forward(self, z, labels):
        h = self.dense1(torch.cat([z, self.embed1(labels)], 1))
        h = h.view(-1, 2, 2, 8).permute(0, 3, 1, 2)  # reshape c=8 h=2 w=2 (NHWC order)
        h = F.relu(self.bn1(h))
        h = F.relu(self.bn2(self.deconv1(h)))
        return torch.tanh(self.deconv2(h))


class Disc(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.embed1 = nn.Embedding(10, 2)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.dense1 = nn.Linear(32, 1)

    def forward(self, x, labels):
        h = F.leaky_relu(self.conv1(x), 0.2)
        e = self.embed1(labels)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = F.leaky_relu(self.bn1(self.conv2(torch.cat([h, e], 1))), 0.2)
        return self.dense1(h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)).squeeze(1)  # NHWC flatten


def c_layout(name, t):
    """A parameter or gradient in nn/net's layout."""
    if "deconv" in name and name.endswith("weight"):
        return t.permute(0, 2, 3, 1)
    if "conv" in name and name.endswith("weight"):
        return t.permute(0, 2, 3, 1)
    return t


def emit_tensors(prefix, model, grads):
    names = []
    for name, p in model.named_parameters():
        cname = prefix + "_" + name.replace(".", "_")
        emit(cname + ("_grad" if grads else ""), c_layout(name, p.grad if grads else p))
        names.append((name, cname + ("_grad" if grads else ""), p.numel()))
    out.append("static const gan_fx_tensor %s_%s[] = {" % (prefix, "grads" if grads else "params"))
    for name, cname, n in names:
        out.append('    {"%s", %s, %d},' % (name, cname, n))
    out.append("};")


def gan_case():
    g, d = Gen(), Disc()
    with torch.no_grad():
        for m in (g, d):
            for name, p in m.named_parameters():
                # weights as trained nets have them: BN scale around 1, biases small
                if name.startswith("bn"):
                    p.copy_(f32((1.0 if name.endswith("weight") else 0.0) + 0.2 * (torch.rand_like(p) - 0.5)))
                else:
                    p.copy_(f32(p * 1.5))
    z = f32(torch.rand(B, 4) * 2 - 1)
    labels = torch.tensor([3, 0, 9, 3, 5, 1])
    real = f32(torch.rand(B, 1, 8, 8) * 2 - 1)
    ones = torch.ones(B)
    out.append('static const char gan_g_spec[] = "%s";' % G_SPEC.replace("\n", "\\n"))
    out.append('static const char gan_d_spec[] = "%s";' % D_SPEC.replace("\n", "\\n"))
    out.append("#define GAN_B %d" % B)
    out.append("static const unsigned char gan_labels[GAN_B] = {%s};" % ", ".join(str(v) for v in labels.tolist()))
    emit("gan_z", z)
    emit("gan_real", nhwc(real))
    emit_tensors("gan_g", g, False)
    emit_tensors("gan_d", d, False)
    # the generator's step: BCE(D(G(z, l), l), 1), both in training mode
    img = g(z, labels)
    img.retain_grad()
    logits = d(img, labels)
    loss = F.binary_cross_entropy_with_logits(logits, ones)
    loss.backward()
    emit("gan_img", nhwc(img), "G(z, labels), NHWC")
    emit("gan_fake_logits", logits)
    out.append("static const double gan_g_loss = %.17g;" % loss.item())
    emit("gan_dimg", nhwc(img.grad), "d(loss)/d(image): D's input gradient")
    emit_tensors("gan_g", g, True)
    # the discriminator's step on the real batch (fresh gradients)
    d.zero_grad()
    logits = d(real, labels)
    loss = F.binary_cross_entropy_with_logits(logits, ones)
    loss.backward()
    emit("gan_real_logits", logits)
    out.append("static const double gan_d_loss = %.17g;" % loss.item())
    emit_tensors("gan_d", d, True)


def main():
    out.append("/* Generated by tests/nn/gen_gan_reference.py with PyTorch %s; do not edit (run it again). */"
               % torch.__version__)
    out.append("#ifndef TESTS_FIXTURES_NN_GAN_TORCH_H")
    out.append("#define TESTS_FIXTURES_NN_GAN_TORCH_H")
    out.append("")
    out.append("#include <stddef.h>")
    out.append("")
    out.append("typedef struct gan_fx_tensor {")
    out.append("    const char *name; /* PyTorch's name, which is nn/net's name for the tensor */")
    out.append("    const float *v;")
    out.append("    size_t n;")
    out.append("} gan_fx_tensor;")
    out.append("")
    deconv_case("deconv_a", 2, 16, 16, 3, 3, 4, 2, 1, 0)
    deconv_case("deconv_b", 2, 4, 3, 4, 5, 5, 2, 2, 1)
    embed_case()
    bce_case()
    gan_case()
    out.append("")
    out.append("#endif")
    print("\n".join(out))


if __name__ == "__main__":
    main()
