/* nn/layers_conv: 2-D convolution on NHWC activations with OHWI weights (see layers.h).
 *
 * Three implementations, chosen per call by CPU and shape only (so results never depend on the thread count):
 *  - AVX2 (every shape on an AVX2+FMA CPU): each pass picks its kernel from a table of candidates, each with an
 *    applicability test and a cost rule (forward_kernels, input_grad_kernels, weight_grad_kernels below): implicit
 *    GEMM reading the (padded) input directly, in 6x16 register tiles (nn/internal/gemm_conv.h) where OC (forward,
 *    weight gradient) or C (input gradient) is a multiple of 16, in 12x8 tiles and row segments
 *    (nn/internal/conv_small.h) otherwise, with output pixels along the vector for the forward of one-channel
 *    stride-1 layers (a network's first); Winograd for 3x3 stride-1 layers with both multiples of 16: F(4x4,3x3)
 *    where the output sides are close to multiples of 4 (wino4_pays; its weight gradient where its sums fit in L2),
 *    else F(2x2,3x3) / F(3x3,2x2); 5x5 and 6x6 stride-2 layers rewritten as 3x3 stride-1 ones on the
 *    space-to-depth input (nnk_s2d_dims) for their backward, and for their forward with F(4x4,3x3) where the output
 *    is at least 8x8; bias, activation and batch statistics fused into the output stage. See "the AVX2 path" below
 *    for how the batch is split. nnk_conv_choice_get (nn/internal/conv_plan.h) reports the choice.
 *  - portable (no AVX2): the batch is split into NN_GROUPS fixed groups of images processed in
 *    parallel; inside a group, chunks of images are lowered with im2col into a per-group scratch and multiplied
 *    with ONE single-threaded cblas_sgemm per chunk (col (rows, K) x w^T (K, OC) -> out (rows, OC), rows =
 *    images * OH * OW); backward: dW (OC, K) = dout^T (OC, rows) x col (rows, K) per group, summed over groups in
 *    group order; dcol = dout x w (rows, K) then col2im. Where im2col is the identity (1x1 stride-1 unpadded
 *    kernels, or a kernel covering its whole unpadded input) the input is used in place.
 *  - reference (_ref): direct 7-deep loops, for tests.
 */
#include <cblas.h>
#include <string.h>

#include "nn/internal/conv_plan.h"
#include "nn/internal/conv_small.h"
#include "nn/internal/gemm_conv.h"
#include "nn/layers.h"
#include "nn/internal/simd.h"

/* Floats of im2col per GEMM: chunks of images are grown up to this (one image at least). */
#define COL_BUDGET (96 * 1024)

int nn_conv_dims_finish(nn_conv_dims *d) {
    if (d->KH < 1 || d->KW < 1 || d->stride < 1 || d->pad < 0) return -1;
    if (d->H + 2 * d->pad < d->KH || d->W + 2 * d->pad < d->KW) return -1;
    d->OH = (d->H + 2 * d->pad - d->KH) / d->stride + 1;
    d->OW = (d->W + 2 * d->pad - d->KW) / d->stride + 1;
    return 0;
}

static inline size_t conv_k(const nn_conv_dims *d) { return (size_t)d->KH * d->KW * d->C; }
static inline size_t conv_in_n(const nn_conv_dims *d) { return (size_t)d->H * d->W * d->C; }
static inline size_t conv_out_n(const nn_conv_dims *d) { return (size_t)d->OH * d->OW * d->OC; }

/* 1 if the im2col matrix of an image is the image itself. */
static int col_is_input(const nn_conv_dims *d) {
    if (d->pad != 0) return 0;
    if (d->KH == 1 && d->KW == 1 && d->stride == 1) return 1;
    return d->KH == d->H && d->KW == d->W;
}

/* Images per GEMM for a group of n images. */
static int conv_chunk(const nn_conv_dims *d, int n) {
    size_t per = (size_t)d->OH * d->OW * conv_k(d);
    size_t sc = per >= COL_BUDGET ? 1 : COL_BUDGET / per;
    return sc < (size_t)n ? (int)sc : n < 1 ? 1 : n;
}

static inline size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Im2col path scratch: G group areas of col (chunk rows, K) | dw partial (OC, K) | tmp (2, OC) |
 * part (2, OC) doubles (offsets in floats within an area). */
typedef struct conv_layout {
    size_t col, dw, tmp, part, stride;
} conv_layout;

static conv_layout conv_layout_make(const nn_conv_dims *d, int B) {
    int G = nn_groups((size_t)B);
    int gmax = (B + G - 1) / G;
    size_t K = conv_k(d), OC = (size_t)d->OC;
    conv_layout L;
    size_t colf = col_is_input(d) ? 0 : (size_t)conv_chunk(d, gmax) * d->OH * d->OW * K;
    L.col = 0;
    L.dw = round16(colf);
    L.tmp = L.dw + round16(OC * K);
    L.part = L.tmp + round16(2 * OC);
    L.stride = L.part + round16(4 * OC);
    return L;
}

/* ---- the AVX2 path (nn/internal/gemm_conv.h) ----
 * Two ways to spread a batch over threads, chosen by shape only (never by thread count):
 *  - groups: NN_GROUPS fixed groups of images, each in chunks of about FRAME_BUDGET floats of input, all
 *    channels at once; weight and bias gradients summed over groups in group order;
 *  - split (few output pixels per image, as in the last layers of a CNN): the whole batch at once, threads
 *    take blocks of 16 output channels (forward, weight gradient) or input channels (input gradient), so every
 *    sum runs over the whole batch in one thread and nothing needs reducing.
 * Each pass (forward, input gradient, weight gradient) then runs the first kernel of its table below that applies
 * to the shape and whose cost rule says it pays. */

#define FRAME_BUDGET (48 * 1024) /* floats of input frame per chunk (groups) */
#define PAR_FLOPS 4e6            /* smaller convolutions run on one thread (a fork/join costs more) */
#define SPLIT_PIXELS 16          /* split when an image has at most this many output pixels */
#define GATHER_WASTE 1.25        /* gather (direct) only if it does at most this much more work than needed */
#define WINO_GATHER_WASTE 1.7    /* the same for a Winograd gather */
#define WINO4_RATIO 0.7          /* F(4x4, 3x3) if its multiplications are at most this share of F(2x2, 3x3)'s */
/* ... and its weight gradient if its sums (36, C, OC) fit in half of a 512 KiB L2. Measured (1 thread, 64 images):
 * backward 13.2 -> 10.6 ms at 26x26x32 -> 32, but 6.5 -> 6.8 ms at 10x10x64 -> 64. */
#define WINO4_WG_FLOATS 65536

static double conv_flops(const nn_conv_dims *d, int B) { return 2.0 * B * d->OH * d->OW * d->OC * conv_k(d); }

