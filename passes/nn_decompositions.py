"""Decompositions of the neural-network composites (conv, pooling, norms, losses, activations).

They register into the same ``COMPOSITES`` table as ``decompositions.py``; they live in their own
file only to keep each module small. Attributes arrive normalized (tuples per spatial dim,
``(lo, hi)`` padding pairs) from ``graphc.nn.functional``.
"""
from __future__ import annotations

import math

from graphc.ir import prims as P

from .decompositions import composite, log_softmax, mean, softmax


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape)


def _prod(xs) -> int:
    n = 1
    for v in xs:
        n *= v
    return n


# ---- convolution ----------------------------------------------------------------------------

@composite("conv", grad_name="ConvolutionBackward0")
def conv(x, weight, bias, stride, padding, dilation, groups):
    """N-d convolution as im2col (unfold) + one batched matmul per group."""
    # checked here, not before the call, so that autocast has cast the operands first
    if bias is not None and bias.dtype is not x.dtype:
        raise RuntimeError(f"Input type ({x.dtype.c_name}) and bias type ({bias.dtype.c_name}) should be the same")
    if x.dtype is not weight.dtype:
        raise RuntimeError(f"expected scalar type {x.dtype.scalar_name} but found {weight.dtype.scalar_name}")
    nsp = len(_shape(weight)) - 2
    kernel = _shape(weight)[2:]
    n, c = _shape(x)[:2]
    oc = _shape(weight)[0]
    cg = c // groups
    cols = P.unfold(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    out_sp = _shape(cols)[2:2 + nsp]
    cols = P.reshape(cols, shape=(n, groups, cg) + out_sp + kernel)
    # (n, groups, out..., kernel..., cg): unfold's memory order, so the permute + reshape are views
    perm = (0, 1) + tuple(range(3, 3 + 2 * nsp)) + (2,)
    cols = P.reshape(P.permute(cols, dims=perm), shape=(n, groups, _prod(out_sp), _prod(kernel) * cg))
    wm = P.reshape(P.permute(P.reshape(weight, shape=(groups, oc // groups, cg, _prod(kernel))), dims=(0, 3, 2, 1)),
                   shape=(groups, _prod(kernel) * cg, oc // groups))
    y = P.matmul(cols, wm)
    y = P.reshape(P.permute(y, dims=(0, 1, 3, 2)), shape=(n, oc) + out_sp)
    if bias is not None:
        y = P.add(y, P.reshape(bias, shape=(oc,) + (1,) * nsp))
    return y


@composite("conv_transpose", grad_name="ConvolutionBackward0")
def conv_transpose(x, weight, bias, stride, padding, output_padding, groups, dilation):
    """The adjoint of conv: scatter each input pixel's weighted kernel into the output (fold)."""
    nsp = len(_shape(weight)) - 2
    kernel = _shape(weight)[2:]
    n, cin = _shape(x)[:2]
    in_sp = _shape(x)[2:]
    ocg = _shape(weight)[1]
    cig = cin // groups
    size = tuple((in_sp[i] - 1) * stride[i] - padding[i][0] - padding[i][1] + dilation[i] * (kernel[i] - 1)
                 + output_padding[i] + 1 for i in range(nsp))
    xm = P.permute(P.reshape(x, shape=(n, groups, cig, _prod(in_sp))), dims=(0, 1, 3, 2))
    wm = P.reshape(weight, shape=(groups, cig, ocg * _prod(kernel)))
    cols = P.matmul(xm, wm)  # (n, groups, pixels, ocg * K)
    cols = P.reshape(cols, shape=(n, groups) + in_sp + (ocg,) + kernel)
    perm = (0, 1, 2 + nsp) + tuple(range(2, 2 + nsp)) + tuple(range(3 + nsp, 3 + 2 * nsp))
    cols = P.reshape(P.permute(cols, dims=perm), shape=(n, groups * ocg) + in_sp + kernel)
    y = P.fold(cols, size=size, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    if bias is not None:
        y = P.add(y, P.reshape(bias, shape=(groups * ocg,) + (1,) * nsp))
    return y


# ---- pooling --------------------------------------------------------------------------------

def pool_padding(size, kernel, stride, padding, dilation, ceil_mode):
    """(lo, hi) padding per dim, with the extra high padding ceil_mode needs (PyTorch's rule:
    the last window must start inside the input or its left padding)."""
    pads = []
    for i, s in enumerate(size):
        p, k, st, d = padding[i], kernel[i], stride[i], dilation[i]
        span = s + 2 * p - d * (k - 1) - 1
        out = (-(-span // st) if ceil_mode else span // st) + 1
        if ceil_mode and (out - 1) * st >= s + p:
            out -= 1
        hi = max(p, (out - 1) * st + d * (k - 1) + 1 - s - p)
        pads.append((p, hi))
    return tuple(pads)


def _tiling_windows(x, kernel, stride, padding, dilation) -> bool:
    """The windows tile the input: kernel == stride, no padding (ceil_mode's included), no
    dilation. Rows and columns past the last whole window are left out, as PyTorch does."""
    return (tuple(kernel) == tuple(stride) and all(lo == 0 and hi == 0 for lo, hi in padding)
            and all(d == 1 for d in dilation) and all(s >= k for s, k in zip(_shape(x)[2:], kernel)))


# From this many elements a window offset's slice is copied before the running maximum reads it:
# the compare, NaN test and maximum then run over contiguous arrays, where numpy's loops over the
# strided slice (runs of 1 to a few elements) cost 5-20x more per element (2x2 pooling of
# 64x32x8x8 float32, forward and backward compiled, one thread: 636 -> 331 us). Below, the copies'
# calls cost more than they save (4x8x8x8 copied: 48 -> 66 us; 16x8x8x8 about even).
COPY_WINDOW_OFFSETS_FROM = 4096


def _max_of_tiles(x, kernel):
    """Max over windows that tile the input, one spatial dim at a time from the last (max is
    separable, and so are PyTorch's rules, which follow its row-major scan of a window: the first
    maximum wins ties, and the last NaN of a window wins). Along each dim, a running maximum over
    the window offsets, each a strided slice (no argmax row by row, no gather): the running value
    is replaced where the next offset is greater or NaN. Autodiff of that ``where`` chain sends
    the gradient to exactly the chosen element (a mask per offset, no scatter), and the offsets'
    gradients, disjoint slices that tile the window axis, are concatenated. A large offset's
    slice is copied first (``COPY_WINDOW_OFFSETS_FROM``)."""
    n, c = _shape(x)[:2]
    sizes = _shape(x)[2:]
    out = tuple(s // k for s, k in zip(sizes, kernel))
    if any(o * k != s for o, k, s in zip(out, kernel, sizes)):  # PyTorch leaves the rest out
        x = P.slice(x, index=((0, n, 1), (0, c, 1)) + tuple((0, o * k, 1) for o, k in zip(out, kernel)))
    y = x
    for d in reversed(range(len(kernel))):
        pre, k, o, post = n * c * _prod(out[:d]) * _prod(kernel[:d]), kernel[d], out[d], _prod(out[d + 1:])
        windows = P.reshape(y, shape=(pre, o, k, post))
        best = None
        for j in range(k):
            v = P.slice(windows, index=((0, pre, 1), (0, o, 1), (j, j + 1, 1), (0, post, 1)))
            if pre * o * post >= COPY_WINDOW_OFFSETS_FROM:
                v = P.copy(v)
            if best is None:
                best = v
                continue
            take = P.gt(v, best)
            if x.dtype.is_floating_point:
                take = P.logical_or(take, P.isnan(v))
            best = P.where(take, v, best)
        y = best
    return P.reshape(y, shape=(n, c) + out)


@composite("max_pool", grad_name="MaxPool2DWithIndicesBackward0")
def max_pool(x, kernel, stride, padding, dilation):
    """Max over each window; the gradient goes to the first maximum, as in PyTorch."""
    if _tiling_windows(x, kernel, stride, padding, dilation):
        return _max_of_tiles(x, kernel)
    nsp = len(kernel)
    cols = P.unfold(x, kernel=kernel, stride=stride, padding=padding, dilation=dilation, value=-math.inf)
    lead = _shape(cols)[:2 + nsp]
    flat = P.reshape(cols, shape=lead + (_prod(kernel),))
    idx = P.argmax(flat, dim=2 + nsp, keepdim=True)
    return P.reshape(P.gather(flat, idx, axis=2 + nsp), shape=lead)


@composite("avg_pool", grad_name="AvgPool2DBackward0")
def avg_pool(x, kernel, stride, padding, count_include_pad, divisor_override, real_padding):
    """Mean over each window. ``padding`` includes ceil_mode's extra high padding;
    ``real_padding`` is the user's, which count_include_pad counts and the overhang doesn't."""
    nsp = len(kernel)
    cols = P.unfold(x, kernel=kernel, stride=stride, padding=padding, dilation=(1,) * nsp)
    axes = tuple(range(2 + nsp, 2 + 2 * nsp))
    total = P.sum(cols, dims=axes, keepdim=False)
    if divisor_override:
        return P.div(total, divisor_override)
    sp = _shape(x)[2:]
    ones = P.full(shape=(1, 1) + sp, value=1, dtype=x.dtype)
    if count_include_pad:
        ones = P.pad(ones, pads=((0, 0), (0, 0)) + tuple((p, p) for p in real_padding), value=1)
        extra = tuple((lo - p, hi - p) for (lo, hi), p in zip(padding, real_padding))
        counts = P.unfold(ones, kernel=kernel, stride=stride, padding=extra, dilation=(1,) * nsp)
    else:
        counts = P.unfold(ones, kernel=kernel, stride=stride, padding=padding, dilation=(1,) * nsp)
    return P.div(total, P.sum(counts, dims=axes, keepdim=False))


@composite("adaptive_avg_pool", grad_name="AdaptiveAvgPool2DBackward0")
def adaptive_avg_pool(x, output_size):
    """Window i covers [floor(i*S/O), ceil((i+1)*S/O)), one spatial dim at a time."""
    nsp = len(output_size)
    for i in range(nsp):
        d = 2 + i
        s, o = _shape(x)[d], output_size[i]
        if s % o == 0:
            k = s // o
            shape = _shape(x)
            x = P.reshape(x, shape=shape[:d] + (o, k) + shape[d + 1:])
            x = P.div(P.sum(x, dims=(d + 1,), keepdim=False), k)
            continue
        pieces = []
        for j in range(o):
            a, b = (j * s) // o, -(-((j + 1) * s) // o)
            index = tuple((a, b, 1) if ax == d else (0, n, 1) for ax, n in enumerate(_shape(x)))
            pieces.append(mean(P.slice(x, index=index), (d,), keepdim=True))
        x = P.concat(*pieces, axis=d)
    return x


# ---- normalization --------------------------------------------------------------------------

def _normalize(x, dims, eps):
    m = mean(x, dims, keepdim=True)
    d = P.sub(x, m)
    v = mean(P.mul(d, d), dims, keepdim=True)
    return P.mul(d, P.rsqrt(P.add(v, eps)))


@composite("layer_norm", grad_name="NativeLayerNormBackward0", float32_inside=True, follows_input=True)
def layer_norm(x, ndims, weight, bias, eps):
    n = len(_shape(x))
    y = _normalize(x, tuple(range(n - ndims, n)), eps)
    if weight is not None:
        y = P.mul(y, weight)
    if bias is not None:
        y = P.add(y, bias)
    return y


@composite("group_norm", grad_name="NativeGroupNormBackward0", float32_inside=True, follows_input=True)
def group_norm(x, groups, weight, bias, eps):
    shape = _shape(x)
    n, c = shape[:2]
    y = _normalize(P.reshape(x, shape=(n, groups, _prod(shape[1:]) // groups)), (2,), eps)
    y = P.reshape(y, shape=shape)
    affine_shape = (c,) + (1,) * (len(shape) - 2)
    if weight is not None:
        y = P.mul(y, P.reshape(weight, shape=affine_shape))
    if bias is not None:
        y = P.add(y, P.reshape(bias, shape=affine_shape))
    return y


@composite("batch_norm", grad_name="NativeBatchNormBackward0", float32_inside=True, follows_input=True)
def batch_norm(x, mean_, var_, weight, bias, training, eps):
    """Returns (y, batch mean, unbiased batch var); the caller updates running statistics.
    In eval mode ``mean_``/``var_`` are the running statistics and the batch stats are None.
    The variance is the centered two-pass one (E[x^2] - E[x]^2 loses float32's digits when the
    mean is large). The weight multiplies the per-channel rsqrt, not the normalized input: y =
    (x - mean) * (rsqrt(var + eps) * weight) + bias is one full-size product fewer than
    ((x - mean) * rsqrt) * weight, and so is its gradient (the weight's and the rsqrt's gradients
    share one reduction, sum(g * (x - mean)))."""
    shape = _shape(x)
    dims = (0,) + tuple(range(2, len(shape)))
    stat_shape = (1, shape[1]) + (1,) * (len(shape) - 2)
    if training:
        m = mean(x, dims, keepdim=True)
        d = P.sub(x, m)
        v = mean(P.mul(d, d), dims, keepdim=True)
        rstd = P.rsqrt(P.add(v, eps))
        count = _prod(shape) // shape[1]
        unbiased = P.mul(P.reshape(v, shape=(shape[1],)), count / max(count - 1, 1))
        batch_stats = (P.reshape(m, shape=(shape[1],)), unbiased)
    else:
        d = P.sub(x, P.reshape(mean_, shape=stat_shape))
        rstd = P.rsqrt(P.add(P.reshape(var_, shape=stat_shape), eps))
        batch_stats = (None, None)
    scale = rstd if weight is None else P.mul(rstd, P.reshape(weight, shape=stat_shape))
    y = P.mul(d, scale)
    if bias is not None:
        y = P.add(y, P.reshape(bias, shape=stat_shape))
    return (y,) + batch_stats


# ---- embedding and activations -------------------------------------------------------------

@composite("embedding")
def embedding(weight, idx, padding_idx):
    rows = P.take(weight, P.index_check(idx, size=_shape(weight)[0], dim=0, mode="embedding"), axis=0)
    if padding_idx is None:
        return rows
    # the padding row reads normally but receives no gradient
    is_pad = P.reshape(P.eq(idx, padding_idx), shape=_shape(idx) + (1,))
    return P.where(is_pad, P.stop_gradient(rows), rows)


@composite("leaky_relu")
def leaky_relu(x, negative_slope):
    return P.where(P.gt(x, 0), x, P.mul(x, negative_slope))


@composite("elu")
def elu(x, alpha, scale=1.0, input_scale=1.0):
    # min(x, 0) written as a where: at x == 0 the negative branch's slope alpha * input_scale is
    # PyTorch's gradient; minimum() would split it in half at the tie
    neg = P.mul(P.expm1(P.mul(P.where(P.gt(x, 0), 0.0, x), input_scale)), alpha)
    return P.mul(P.where(P.gt(x, 0), x, neg), scale)


@composite("hardtanh")
def hardtanh(x, min_val, max_val):
    # le/ge: the gradient is 0 at the boundaries too (PyTorch's hardtanh/relu6/hardsigmoid/hardswish;
    # clamp differs and passes it)
    return P.where(P.le(x, min_val), min_val, P.where(P.ge(x, max_val), max_val, x))


@composite("hardsigmoid")
def hardsigmoid(x):
    return P.div(hardtanh(P.add(x, 3), 0.0, 6.0), 6)


@composite("hardswish")
def hardswish(x):
    return P.mul(x, hardsigmoid(x))


@composite("mish", float32_inside=True)
def mish(x):
    from .decompositions import softplus
    return P.mul(x, P.tanh(softplus(x)))


@composite("logsigmoid", float32_inside=True)
def logsigmoid(x):
    # -softplus(-x), stable for large |x|
    return P.neg(_softplus_stable(P.neg(x)))


def _softplus_stable(z):
    """log(1 + exp(z)) that cannot overflow: z + log1p(exp(-z)) for z > 0, log1p(exp(z)) else,
    with one exp and one log1p (the costly part) shared by both sides: relu(z) + log1p(exp(w)),
    w = s * z with s = -1 where z > 0, else 1. s is a constant to autodiff, so each side is
    differentiated as the smooth function it is (and relu's gradient is 0 at 0): unlike
    max(z, 0) + log1p(exp(-|z|)), the derivatives are right at z == 0, second derivatives
    included. (s is arithmetic, not a where: numpy's where is slow on masks as random as signs.)"""
    s = P.sub(1, P.mul(P.cast(P.gt(z, 0), dtype=z.dtype), 2))
    return P.add(P.relu(z), P.log1p(P.exp(P.mul(s, z))))


@composite("softsign")
def softsign(x):
    return P.div(x, P.add(P.abs(x), 1))


@composite("glu")
def glu(x, dim):
    n = _shape(x)[dim] // 2
    a = P.slice(x, index=tuple((0, n, 1) if i == dim else (0, s, 1) for i, s in enumerate(_shape(x))))
    b = P.slice(x, index=tuple((n, 2 * n, 1) if i == dim else (0, s, 1) for i, s in enumerate(_shape(x))))
    return P.mul(a, P.sigmoid(b))


@composite("prelu")
def prelu(x, weight):
    w = weight
    if len(_shape(x)) >= 2 and _shape(weight) != (1,) and len(_shape(weight)) == 1:
        w = P.reshape(weight, shape=(_shape(weight)[0],) + (1,) * (len(_shape(x)) - 2))
    return P.where(P.gt(x, 0), x, P.mul(x, w))


# ---- losses ---------------------------------------------------------------------------------

def reduce_loss(loss, reduction: str):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return P.sum(loss, dims=tuple(range(len(_shape(loss)))), keepdim=False)
    if reduction == "mean":
        return mean(loss, tuple(range(len(_shape(loss)))), keepdim=False)
    raise ValueError(f"{reduction} is not a valid value for reduction")


@composite("mse_loss", grad_name="MseLossBackward0")
def mse_loss(x, y, reduction):
    d = P.sub(x, y)
    return reduce_loss(P.mul(d, d), reduction)


@composite("l1_loss", grad_name="L1LossBackward0")
def l1_loss(x, y, reduction):
    return reduce_loss(P.abs(P.sub(x, y)), reduction)


@composite("smooth_l1_loss", grad_name="SmoothL1LossBackward0")
def smooth_l1_loss(x, y, reduction, beta):
    diff = P.sub(x, y)
    d = P.abs(diff)
    if beta == 0:
        return reduce_loss(d, reduction)
    # diff * diff, not d * d: |.|'s zero derivative at 0 would lose the second derivative there
    quad = P.div(P.mul(P.mul(diff, diff), 0.5), beta)
    return reduce_loss(P.where(P.lt(d, beta), quad, P.sub(d, 0.5 * beta)), reduction)


@composite("huber_loss", grad_name="HuberLossBackward0")
def huber_loss(x, y, reduction, delta):
    diff = P.sub(x, y)
    d = P.abs(diff)
    quad = P.mul(P.mul(diff, diff), 0.5)
    lin = P.mul(P.sub(d, 0.5 * delta), delta)
    return reduce_loss(P.where(P.le(d, delta), quad, lin), reduction)


def _class_weights(weight, target_safe):
    return P.take(weight, target_safe, axis=0)


@composite("nll_loss", grad_name="NllLossBackward0")
def nll_loss(logp, target, weight, ignore_index, reduction):
    """logp: (N, C, ...) or (C,); target: (N, ...) or () class indices."""
    unbatched = len(_shape(logp)) == 1
    if unbatched:
        logp = P.reshape(logp, shape=(1,) + _shape(logp))
        target = P.reshape(target, shape=(1,))
    valid = P.ne(target, ignore_index)
    safe = P.where(valid, target, 0)
    picked = P.gather(logp, P.reshape(safe, shape=(_shape(safe)[0], 1) + _shape(safe)[1:]), axis=1)
    picked = P.reshape(picked, shape=_shape(safe))
    w = P.cast(valid, dtype=logp.dtype)
    if weight is not None:
        w = P.mul(w, _class_weights(weight, safe))
    loss = P.neg(P.mul(picked, w))
    if reduction == "mean":
        dims = tuple(range(len(_shape(loss))))
        return P.div(P.sum(loss, dims=dims, keepdim=False), P.sum(w, dims=dims, keepdim=False))
    if unbatched and reduction == "none":
        return P.reshape(loss, shape=())
    return reduce_loss(loss, reduction)


@composite("cross_entropy", grad_name="NllLossBackward0", float32_inside=True)
def cross_entropy(x, target, weight, ignore_index, reduction, label_smoothing):
    class_dim = 0 if len(_shape(x)) == 1 else 1
    logp = log_softmax(x, class_dim)
    nclass = _shape(x)[class_dim]
    if target.dtype.is_floating_point:
        # class probabilities
        p = target
        if label_smoothing:
            p = P.add(P.mul(p, 1 - label_smoothing), label_smoothing / nclass)
        term = P.mul(logp, p)
        if weight is not None:
            term = P.mul(term, P.reshape(weight, shape=(nclass,) + (1,) * (len(_shape(x)) - 1 - class_dim)))
        loss = P.neg(P.sum(term, dims=(class_dim,), keepdim=False))
        return reduce_loss(loss, reduction)
    nll = nll_loss(logp, target, weight, ignore_index, "none" if label_smoothing else reduction)
    if not label_smoothing:
        return nll
    # smoothing term: -sum_c w_c logp_c / C for each sample, zero where the target is ignored
    terms = logp if weight is None else P.mul(
        logp, P.reshape(weight, shape=(nclass,) + (1,) * (len(_shape(x)) - 1 - class_dim)))
    smooth = P.neg(P.sum(terms, dims=(class_dim,), keepdim=False))
    valid = P.ne(target, ignore_index)
    smooth = P.where(valid, smooth, 0.0)
    loss = P.add(P.mul(nll, 1 - label_smoothing), P.mul(smooth, label_smoothing / nclass))
    if reduction == "mean":
        safe = P.where(valid, target, 0)
        w = P.cast(valid, dtype=x.dtype)
        if weight is not None:
            w = P.mul(w, _class_weights(weight, safe))
        dims = tuple(range(len(_shape(loss))))
        return P.div(P.sum(loss, dims=dims, keepdim=False), P.sum(w, dims=dims, keepdim=False))
    return reduce_loss(loss, reduction)


@composite("binary_cross_entropy", grad_name="BinaryCrossEntropyBackward0")
def binary_cross_entropy(p, y, weight, reduction):
    # PyTorch clamps each log term at -100 so that p in {0, 1} gives a finite loss
    log_p = P.maximum(P.log(p), -100.0)
    log_1p = P.maximum(P.log(P.sub(1, p)), -100.0)
    loss = P.neg(P.add(P.mul(y, log_p), P.mul(P.sub(1, y), log_1p)))
    if weight is not None:
        loss = P.mul(loss, weight)
    return reduce_loss(loss, reduction)


@composite("binary_cross_entropy_with_logits", grad_name="BinaryCrossEntropyWithLogitsBackward0")
def binary_cross_entropy_with_logits(x, y, weight, pos_weight, reduction):
    # log(1 + exp(-x)) computed stably
    softplus_neg = _softplus_stable(P.neg(x))
    if pos_weight is not None:
        coef = P.add(P.mul(P.sub(pos_weight, 1), y), 1)
        loss = P.add(P.mul(P.sub(1, y), x), P.mul(coef, softplus_neg))
    else:
        loss = P.add(P.mul(P.sub(1, y), x), softplus_neg)
    if weight is not None:
        loss = P.mul(loss, weight)
    return reduce_loss(loss, reduction)


@composite("kl_div", grad_name="KlDivBackward0")
def kl_div(logq, target, reduction, log_target):
    if log_target:
        loss = P.mul(P.exp(target), P.sub(target, logq))
    else:
        # target * (log target - logq), defined as 0 where target == 0
        safe = P.where(P.gt(target, 0), target, 1.0)
        loss = P.where(P.gt(target, 0), P.mul(target, P.sub(P.log(safe), logq)), 0.0)
    if reduction == "batchmean":
        total = P.sum(loss, dims=tuple(range(len(_shape(loss)))), keepdim=False)
        return P.div(total, _shape(loss)[0]) if _shape(loss) else total
    return reduce_loss(loss, reduction)


@composite("scaled_dot_product_attention", grad_name="ScaledDotProductAttentionBackward0", float32_inside=True)
def scaled_dot_product_attention(q, k, v, mask, scale):
    """softmax(q k^T * scale + mask) v. ``mask`` is an additive float mask or None."""
    nd = len(_shape(k))
    kt = P.permute(k, dims=tuple(range(nd - 2)) + (nd - 1, nd - 2))
    scores = P.mul(P.matmul(q, kt), scale)
    last = len(_shape(scores)) - 1
    if mask is None:
        return P.matmul(softmax(scores, last), v)
    scores = P.add(scores, mask)
    # PyTorch's safe softmax: a query whose every key is masked out attends to nothing (zeros, not NaN)
    dead = P.eq(P.amax(scores, dims=(last,), keepdim=True), -math.inf)
    weights = P.where(dead, 0.0, softmax(P.where(dead, 0.0, scores), last))
    return P.matmul(weights, v)

