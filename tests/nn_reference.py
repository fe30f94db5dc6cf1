"""Independent numpy implementations of what torch.nn documents, used as expected values by the
nn tests: direct-loop convolutions and pooling, the RNN/LSTM/GRU equations, multi-head attention,
the Transformer layers and the losses. Nothing here calls graphc."""
from __future__ import annotations

import itertools
import math

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---- convolution --------------------------------------------------------------------------------

def conv2d(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Direct loop over output positions; ``padding`` is ((top, bottom), (left, right))."""
    n_, c, _, _ = x.shape
    o_, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), tuple(padding[0]), tuple(padding[1])))
    hp, wp = xp.shape[2:]
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n_, o_, ho, wo))
    og = o_ // groups
    for n in range(n_):
        for o in range(o_):
            g = o // og
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0
                    for ci in range(cg):
                        for a in range(kh):
                            for bb in range(kw):
                                acc += (xp[n, g * cg + ci, i * stride[0] + a * dilation[0],
                                           j * stride[1] + bb * dilation[1]] * w[o, ci, a, bb])
                    out[n, o, i, j] = acc + (0.0 if b is None else b[o])
    return out


def conv1d(x, w, b=None, stride=1, padding=(0, 0), dilation=1, groups=1):
    y = conv2d(x[:, :, None, :], w[:, :, None, :], b, (1, stride), ((0, 0), tuple(padding)), (1, dilation), groups)
    return y[:, :, 0, :]


def conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1,
                     dilation=(1, 1)):
    """Scatter every input pixel times the kernel into a full canvas, then crop the padding."""
    n_, cin, h, wd = x.shape
    _, ocg, kh, kw = w.shape
    cig = cin // groups
    full_h = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (wd - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    canvas = np.zeros((n_, ocg * groups, full_h, full_w))
    for n in range(n_):
        for ci in range(cin):
            g = ci // cig
            for i in range(h):
                for j in range(wd):
                    for oc in range(ocg):
                        for a in range(kh):
                            for bb in range(kw):
                                canvas[n, g * ocg + oc, i * stride[0] + a * dilation[0],
                                       j * stride[1] + bb * dilation[1]] += x[n, ci, i, j] * w[ci, oc, a, bb]
    out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    out = canvas[:, :, padding[0]:padding[0] + out_h, padding[1]:padding[1] + out_w]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


# ---- pooling ------------------------------------------------------------------------------------

def pool_out_size(size, k, s, p, d, ceil_mode):
    """torch.nn.MaxPool2d's documented output size, with the rule that the last window must start
    inside the input or the left padding."""
    num = size + 2 * p - d * (k - 1) - 1
    out = (math.ceil(num / s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, k, s, p, d=(1, 1), ceil_mode=False):
    """Returns (values, flat indices into H*W) of each window's first maximum."""
    n_, c, h, w = x.shape
    ho = pool_out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    wo = pool_out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    vals = np.zeros((n_, c, ho, wo))
    idx = np.zeros((n_, c, ho, wo), dtype=np.int64)
    for n, ch, i, j in itertools.product(range(n_), range(c), range(ho), range(wo)):
        best, arg = -np.inf, -1
        for a in range(k[0]):
            for bb in range(k[1]):
                r = i * s[0] - p[0] + a * d[0]
                q = j * s[1] - p[1] + bb * d[1]
                if 0 <= r < h and 0 <= q < w and (x[n, ch, r, q] > best or arg < 0):
                    best, arg = x[n, ch, r, q], r * w + q
        vals[n, ch, i, j], idx[n, ch, i, j] = best, arg
    return vals, idx


def avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    n_, c, h, w = x.shape
    ho = pool_out_size(h, k[0], s[0], p[0], 1, ceil_mode)
    wo = pool_out_size(w, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((n_, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])   # window clipped to padded input
            padded_count = (h1 - h0) * (w1 - w0)
            rh0, rw0, rh1, rw1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            total = x[:, :, rh0:rh1, rw0:rw1].sum(axis=(2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = padded_count
            else:
                div = (rh1 - rh0) * (rw1 - rw0)
            out[:, :, i, j] = total / div
    return out


def _adaptive_pool2d(x, out_hw, reduce):
    """Window i covers [floor(i*H/OH), ceil((i+1)*H/OH)), as PyTorch's adaptive pooling docs say."""
    n_, c, h, w = x.shape
    oh, ow = out_hw
    out = np.zeros((n_, c, oh, ow))
    for i in range(oh):
        a, b = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            cc, e = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[:, :, i, j] = reduce(x[:, :, a:b, cc:e], axis=(2, 3))
    return out


def adaptive_avg_pool2d(x, out_hw):
    return _adaptive_pool2d(x, out_hw, np.mean)


def adaptive_max_pool2d(x, out_hw):
    return _adaptive_pool2d(x, out_hw, np.max)


# ---- recurrent networks -------------------------------------------------------------------------

def rnn(mode, x, params, hidden_size, num_layers=1, bidirectional=False, h0=None, c0=None,
        nonlinearity="tanh"):
    """The equations of torch.nn.RNN/LSTM/GRU's docs, sequence-first. ``params`` maps PyTorch's
    parameter names (weight_ih_l0, ..._reverse) to arrays. Returns (output, h_n, c_n)."""
    t_, n_, _ = x.shape
    dirs = 2 if bidirectional else 1
    layer_in = x
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b_ih = params.get("bias_ih" + sfx, 0.0)
            b_hh = params.get("bias_hh" + sfx, 0.0)
            k = layer * dirs + d
            h = np.zeros((n_, w_hh.shape[1])) if h0 is None else h0[k]   # proj_size wide with projections
            c = np.zeros((n_, hidden_size)) if c0 is None else c0[k]
            ys = [None] * t_
            for t in (reversed(range(t_)) if d else range(t_)):
                xt = layer_in[t]
                if mode == "LSTM":
                    gates = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
                    i, f, g, o = np.split(gates, 4, axis=1)
                    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
                    c = f * c + i * g
                    h = o * np.tanh(c)
                    if "weight_hr" + sfx in params:     # LSTM with proj_size: h_t = W_hr (o * tanh(c_t))
                        h = h @ params["weight_hr" + sfx].T
                elif mode == "GRU":
                    r_i, z_i, n_i = np.split(xt @ w_ih.T + b_ih, 3, axis=1)
                    r_h, z_h, n_h = np.split(h @ w_hh.T + b_hh, 3, axis=1)
                    r = sigmoid(r_i + r_h)
                    z = sigmoid(z_i + z_h)
                    nn_ = np.tanh(n_i + r * n_h)
                    h = (1 - z) * nn_ + z * h
                else:
                    pre = xt @ w_ih.T + b_ih + h @ w_hh.T + b_hh
                    h = np.tanh(pre) if nonlinearity == "tanh" else np.maximum(pre, 0)
                ys[t] = h
            outs.append(np.stack(ys))
            h_n.append(h)
            c_n.append(c)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, np.stack(h_n), np.stack(c_n)


# ---- attention ----------------------------------------------------------------------------------

def mha(q, k, v, num_heads, w_q, w_k, w_v, b_q, b_k, b_v, w_o, b_o, attn_mask=None,
        key_padding_mask=None, average=True, bias_k=None, bias_v=None, zero_attn=False):
    """torch.nn.MultiheadAttention, sequence-first (L, N, E). Boolean masks: True = not allowed.
    ``bias_k``/``bias_v`` (E,) add one learned key/value; ``zero_attn`` one all-zero key/value."""
    L, N, E = q.shape
    hd = E // num_heads
    Kp, Vp = k @ w_k.T + b_k, v @ w_v.T + b_v
    extra = 0
    if bias_k is not None:
        Kp = np.concatenate([Kp, np.broadcast_to(bias_k, (1, N, E))])
        Vp = np.concatenate([Vp, np.broadcast_to(bias_v, (1, N, E))])
        extra += 1
    if zero_attn:
        Kp = np.concatenate([Kp, np.zeros((1, N, E))])
        Vp = np.concatenate([Vp, np.zeros((1, N, E))])
        extra += 1
    S = Kp.shape[0]
    Q = (q @ w_q.T + b_q).reshape(L, N, num_heads, hd).transpose(1, 2, 0, 3)
    K = Kp.reshape(S, N, num_heads, hd).transpose(1, 2, 0, 3)
    V = Vp.reshape(S, N, num_heads, hd).transpose(1, 2, 0, 3)
    scores = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(hd)          # (N, h, L, S)

    def additive(mask):  # the extra keys are never masked
        m = np.where(mask, -np.inf, 0.0) if mask.dtype == bool else mask
        return np.concatenate([m, np.zeros(m.shape[:-1] + (extra,))], -1) if extra else m

    if attn_mask is not None:
        m = additive(attn_mask)
        scores = scores + (m.reshape(N, num_heads, L, S) if m.ndim == 3 else m)
    if key_padding_mask is not None:
        scores = scores + additive(key_padding_mask)[:, None, None, :]
    weights = softmax(scores, -1)
    out = (weights @ V).transpose(2, 0, 1, 3).reshape(L, N, E) @ w_o.T + b_o
    return out, (weights.mean(1) if average else weights)


def mha_from_state(p, prefix, q, k, v, num_heads, **kw):
    E = q.shape[-1]
    w, b = p[prefix + "in_proj_weight"], p[prefix + "in_proj_bias"]
    return mha(q, k, v, num_heads, w[:E], w[E:2 * E], w[2 * E:], b[:E], b[E:2 * E], b[2 * E:],
               p[prefix + "out_proj.weight"], p[prefix + "out_proj.bias"], **kw)


def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def encoder_layer(x, p, nhead, norm_first=False, mask=None, kpm=None, prefix=""):
    """nn.TransformerEncoderLayer in eval mode with ReLU, sequence-first."""
    def sa(y):
        return mha_from_state(p, prefix + "self_attn.", y, y, y, nhead, attn_mask=mask, key_padding_mask=kpm)[0]

    def ff(y):
        return np.maximum(y @ p[prefix + "linear1.weight"].T + p[prefix + "linear1.bias"], 0) \
            @ p[prefix + "linear2.weight"].T + p[prefix + "linear2.bias"]

    def ln(i, y):
        return layer_norm(y, p[f"{prefix}norm{i}.weight"], p[f"{prefix}norm{i}.bias"])

    if norm_first:
        x = x + sa(ln(1, x))
        return x + ff(ln(2, x))
    x = ln(1, x + sa(x))
    return ln(2, x + ff(x))


def decoder_layer(x, mem, p, nhead, norm_first=False, tgt_mask=None, memory_mask=None, prefix=""):
    def sa(y):
        return mha_from_state(p, prefix + "self_attn.", y, y, y, nhead, attn_mask=tgt_mask)[0]

    def ca(y):
        return mha_from_state(p, prefix + "multihead_attn.", y, mem, mem, nhead, attn_mask=memory_mask)[0]

    def ff(y):
        return np.maximum(y @ p[prefix + "linear1.weight"].T + p[prefix + "linear1.bias"], 0) \
            @ p[prefix + "linear2.weight"].T + p[prefix + "linear2.bias"]

    def ln(i, y):
        return layer_norm(y, p[f"{prefix}norm{i}.weight"], p[f"{prefix}norm{i}.bias"])

    if norm_first:
        x = x + sa(ln(1, x))
        x = x + ca(ln(2, x))
        return x + ff(ln(3, x))
    x = ln(1, x + sa(x))
    x = ln(2, x + ca(x))
    return ln(3, x + ff(x))


# ---- CTC ----------------------------------------------------------------------------------------

def ctc_brute_force(log_probs, target, blank=0):
    """-log of the summed probability of every length-T path that collapses to ``target``
    (merge repeats, then drop blanks). log_probs: (T, C)."""
    t_, c = log_probs.shape
    target = list(target)
    total = 0.0
    for path in itertools.product(range(c), repeat=t_):
        collapsed = []
        prev = None
        for s in path:
            if s != prev and s != blank:
                collapsed.append(s)
            prev = s
        if collapsed == target:
            total += math.exp(sum(log_probs[t, s] for t, s in enumerate(path)))
    return -math.log(total) if total > 0 else math.inf