/* The kernels (names as nnk_conv_choice reports them). Forward and weight gradient: */
typedef enum conv_kernel {
    CK_GCONV,     /* implicit GEMM in 6x16 tiles (nnk_gconv_forward / nnk_gconv_backward_weight) */
    CK_SCONV,     /* 12x8 / 6x8 tiles for OC not a multiple of 16 (nnk_sconv_forward / nnk_sconv_backward_weight) */
    CK_PLANAR,    /* forward of one input channel with pixels along the vector (nnk_sconv_planar_forward) */
    CK_WINO2,     /* Winograd F(2x2, 3x3) forward, F(3x3, 2x2) weight gradient */
    CK_WINO4,     /* Winograd F(4x4, 3x3) */
    CK_S2D_WINO2, /* stride 2 as F(2x2, 3x3) / F(3x3, 2x2) on the space-to-depth input (nnk_s2d_dims) */
    CK_S2D_WINO4, /* ... as F(4x4, 3x3) */
    /* input gradient: */
    CK_SCATTER, /* nnk_gconv_backward_data into a padded frame */
    CK_GATHER,  /* the transposed convolution t with the forward kernel on the padded output gradient */
    CK_WINO2_T, /* t with Winograd F(2x2, 3x3) */
    CK_WINO4_T, /* t with Winograd F(4x4, 3x3) */
    CK_ROWSEG,  /* conv_small's row segments, for C not a multiple of 16 (nnk_sconv_backward_data) */
    /* CK_S2D_WINO2, CK_S2D_WINO4: the transposed convolution st of the space-to-depth convolution */
    CK_COUNT
} conv_kernel;

static const char *const kernel_names[CK_COUNT] = {
    [CK_GCONV] = "gconv",         [CK_SCONV] = "sconv",         [CK_PLANAR] = "planar",   [CK_WINO2] = "wino2",
    [CK_WINO4] = "wino4",         [CK_S2D_WINO2] = "s2d_wino2", [CK_S2D_WINO4] = "s2d_wino4",
    [CK_SCATTER] = "scatter",     [CK_GATHER] = "gather",       [CK_WINO2_T] = "wino2_t", [CK_WINO4_T] = "wino4_t",
    [CK_ROWSEG] = "rowseg",
};

/* What the candidates' rules look at: the layer, which call the plan is for, the batch split, and the derived
 * convolutions the kernels run on. */
typedef struct conv_case {
    const nn_conv_dims *d;
    int backward;        /* the plan of nn_conv2d_backward (else nn_conv2d_forward) */
    int few_pixels;      /* at most SPLIT_PIXELS output pixels per image, channels in blocks of 16, OC >= 32 */
    int split;           /* the batch runs split (few_pixels, unless the backward goes through space-to-depth) */
    int has_t, has_s;    /* t exists (stride 1, square); s and st exist (nnk_s2d_dims) */
    nn_conv_dims t;      /* the transposed convolution (input gradient as a forward convolution) */
    nn_conv_dims s, st;  /* space-to-depth: the stride-1 convolution and its transposed convolution */
    double waste;        /* H*W / (OH*OW): a gather also multiplies the zero border of the padded output gradient */
} conv_case;

/* 1 if F(4x4, 3x3) does clearly fewer multiplications than F(2x2, 3x3) for d's output size (36 per 4x4 tile
 * against 16 per 2x2 tile, partial tiles counted whole): 24x24 0.56, 10x10 0.81, 8x8 0.56. */
static int wino4_pays(const nn_conv_dims *d) {
    double t4 = (double)((d->OH + 3) / 4) * ((d->OW + 3) / 4), t2 = (double)((d->OH + 1) / 2) * ((d->OW + 1) / 2);
    return nnk_wino4_ok(d) && 36.0 * t4 <= WINO4_RATIO * 16.0 * t2;
}

/* Applicability: the kernel computes the pass for this shape, CPU, call and batch split. */
static int any(const conv_case *x) { return (void)x, 1; }
static int oc_small(const conv_case *x) { return x->d->OC % 16 != 0; }
static int c_small(const conv_case *x) { return x->d->C % 16 != 0; }
static int planar_ok(const conv_case *x) { return oc_small(x) && nnk_sconv_planar_ok(x->d); }
static int wino_ok(const conv_case *x) { return !x->split && nnk_wino_ok(x->d); }
static int wino_t_ok(const conv_case *x) { return !x->split && x->has_t && nnk_wino_ok(&x->t); }
static int gather_ok(const conv_case *x) { return x->has_t; }
/* the space-to-depth candidates belong to the call that runs them: the forward one to the forward call, the
 * gradient ones to the backward call (which then never splits) */
static int s2d_fwd_ok(const conv_case *x) { return !x->backward && !x->split && x->has_s && nnk_wino4_ok(&x->s); }
static int s2d_bwd_ok(const conv_case *x) { return x->backward && x->has_s; }

/* Cost rules: the kernel is expected to beat the candidates after it. The space-to-depth rules, measured on
 * deotte's 24x24x32 -> 12x12x32 and 8x8x64 -> 4x4x64 (1 thread, 64 images): its input gradient 1.25x and 1.35x
 * faster than scatter; its weight gradient 4% faster than gconv on the first, 1.5x slower than the split gconv on
 * the second; its forward with F(4x4, 3x3) 5.2 -> 4.2 ms on the first (with F(2x2, 3x3) 2-15% slower than direct,
 * and at 4x4 outputs F(4x4) did not pay either). */
static int always(const conv_case *x) { return (void)x, 1; }
static int wino4_fwd_pays(const conv_case *x) { return wino4_pays(x->d); }
static int wino4_wg_pays(const conv_case *x) {
    return wino4_pays(x->d) && 36 * (size_t)x->d->C * x->d->OC <= WINO4_WG_FLOATS;
}
static int wino_t_pays(const conv_case *x) { return x->waste <= WINO_GATHER_WASTE; }
static int wino4_t_pays(const conv_case *x) { return wino_t_pays(x) && wino4_pays(&x->t); }
static int gather_pays(const conv_case *x) { return x->waste <= GATHER_WASTE; }
static int s2d_fwd_pays(const conv_case *x) { return x->s.OH >= 8; }
static int s2d_data4_pays(const conv_case *x) { return x->st.OH >= 8 && wino4_pays(&x->st); }
static int s2d_wgrad_pays(const conv_case *x) { return !x->few_pixels; }

typedef struct conv_candidate {
    conv_kernel kernel;
    int (*applies)(const conv_case *x);
    int (*pays)(const conv_case *x);
} conv_candidate;

/* The candidates of each pass, best first; the last always applies and pays. */
static const conv_candidate forward_kernels[] = {
    {CK_WINO4, wino_ok, wino4_fwd_pays},
    {CK_WINO2, wino_ok, always},
    {CK_S2D_WINO4, s2d_fwd_ok, s2d_fwd_pays},
    {CK_PLANAR, planar_ok, always},
    {CK_SCONV, oc_small, always},
    {CK_GCONV, any, always},
};
static const conv_candidate input_grad_kernels[] = {
    {CK_S2D_WINO4, s2d_bwd_ok, s2d_data4_pays},
    {CK_S2D_WINO2, s2d_bwd_ok, always},
    {CK_ROWSEG, c_small, always},
    {CK_WINO4_T, wino_t_ok, wino4_t_pays},
    {CK_WINO2_T, wino_t_ok, wino_t_pays},
    {CK_GATHER, gather_ok, gather_pays},
    {CK_SCATTER, any, always},
};
static const conv_candidate weight_grad_kernels[] = {
    {CK_WINO4, wino_ok, wino4_wg_pays},
    {CK_WINO2, wino_ok, always},
    {CK_S2D_WINO2, s2d_bwd_ok, s2d_wgrad_pays},
    {CK_SCONV, oc_small, always},
    {CK_GCONV, any, always},
};

static conv_kernel choose(const conv_candidate *table, const conv_case *x) {
    while (!(table->applies(x) && table->pays(x))) table++;
    return table->kernel;
}

/* A plan: the kernel of each pass, the batch split, and one workspace that holds the buffers of all three passes'
 * kernels (so the plans of the forward and the backward call differ only where the space-to-depth kernels come in). */
typedef struct fast_plan {
    conv_kernel fwd, dgrad, wgrad;
    int split, G, chunk;         /* chunk: images per chunk (groups), B (split) */
    nn_conv_dims t;              /* the transposed convolution (gather, Winograd on t) */
    nn_conv_dims s, st;          /* space-to-depth: the stride-1 convolution and its transposed convolution */
    size_t frame, off, sbuf, dwt, zero, part, wm, stride; /* area layout (floats), stride between group areas */
    size_t slot, shared;         /* packed weights: wf and wd (or wt, or Winograd u), slot floats each */
} fast_plan;

/* What a pass's kernel needs of the workspace besides the chunk's frame and offsets (floats): its Winograd work
 * area for n images, its packed weights, and the Winograd weight-gradient sums m kept across chunks. */
typedef struct kernel_needs {
    size_t work, packed, sums;
} kernel_needs;

enum { PASS_FWD, PASS_DGRAD, PASS_WGRAD };

static inline size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* An F(4x4, 3x3) kernel's work area also fits the F(2x2, 3x3) one's. */
static kernel_needs needs_of(const fast_plan *f, int pass, const nn_conv_dims *d, int n) {
    const size_t CO = (size_t)d->C * d->OC;
    kernel_needs k = {0, 0, 0};
    switch (pass) {
    case PASS_FWD:
        switch (f->fwd) {
        case CK_WINO2: k.work = nnk_wino_work_floats(d, n), k.packed = 16 * CO; break;
        case CK_WINO4:
            k.work = max_size(nnk_wino_work_floats(d, n), nnk_wino4_work_floats(d, n)), k.packed = 36 * CO;
            break;
        case CK_S2D_WINO4: k.work = nnk_wino4_work_floats(&f->s, n), k.packed = 144 * CO; break; /* u of s */
        case CK_PLANAR: k.packed = nnk_sconv_planar_floats(d); break;
        case CK_SCONV: k.packed = nnk_sconv_forward_floats(d); break;
        default: break;
        }
        break;
    case PASS_DGRAD:
        switch (f->dgrad) {
        case CK_WINO2_T: k.work = nnk_wino_work_floats(&f->t, n), k.packed = 16 * CO; break;
        case CK_WINO4_T:
            k.work = max_size(nnk_wino_work_floats(&f->t, n), nnk_wino4_work_floats(&f->t, n)), k.packed = 36 * CO;
            break;
        case CK_S2D_WINO2: k.work = nnk_wino_work_floats(&f->st, n), k.packed = 64 * CO; break; /* u of st */
        case CK_S2D_WINO4:
            k.work = max_size(nnk_wino_work_floats(&f->st, n), nnk_wino4_work_floats(&f->st, n));
            k.packed = 144 * CO;
            break;
        case CK_ROWSEG: k.packed = nnk_sconv_data_floats(d); break;
        default: break;
        }
        break;
    default:
        switch (f->wgrad) {
        case CK_WINO2: k.work = nnk_wino_wgrad_floats(d, n), k.sums = 16 * CO; break;
        case CK_WINO4:
            k.work = max_size(nnk_wino_wgrad_floats(d, n), nnk_wino4_wgrad_floats(d, n)), k.sums = 36 * CO;
            break;
        case CK_S2D_WINO2: k.work = nnk_wino_wgrad_floats(&f->s, n), k.sums = 64 * CO; break; /* m of s (16, 4C, OC) */
        default: break;
        }
    }
    return k;
}

static int is_wino_t(conv_kernel k) { return k == CK_WINO2_T || k == CK_WINO4_T; }
static int is_s2d(conv_kernel k) { return k == CK_S2D_WINO2 || k == CK_S2D_WINO4; }

/* The plan of the forward call (backward = 0) or the backward call of B images. */
static fast_plan fast_plan_make(const nn_conv_dims *d, int B, int backward) {
    fast_plan f;
    memset(&f, 0, sizeof f);
    conv_case x = {.d = d, .backward = backward};
    x.few_pixels = d->OH * d->OW <= SPLIT_PIXELS && d->OC >= 32 && d->OC % 16 == 0 && d->C % 16 == 0;
    x.has_s = nnk_s2d_dims(&x.s, &x.st, d);
    x.split = x.few_pixels && !(backward && x.has_s);
    x.has_t = nnk_gconv_transposed(&x.t, d) == 0;
    x.waste = (double)d->H * d->W / ((double)d->OH * d->OW);
    f.fwd = choose(forward_kernels, &x);
    f.dgrad = choose(input_grad_kernels, &x);
    f.wgrad = choose(weight_grad_kernels, &x);
    f.split = x.split;
    f.t = x.t, f.s = x.s, f.st = x.st;

    f.G = f.split ? 1 : nn_groups((size_t)B);
    if (f.split) {
        f.chunk = B;
    } else {
        int gmax = (B + f.G - 1) / f.G;
        size_t per = nnk_gconv_frame_floats(d, 1);
        size_t sc = per >= FRAME_BUDGET ? 1 : FRAME_BUDGET / per;
        f.chunk = sc < (size_t)gmax ? (int)sc : gmax;
    }
    /* the chunk's input frame and pixel offsets (gconv, sconv, scatter) */
    size_t n = (size_t)f.chunk, fr = nnk_gconv_frame_floats(d, f.chunk), px = n * d->OH * d->OW;
    if (f.dgrad == CK_GATHER || is_wino_t(f.dgrad)) { /* also the padded output gradient and its pixels' offsets */
        size_t frt = nnk_gconv_frame_floats(&f.t, f.chunk), pxt = n * d->H * d->W;
        fr = f.split ? fr + frt : max_size(fr, frt); /* split: input frame and gradient frame side by side */
        px = f.split ? px + pxt : max_size(px, pxt);
    } else if (f.split) {
        fr *= 2; /* input frame and input-gradient frame */
    } else if (f.dgrad == CK_ROWSEG || f.fwd == CK_PLANAR) {
        fr += NNK_SCONV_SLACK; /* row-segment tiles add zeros, planar tiles read, a little past the frame */
    }
    const kernel_needs kf = needs_of(&f, PASS_FWD, d, f.chunk), kd = needs_of(&f, PASS_DGRAD, d, f.chunk),
                       kw = needs_of(&f, PASS_WGRAD, d, f.chunk);
    /* frame and offsets, or the Winograd work area in their place */
    size_t work = max_size(round16(fr) + round16(px), max_size(kf.work, max_size(kd.work, kw.work)));
    f.slot = round16(max_size(conv_k(d) * d->OC, max_size(kf.packed, max_size(kd.packed, kw.packed))));
    const int s2d = is_s2d(f.fwd) || is_s2d(f.dgrad) || is_s2d(f.wgrad);
    f.shared = (s2d ? 3 : 2) * f.slot; /* wf, wd, and for space-to-depth the weights ws of s */
    f.frame = 0;
    f.off = round16(fr);
    f.sbuf = round16(work); /* S (chunk, OH+2, OW+2, 4C), its input gradient, s's weight gradient (36 C, OC) */
    size_t sb = (size_t)f.chunk * (d->OH + 2) * (d->OW + 2) * 4 * d->C;
    f.dwt = f.sbuf + (s2d ? round16(max_size(sb, 36 * (size_t)d->C * d->OC)) : 0);
    f.zero = f.dwt + round16(conv_k(d) * d->OC);
    f.part = f.zero + round16((size_t)(d->OC > d->C ? d->OC : d->C));
    f.wm = f.part + round16(4 * (size_t)d->OC);
    f.stride = f.wm + round16(kw.sums);
    return f;
}

nnk_conv_choice nnk_conv_choice_get(const nn_conv_dims *d, int B, int backward) {
    nnk_conv_choice c;
    memset(&c, 0, sizeof c);
    if (B < 1) B = 1;
    if (!nnk_cpu_avx2()) {
        const conv_layout L = conv_layout_make(d, B);
        c.fwd = c.dgrad = c.wgrad = "im2col";
        c.groups = nn_groups((size_t)B);
        c.chunk = conv_chunk(d, (B + c.groups - 1) / c.groups);
        c.area = L.stride;
        c.floats = (size_t)c.groups * L.stride;
        return c;
    }
    const fast_plan f = fast_plan_make(d, B, backward);
    c.fwd = kernel_names[f.fwd], c.dgrad = kernel_names[f.dgrad], c.wgrad = kernel_names[f.wgrad];
    c.split = f.split;
    c.groups = f.G;
    c.chunk = f.chunk;
    c.slot = f.slot;
    c.area = f.stride;
    c.floats = f.shared + (size_t)f.G * f.stride;
    return c;
}

size_t nn_conv2d_scratch(const nn_conv_dims *d, int B) {
    if (B < 1) B = 1;
    size_t G = (size_t)nn_groups((size_t)B);
    conv_layout a = conv_layout_make(d, B);
    fast_plan f = fast_plan_make(d, B, 0), fb = fast_plan_make(d, B, 1);
    size_t na = G * a.stride, nb = f.shared + (size_t)f.G * f.stride, nc = fb.shared + (size_t)fb.G * fb.stride;
    return na > nb ? (na > nc ? na : nc) : (nb > nc ? nb : nc);
}

/* tmp (w) = column sums of g (rows, w) (leading dimension ld). Contiguous rows of a width that is not a multiple
 * of 8 are summed as flat periods of lcm(w, 8) floats (whole vectors; each column then gets several interleaved
 * partial sums), else row by row. */
static void col_sums(float *tmp, const float *g, size_t rows, int w, size_t ld) {
    int per = w;
    while (per % 8) per += w;
    for (int c = 0; c < w; c++) tmp[c] = 0.0f;
    size_t r = 0;
    if (ld == (size_t)w && w % 8 && per <= 64) {
        float acc[64] = {0};
        const size_t rp = (size_t)(per / w);
        for (; r + rp <= rows; r += rp) {
            const float *p = g + r * ld;
#pragma omp simd
            for (int j = 0; j < per; j++) acc[j] += p[j];
        }
        for (int j = 0; j < per; j++) tmp[j % w] += acc[j];
    }
    for (; r < rows; r++) {
        const float *gr = g + r * ld;
#pragma omp simd
        for (int c = 0; c < w; c++) tmp[c] += gr[c];
    }
}

/* dout columns [oc0, oc1) of rows (rows, OC) *= act'(out); db[oc0..oc1) += their sums (double, over blocks of 256
 * rows) unless db is NULL. tmp: oc1 - oc0 floats. Whole rows (all OC columns) go through in blocks. */
static void act_grad_bias(float *go, double *db, float *tmp, const float *out, size_t rows, int OC, int oc0, int oc1,
                          nn_act act, float slope) {
    const int w = oc1 - oc0;
    for (size_t r0 = 0; r0 < rows; r0 += 256) {
        size_t r1 = rows - r0 < 256 ? rows : r0 + 256;
        if (act != NN_ACT_NONE) {
            if (w == OC)
                nn_act_grad_inplace(go + r0 * OC, out + r0 * OC, (r1 - r0) * OC, act, slope);
            else
                for (size_t r = r0; r < r1; r++)
                    nn_act_grad_inplace(go + r * OC + oc0, out + r * OC + oc0, (size_t)w, act, slope);
        }
        if (!db) continue;
        col_sums(tmp, go + r0 * OC + oc0, r1 - r0, w, (size_t)OC);
        for (int c = 0; c < w; c++) db[oc0 + c] += tmp[c];
    }
}

/* dw (OC, K) = sum over g < G of the (K, OC) partials at parts + g * stride, in group order; in 16 x 16 tiles,
 * parallel over tiles (call inside a parallel region). */
static void reduce_transpose(float *dw, const float *parts, size_t stride, int G, size_t K, int OC) {
    const size_t kt = (K + 15) / 16, ot = (size_t)(OC + 15) / 16;
#pragma omp for schedule(static)
    for (size_t t = 0; t < kt * ot; t++) {
        size_t k0 = t / ot * 16, o0 = t % ot * 16;
        size_t nk = K - k0 < 16 ? K - k0 : 16, no = (size_t)OC - o0 < 16 ? (size_t)OC - o0 : 16;
        float acc[16][16];
        for (size_t k = 0; k < nk; k++)
            for (size_t j = 0; j < 16; j++) acc[k][j] = 0.0f;
        for (int g = 0; g < G; g++)
            for (size_t k = 0; k < nk; k++) {
                const float *src = parts + (size_t)g * stride + (k0 + k) * OC + o0;
                for (size_t j = 0; j < no; j++) acc[k][j] += src[j];
            }
        for (size_t j = 0; j < no; j++)
            for (size_t k = 0; k < nk; k++) dw[(o0 + j) * K + k0 + k] = acc[k][j];
    }
}

/* Inside a parallel region (orphaned work-sharing, every thread calls it): the batch's input as the implicit-GEMM
 * kernels read it — zero-framed into `frame` when the layer pads, one image per iteration — and the per-position
 * offsets `off` into it. Ends with the barrier of the `single`. */
static void gconv_stage_input(float *frame, int32_t *off, const float *in, int B, const nn_conv_dims *d, int framed) {
    const size_t in_n = conv_in_n(d), fr1 = nnk_gconv_frame_floats(d, 1);
    if (framed) {
#pragma omp for schedule(static)
        for (int i = 0; i < B; i++) nnk_gconv_pad(frame + i * fr1, in + i * in_n, 1, d);
    }
#pragma omp single
    nnk_gconv_offsets(off, B, d);
}

/* Inside a parallel region (every thread calls it): the forward kernels' packed weights wf, in blocks of 16 output
 * channels over the threads (one thread for the conv_small layouts). Ends with a barrier. */
static void pack_forward_par(float *wf, const float *w, const nn_conv_dims *d, const fast_plan *f) {
    if (f->fwd == CK_PLANAR || f->fwd == CK_SCONV) {
#pragma omp single
        {
            if (f->fwd == CK_PLANAR)
                nnk_sconv_pack_planar(wf, w, d);
            else
                nnk_sconv_pack_forward(wf, w, d);
        }
        return;
    }
    if (f->fwd == CK_S2D_WINO4) { /* ws (OC, 3, 3, 4C) in the third slot, then the Winograd u of s */
        float *ws = wf + 2 * f->slot;
#pragma omp for schedule(static)
        for (int oc0 = 0; oc0 < d->OC; oc0 += 16) nnk_s2d_weights(ws, w, d, oc0, oc0 + 16);
#pragma omp for schedule(static)
        for (int oc0 = 0; oc0 < d->OC; oc0 += 16) nnk_wino4_pack(wf, ws, &f->s, 0, oc0, oc0 + 16);
        return;
    }
#pragma omp for schedule(static)
    for (int oc0 = 0; oc0 < d->OC; oc0 += 16) {
        if (f->fwd == CK_WINO4)
            nnk_wino4_pack(wf, w, d, 0, oc0, oc0 + 16);
        else if (f->fwd == CK_WINO2)
            nnk_wino_pack(wf, w, d, 0, oc0, oc0 + 16);
        else
            nnk_gconv_pack_forward(wf, w, d, oc0, oc0 + 16);
    }
}

/* The same for the input-gradient kernels' weights wd: Winograd u of the transposed convolution, wt (gather), the
 * conv_small layout (seg, one thread) or wd (scatter). Ends with a barrier. */
static void pack_data_par(float *wd, const float *w, const nn_conv_dims *d, const fast_plan *f) {
    if (is_s2d(f->dgrad)) { /* ws (OC, 3, 3, 4C) in the third slot, then the Winograd u of the transposed st */
        float *ws = wd + f->slot;
#pragma omp for schedule(static)
        for (int oc0 = 0; oc0 < d->OC; oc0 += 16) nnk_s2d_weights(ws, w, d, oc0, oc0 + 16);
#pragma omp for schedule(static)
        for (int o0 = 0; o0 < f->st.OC; o0 += 16)
            (f->dgrad == CK_S2D_WINO4 ? nnk_wino4_pack : nnk_wino_pack)(wd, ws, &f->st, 1, o0, o0 + 16);
        return;
    }
    if (f->dgrad == CK_ROWSEG) {
#pragma omp single
        nnk_sconv_pack_data(wd, w, d);
        return;
    }
    const int n = is_wino_t(f->dgrad) ? f->t.OC : d->OC; /* the channels the packing function runs over */
#pragma omp for schedule(static)
    for (int o0 = 0; o0 < n; o0 += 16) {
        const int o1 = n - o0 < 16 ? n : o0 + 16;
        if (f->dgrad == CK_WINO4_T)
            nnk_wino4_pack(wd, w, &f->t, 1, o0, o1);
        else if (f->dgrad == CK_WINO2_T)
            nnk_wino_pack(wd, w, &f->t, 1, o0, o1);
        else if (f->dgrad == CK_GATHER)
            nnk_gconv_pack_transposed(wd, w, d, o0, o1);
        else
            nnk_gconv_pack_data(wd, w, d, o0, o1);
    }
}

static void fast_forward(float *out, double *stats, float *scratch, const float *in, const float *w,
                         const float *bias, int B, const nn_conv_dims *d, nn_act act, float slope) {
    const fast_plan f = fast_plan_make(d, B, 0);
    const int OC = d->OC, par = conv_flops(d, B) >= PAR_FLOPS;
    const size_t in_n = conv_in_n(d), out_n = conv_out_n(d);
    float *wf = scratch;
    if (stats) memset(stats, 0, sizeof(double) * 2 * OC);
    if (f.split) {
        const int framed = nnk_gconv_framed(d);
        float *area = scratch + f.shared, *frame = framed ? area + f.frame : (float *)in;
        int32_t *off = (int32_t *)(area + f.off);
#pragma omp parallel if (par)
        {
            pack_forward_par(wf, w, d, &f);
            gconv_stage_input(frame, off, in, B, d, framed);
#pragma omp for schedule(static)
            for (int oc0 = 0; oc0 < OC; oc0 += 16)
                nnk_gconv_forward(out, stats, stats ? stats + OC : NULL, frame, off, wf, bias, B, d, act, slope, oc0,
                                  oc0 + 16);
        }
        return;
    }
#pragma omp parallel if (par)
    {
        pack_forward_par(wf, w, d, &f);
#pragma omp for schedule(static)
        for (int g = 0; g < f.G; g++) {
            float *area = scratch + f.shared + (size_t)g * f.stride;
            int32_t *off = (int32_t *)(area + f.off);
            double *part = (double *)(area + f.part); /* (2, OC): sum, sum of squares */
            for (int c = 0; c < 2 * OC; c++) part[c] = 0.0;
            int i0 = (int)nn_group_start((size_t)B, f.G, g), i1 = (int)nn_group_start((size_t)B, f.G, g + 1);
            for (int i = i0; i < i1; i += f.chunk) {
                int n = i1 - i < f.chunk ? i1 - i : f.chunk;
                const float *a = in + (size_t)i * in_n;
                float *o = out + (size_t)i * out_n;
                if (f.fwd == CK_WINO2 || f.fwd == CK_WINO4) {
                    (f.fwd == CK_WINO4 ? nnk_wino4_forward : nnk_wino_forward)(o, stats ? part : NULL, part + OC,
                                                                               area + f.frame, a, wf, bias, n, d, act,
                                                                               slope);
                    continue;
                }
                if (f.fwd == CK_S2D_WINO4) {
                    nnk_s2d_input(area + f.sbuf, a, n, d);
                    nnk_wino4_forward(o, stats ? part : NULL, part + OC, area + f.frame, area + f.sbuf, wf, bias, n,
                                      &f.s, act, slope);
                    continue;
                }
                if (f.fwd == CK_PLANAR) { /* always a copy: its tiles read past the frame */
                    nnk_gconv_pad(area + f.frame, a, n, d);
                    memset(area + f.frame + nnk_gconv_frame_floats(d, n), 0, sizeof(float) * NNK_SCONV_SLACK);
                    nnk_sconv_planar_forward(o, stats ? part : NULL, part + OC, area + f.frame, wf, bias, n, d, act,
                                             slope);
                    continue;
                }
                if (nnk_gconv_framed(d)) {
                    nnk_gconv_pad(area + f.frame, a, n, d);
                    a = area + f.frame;
                }
                nnk_gconv_offsets(off, n, d);
                if (f.fwd == CK_SCONV)
                    nnk_sconv_forward(o, stats ? part : NULL, part + OC, a, off, wf, bias, n, d, act, slope);
                else
                    nnk_gconv_forward(o, stats ? part : NULL, part + OC, a, off, wf, bias, n, d, act, slope, 0, OC);
            }
        }
    }
    if (stats)
        for (int c = 0; c < 2 * OC; c++) {
            double s = 0.0;
            for (int g = 0; g < f.G; g++) s += ((const double *)(scratch + f.shared + (size_t)g * f.stride + f.part))[c];
            stats[c] = s;
        }
}

/* Input gradient of n images (single thread): din (n, H, W, C), channels [c0, c1). frame/off: scratch for the
 * padded output gradient (gather) or the padded input gradient (scatter, pad > 0). */
static void fast_input_grad(float *din, float *frame, int32_t *off, const float *go, const float *wd,
                            const float *zero, int n, const nn_conv_dims *d, const fast_plan *f, int c0, int c1) {
    if (f->dgrad == CK_GATHER)
        nnk_gconv_forward(din, NULL, NULL, frame, off, wd, NULL, n, &f->t, NN_ACT_NONE, 0.0f, c0, c1);
    else
        nnk_gconv_backward_data(nnk_gconv_framed(d) ? frame : din, go, off, wd, zero, n, d, c0, c1);
}

static void fast_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                          const float *in, const float *w, int B, const nn_conv_dims *d, nn_act act, float slope) {
    const fast_plan f = fast_plan_make(d, B, 1);
    const int OC = d->OC, C = d->C, par = conv_flops(d, B) >= PAR_FLOPS;
    const size_t K = conv_k(d), in_n = conv_in_n(d), out_n = conv_out_n(d);
    const size_t fr1 = nnk_gconv_frame_floats(d, 1), frt1 = f.dgrad == CK_GATHER ? nnk_gconv_frame_floats(&f.t, 1) : 0;
    float *wd = scratch + f.slot; /* Winograd u of the transposed convolution, wt (gather) or wd (scatter) */
    if (f.split) {
        float *area = scratch + f.shared, *dwt = area + f.dwt, *zero = area + f.zero;
        const int framed = nnk_gconv_framed(d);
        float *frame = framed ? area + f.frame : (float *)in, *frame2 = area + f.frame + B * fr1;
        int32_t *off = (int32_t *)(area + f.off), *off2 = off + (size_t)B * d->OH * d->OW;
        double *db = (double *)(area + f.part);
        for (int c = 0; c < OC; c++) db[c] = 0.0, zero[c] = 0.0f;
#pragma omp parallel if (par)
        {
            if (din) pack_data_par(wd, w, d, &f);
            gconv_stage_input(frame, off, in, B, d, framed && dw); /* no weight gradient: only the offsets */
            /* output-channel blocks: activation gradient, bias and weight gradients over the whole batch */
#pragma omp for schedule(static)
            for (int oc0 = 0; oc0 < OC; oc0 += 16) {
                float tmp[16];
                act_grad_bias(dout, dbias ? db : NULL, tmp, out, (size_t)B * d->OH * d->OW, OC, oc0, oc0 + 16, act,
                              slope);
                if (dw) nnk_gconv_backward_weight(dwt, 0, frame, off, dout, B, d, oc0, oc0 + 16);
            }
            if (din) {
                /* input-channel blocks */
                if (f.dgrad == CK_GATHER) {
#pragma omp for schedule(static)
                    for (int i = 0; i < B; i++) nnk_gconv_pad(frame2 + i * frt1, dout + i * out_n, 1, &f.t);
#pragma omp single
                    nnk_gconv_offsets(off2, B, &f.t);
                } else {
                    float *acc = framed ? frame2 : din;
#pragma omp for schedule(static)
                    for (int i = 0; i < B; i++) memset(acc + i * fr1, 0, sizeof(float) * fr1);
                }
#pragma omp for schedule(static)
                for (int c0 = 0; c0 < C; c0 += 16)
                    fast_input_grad(din, frame2, f.dgrad == CK_GATHER ? off2 : off, dout, wd, zero, B, d, &f, c0,
                                    c0 + 16);
                if (f.dgrad != CK_GATHER && framed) {
#pragma omp for schedule(static)
                    for (int i = 0; i < B; i++) nnk_gconv_unpad(din + i * in_n, frame2 + i * fr1, 1, d);
                }
            }
            if (dw) reduce_transpose(dw, dwt, 0, 1, K, OC);
        }
        if (dbias)
            for (int c = 0; c < OC; c++) dbias[c] = (float)db[c];
        return;
    }
#pragma omp parallel if (par)
    {
        if (din) pack_data_par(wd, w, d, &f);
#pragma omp for schedule(static)
        for (int g = 0; g < f.G; g++) {
            float *area = scratch + f.shared + (size_t)g * f.stride, *dwg = area + f.dwt, *zero = area + f.zero;
            float *frame = area + f.frame;
            int32_t *off = (int32_t *)(area + f.off);
            double *dbg = (double *)(area + f.part); /* (OC) */
            for (int c = 0; c < OC; c++) dbg[c] = 0.0, zero[c] = 0.0f;
            int i0 = (int)nn_group_start((size_t)B, f.G, g), i1 = (int)nn_group_start((size_t)B, f.G, g + 1);
            for (int i = i0; i < i1; i += f.chunk) {
                int n = i1 - i < f.chunk ? i1 - i : f.chunk;
                float *go = dout + (size_t)i * out_n; /* (n*OH*OW, OC) */
                float tmp[256];
                for (int oc0 = 0; oc0 < OC; oc0 += 256)
                    act_grad_bias(go, dbias ? dbg : NULL, tmp, out ? out + (size_t)i * out_n : NULL,
                                  (size_t)n * d->OH * d->OW, OC, oc0, OC - oc0 < 256 ? OC : oc0 + 256, act, slope);
                const float *a = dw ? in + (size_t)i * in_n : NULL;
                /* the weight gradient; the input-gradient kernels below write the offsets they read */
                if (dw && (f.wgrad == CK_WINO2 || f.wgrad == CK_WINO4)) {
                    (f.wgrad == CK_WINO4 ? nnk_wino4_wgrad_accumulate : nnk_wino_wgrad_accumulate)(
                        area + f.wm, i != i0, frame, a, go, n, d);
                } else if (dw && f.wgrad == CK_S2D_WINO2) {
                    nnk_s2d_input(area + f.sbuf, a, n, d);
                    nnk_wino_wgrad_accumulate(area + f.wm, i != i0, frame, area + f.sbuf, go, n, &f.s);
                } else if (dw) {
                    if (nnk_gconv_framed(d)) {
                        nnk_gconv_pad(frame, a, n, d);
                        a = frame;
                    }
                    nnk_gconv_offsets(off, n, d);
                    if (f.wgrad == CK_SCONV) /* dwg (K, OC) (+)= */
                        nnk_sconv_backward_weight(dwg, i != i0, a, off, go, n, d);
                    else
                        nnk_gconv_backward_weight(dwg, i != i0, a, off, go, n, d, 0, OC);
                }
                if (!din) continue;
                float *di = din + (size_t)i * in_n;
                if (is_s2d(f.dgrad)) { /* S's input gradient (n, OH, OW, 4C) at the pixels that hold input pixels */
                    (f.dgrad == CK_S2D_WINO4 ? nnk_wino4_forward : nnk_wino_forward)(
                        area + f.sbuf, NULL, NULL, frame, go, wd, NULL, n, &f.st, NN_ACT_NONE, 0.0f);
                    nnk_s2d_grad_input(di, area + f.sbuf, n, d);
                    continue;
                }
                if (f.dgrad == CK_ROWSEG) { /* into the frame (it has the slack the tiles need), then copied out */
                    memset(frame, 0, sizeof(float) * (nnk_gconv_frame_floats(d, n) + NNK_SCONV_SLACK));
                    nnk_gconv_offsets(off, n, d); /* its own, as the scatter's below */
                    nnk_sconv_backward_data(frame, go, off, wd, zero, n, d);
                    nnk_gconv_unpad(di, frame, n, d);
                    continue;
                }
                if (is_wino_t(f.dgrad)) { /* the transposed convolution reads the output gradient (n, OH, OW, OC) */
                    (f.dgrad == CK_WINO4_T ? nnk_wino4_forward : nnk_wino_forward)(di, NULL, NULL, frame, go, wd, NULL,
                                                                                   n, &f.t, NN_ACT_NONE, 0.0f);
                    continue;
                }
                if (f.dgrad == CK_GATHER) {
                    nnk_gconv_pad(frame, go, n, &f.t);
                    nnk_gconv_offsets(off, n, &f.t);
                } else {
                    memset(nnk_gconv_framed(d) ? frame : di, 0, sizeof(float) * nnk_gconv_frame_floats(d, n));
                    /* the scatter's own offsets: a Winograd weight gradient uses the offsets' area as its work area
                     * (n OH OW integers, nothing beside the convolution) */
                    nnk_gconv_offsets(off, n, d);
                }
                fast_input_grad(di, frame, off, go, wd, zero, n, d, &f, 0, C);
                if (f.dgrad != CK_GATHER && nnk_gconv_framed(d)) nnk_gconv_unpad(di, frame, n, d);
            }
            if (dw && (f.wgrad == CK_WINO2 || f.wgrad == CK_WINO4))
                (f.wgrad == CK_WINO4 ? nnk_wino4_wgrad_finish : nnk_wino_wgrad_finish)(dwg, area + f.wm, d);
            if (dw && f.wgrad == CK_S2D_WINO2) {
                nnk_wino_wgrad_finish(area + f.sbuf, area + f.wm, &f.s);
                nnk_s2d_grad_weight(dwg, area + f.sbuf, d);
            }
        }
        /* Sum the group partials in group order (implicit barrier above); they are (K, OC), dw is (OC, K). */
        if (dw) reduce_transpose(dw, scratch + f.shared + f.dwt, f.stride, f.G, K, OC);
#pragma omp single
        for (int c = 0; c < OC && dbias; c++) {
            double s = 0.0;
            for (int g = 0; g < f.G; g++) s += ((const double *)(scratch + f.shared + (size_t)g * f.stride + f.part))[c];
            dbias[c] = (float)s;
        }
    }
}

void nn_im2col(float *col, const float *in, int n, const nn_conv_dims *d) {
    const int KW = d->KW, C = d->C, W = d->W, H = d->H;
    const size_t K = conv_k(d), in_n = conv_in_n(d);
    for (int img = 0; img < n; img++) {
        const float *ib = in + (size_t)img * in_n;
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++) {
                float *row = col + (((size_t)img * d->OH + oh) * d->OW + ow) * K;
                int ih0 = oh * d->stride - d->pad, iw0 = ow * d->stride - d->pad;
                int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
                for (int kh = 0; kh < d->KH; kh++) {
                    int ih = ih0 + kh;
                    float *dst = row + (size_t)kh * KW * C;
                    if (ih < 0 || ih >= H || kw1 <= kw0) {
                        memset(dst, 0, sizeof(float) * KW * C);
                        continue;
                    }
                    const float *src = ib + ((size_t)ih * W + iw0 + kw0) * C;
                    const size_t len = (size_t)(kw1 - kw0) * C;
                    if (kw0 > 0) memset(dst, 0, sizeof(float) * kw0 * C);
                    if (len < 32) /* short runs (few channels): a loop beats a memcpy call */
                        for (size_t i = 0; i < len; i++) dst[(size_t)kw0 * C + i] = src[i];
                    else
                        memcpy(dst + (size_t)kw0 * C, src, sizeof(float) * len);
                    if (kw1 < KW) memset(dst + (size_t)kw1 * C, 0, sizeof(float) * (KW - kw1) * C);
                }
            }
    }
}

void nn_col2im(float *din, const float *dcol, int n, const nn_conv_dims *d) {
    const int KW = d->KW, C = d->C, W = d->W, H = d->H;
    const size_t K = conv_k(d), in_n = conv_in_n(d);
    for (int img = 0; img < n; img++) {
        float *ib = din + (size_t)img * in_n;
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++) {
                const float *row = dcol + (((size_t)img * d->OH + oh) * d->OW + ow) * K;
                int ih0 = oh * d->stride - d->pad, iw0 = ow * d->stride - d->pad;
                int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
                if (kw1 <= kw0) continue;
                for (int kh = 0; kh < d->KH; kh++) {
                    int ih = ih0 + kh;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + ((size_t)kh * KW + kw0) * C;
                    float *dst = ib + ((size_t)ih * W + iw0 + kw0) * C;
                    size_t len = (size_t)(kw1 - kw0) * C;
#pragma omp simd
                    for (size_t i = 0; i < len; i++) dst[i] += src[i];
                }
            }
    }
}

void nn_conv2d_forward(float *out, double *stats, float *scratch, const float *in, const float *w, const float *bias,
                       int B, const nn_conv_dims *d, nn_act act, float slope) {
    if (nnk_cpu_avx2()) {
        fast_forward(out, stats, scratch, in, w, bias, B, d, act, slope);
        return;
    }
    const int G = nn_groups((size_t)B), OC = d->OC, ident = col_is_input(d);
    const size_t K = conv_k(d), in_n = conv_in_n(d), out_n = conv_out_n(d), pix = (size_t)d->OH * d->OW;
    const conv_layout L = conv_layout_make(d, B);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < G; g++) {
        float *area = scratch + (size_t)g * L.stride, *col = area + L.col, *tmp = area + L.tmp;
        double *part = (double *)(area + L.part); /* (2, OC): sum, sum of squares */
        for (int c = 0; c < 2 * OC; c++) part[c] = 0.0;
        int i0 = (int)nn_group_start((size_t)B, G, g), i1 = (int)nn_group_start((size_t)B, G, g + 1);
        int sc = conv_chunk(d, i1 - i0);
        for (int i = i0; i < i1; i += sc) {
            int n = i1 - i < sc ? i1 - i : sc;
            const float *a = in + (size_t)i * in_n; /* (n*OH*OW, K) */
            if (!ident) {
                nn_im2col(col, a, n, d);
                a = col;
            }
            float *o = out + (size_t)i * out_n; /* (n*OH*OW, OC) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n * pix), OC, (int)K, 1.0f, a, (int)K, w,
                        (int)K, 0.0f, o, OC);
            nn_bias_act(o, stats ? part : NULL, part + OC, tmp, n * pix, OC, (size_t)OC, bias, act, slope);
        }
    }
    if (stats)
        for (int c = 0; c < 2 * OC; c++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(scratch + (size_t)g * L.stride + L.part))[c];
            stats[c] = s;
        }
}

void nn_conv2d_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                        const float *in, const float *w, int B, const nn_conv_dims *d, nn_act act, float slope) {
    if (nnk_cpu_avx2()) {
        fast_backward(din, dw, dbias, scratch, dout, out, in, w, B, d, act, slope);
        return;
    }
    const int G = nn_groups((size_t)B), OC = d->OC, ident = col_is_input(d);
    const size_t K = conv_k(d), in_n = conv_in_n(d), out_n = conv_out_n(d), pix = (size_t)d->OH * d->OW;
    const size_t nw = (size_t)OC * K;
    const conv_layout L = conv_layout_make(d, B);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int g = 0; g < G; g++) {
            float *area = scratch + (size_t)g * L.stride, *col = area + L.col, *dwg = area + L.dw;
            float *tmp = area + L.tmp;
            double *dbg = (double *)(area + L.part); /* (OC) */
            for (int c = 0; c < OC; c++) dbg[c] = 0.0;
            int i0 = (int)nn_group_start((size_t)B, G, g), i1 = (int)nn_group_start((size_t)B, G, g + 1);
            int sc = conv_chunk(d, i1 - i0);
            for (int i = i0; i < i1; i += sc) {
                int n = i1 - i < sc ? i1 - i : sc;
                size_t rows = n * pix;
                float *go = dout + (size_t)i * out_n; /* (rows, OC) */
                act_grad_bias(go, dbias ? dbg : NULL, tmp, out ? out + (size_t)i * out_n : NULL, rows, OC, 0, OC, act,
                              slope);
                if (dw) {
                    const float *a = in + (size_t)i * in_n; /* (rows, K) */
                    if (!ident) {
                        nn_im2col(col, a, n, d);
                        a = col;
                    }
                    /* dwg (OC, K) (+)= go^T (OC, rows) . a (rows, K) */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, (int)K, (int)rows, 1.0f, go, OC, a,
                                (int)K, i == i0 ? 0.0f : 1.0f, dwg, (int)K);
                }
                if (din) {
                    float *di = din + (size_t)i * in_n;
                    /* dcol (rows, K) = go (rows, OC) . w (OC, K) */
                    if (ident) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)K, OC, 1.0f, go, OC, w,
                                    (int)K, 0.0f, di, (int)K);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)K, OC, 1.0f, go, OC, w,
                                    (int)K, 0.0f, col, (int)K);
                        memset(di, 0, sizeof(float) * n * in_n);
                        nn_col2im(di, col, n, d);
                    }
                }
            }
        }
        /* Sum the group partials in group order (implicit barrier above). */
#pragma omp for schedule(static)
        for (size_t e = 0; e < (dw ? nw : 0); e++) {
            float s = 0.0f;
            for (int g = 0; g < G; g++) s += scratch[(size_t)g * L.stride + L.dw + e];
            dw[e] = s;
        }
#pragma omp single
        for (int c = 0; c < OC && dbias; c++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(scratch + (size_t)g * L.stride + L.part))[c];
            dbias[c] = (float)s;
        }
    }
}

void nn_conv2d_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                           const nn_conv_dims *d) {
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++)
                for (int oc = 0; oc < d->OC; oc++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int kh = 0; kh < d->KH; kh++)
                        for (int kw = 0; kw < d->KW; kw++) {
                            int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                            if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                            const float *x = in + (((size_t)b * d->H + ih) * d->W + iw) * d->C;
                            const float *k = w + (((size_t)oc * d->KH + kh) * d->KW + kw) * d->C;
                            for (int c = 0; c < d->C; c++) s += (double)x[c] * k[c];
                        }
                    out[(((size_t)b * d->OH + oh) * d->OW + ow) * d->OC + oc] = (float)s;
                }
}

void nn_conv2d_backward_ref(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                            int B, const nn_conv_dims *d) {
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++)
                for (int oc = 0; oc < d->OC; oc++) {
                    float g = dout[(((size_t)b * d->OH + oh) * d->OW + ow) * d->OC + oc];
                    if (dbias) dbias[oc] += g;
                    for (int kh = 0; kh < d->KH; kh++)
                        for (int kw = 0; kw < d->KW; kw++) {
                            int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                            if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                            size_t xi = (((size_t)b * d->H + ih) * d->W + iw) * d->C;
                            size_t ki = (((size_t)oc * d->KH + kh) * d->KW + kw) * d->C;
                            for (int c = 0; c < d->C; c++) {
                                dw[ki + c] += g * in[xi + c];
                                if (din) din[xi + c] += g * w[ki + c];
                            }
                        }
                }
}
