"""The primitives of complex numbers and of the discrete Fourier transform, declared once.

``real``/``imag`` read a complex tensor's parts (numpy's views, so eager results share memory as
PyTorch's do), ``make_complex`` joins two, ``conj`` conjugates; ``view_as_real`` and
``view_as_complex`` reinterpret a complex tensor as trailing (real, imag) pairs and back, sharing
memory too. The transforms follow PyTorch's internal ones (``_fft_c2c``, ``_fft_r2c``,
``_fft_c2r``): normalized attributes only (sorted transform ``dims``, a ``norm`` *mode* 0: no
scaling, 1: 1/sqrt(n), 2: 1/n, whichever direction), computed by numpy's pocketfft (or the device
library's ``xp.fft``) and cast back to the operand's precision (numpy answers complex128 always).
Frontend argument handling (``n``/``s`` by slicing and zero padding, the norm names) is in
``graphc/fft.py``.
"""
from __future__ import annotations

import numpy as np

from . import dtypes as dt
from .array_module import array_module
from .primitive import Primitive, TensorType, register
from .shapes import broadcast_shapes


def _shape(x) -> tuple[int, ...]:
    return tuple(x.shape)


def _complex_only(name: str, x) -> None:
    if not x.dtype.is_complex:
        raise RuntimeError(f"{name} is not implemented for tensors with non-complex dtypes.")


def _part_infer(name: str):
    def infer(x):
        _complex_only(name, x)
        return TensorType(_shape(x), x.dtype.to_real())
    return infer


# numpy's .real/.imag of a complex array are views of it: eager results share the operand's memory
real = register(Primitive("real", _part_infer("real"), np.real, view=True, kind="elementwise",
                          complex_operands=True, complex_only=True))
imag = register(Primitive("imag", _part_infer("imag"), np.imag, view=True, kind="elementwise",
                          complex_operands=True, complex_only=True))


def _conj_infer(x):
    _complex_only("conj", x)
    return TensorType(_shape(x), x.dtype)


conj = register(Primitive("conj", _conj_infer, np.conjugate, kind="elementwise", complex_operands=True,
                          complex_only=True))


def _make_complex_infer(re, im):
    if re.dtype not in (dt.float32, dt.float64) or im.dtype not in (dt.float32, dt.float64):
        raise RuntimeError("Expected both inputs to be Half, Float or Double tensors but got "
                           f"{re.dtype.scalar_name} and {im.dtype.scalar_name}")
    if re.dtype is not im.dtype:
        raise RuntimeError(f"Expected object of scalar type {re.dtype.scalar_name} but got scalar type "
                           f"{im.dtype.scalar_name} for second argument")
    return TensorType(broadcast_shapes(_shape(re), _shape(im)), re.dtype.to_complex())


def _make_complex(re, im):
    xp = array_module(re, im)
    out = xp.empty(np.broadcast_shapes(re.shape, im.shape), dtype=np.result_type(re.dtype, np.complex64))
    out.real, out.imag = re, im  # not re + 1j * im, which makes inf * 1j a nan real part
    return out


make_complex = register(Primitive("make_complex", _make_complex_infer, _make_complex, kind="elementwise",
                                  complex_only=True))


def _view_as_real_infer(x):
    if not x.dtype.is_complex:
        raise RuntimeError("view_as_real is only supported for complex tensors")
    return TensorType(_shape(x) + (2,), x.dtype.to_real())


def _view_as_real(x):
    # a size-1 last axis is contiguous whatever the strides, so this is always a view
    return x[..., None].view(x.real.dtype)


def _view_as_complex_infer(x):
    if x.dtype not in (dt.float32, dt.float64):
        raise RuntimeError(f"view_as_complex is only supported for float and double tensors, but got a "
                           f"tensor of scalar type: {x.dtype.scalar_name}")
    if not _shape(x) or _shape(x)[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    return TensorType(_shape(x)[:-1], x.dtype.to_complex())


def _view_as_complex(x):
    if x.strides[-1] != x.itemsize:  # eager mode refuses this (see graphc/complex_ops.py); a copy here
        x = array_module(x).ascontiguousarray(x)
    return x.view(np.result_type(x.dtype, np.complex64))[..., 0]


view_as_real = register(Primitive("view_as_real", _view_as_real_infer, _view_as_real, view=True,
                                  complex_operands=True, complex_only=True))
view_as_complex = register(Primitive("view_as_complex", _view_as_complex_infer, _view_as_complex, view=True,
                                     complex_only=True))


# ---- the discrete Fourier transform -----------------------------------------------------------

# numpy's norm= names the direction that is scaled; a mode scales the transform it is given to
_FORWARD_NORM = {0: "backward", 1: "ortho", 2: "forward"}
_INVERSE_NORM = {0: "forward", 1: "ortho", 2: "backward"}


def _check_dims(name: str, x, dims) -> None:
    if not dims or list(dims) != sorted(set(dims)) or dims[-1] >= len(_shape(x)):
        raise ValueError(f"{name}: dims must be sorted, distinct dimensions of the operand, got {dims}")


def _c2c_infer(x, *, dims: tuple[int, ...], norm: int, forward: bool):
    _check_dims("fft_c2c", x, dims)
    if not x.dtype.is_complex:
        raise RuntimeError(f"fft_c2c expects a complex operand, got {x.dtype.name}")
    return TensorType(_shape(x), x.dtype)


def _c2c(x, *, dims, norm, forward):
    fft = array_module(x).fft
    fn = fft.fftn if forward else fft.ifftn
    return fn(x, axes=dims, norm=(_FORWARD_NORM if forward else _INVERSE_NORM)[norm]).astype(x.dtype, copy=False)


def _r2c_infer(x, *, dims: tuple[int, ...], norm: int, onesided: bool):
    _check_dims("fft_r2c", x, dims)
    if x.dtype not in (dt.float32, dt.float64):
        raise RuntimeError(f"fft_r2c expects a float or double operand, got {x.dtype.name}")
    shape = list(_shape(x))
    if onesided:
        shape[dims[-1]] = shape[dims[-1]] // 2 + 1
    return TensorType(tuple(shape), x.dtype.to_complex())


def _r2c(x, *, dims, norm, onesided):
    fft = array_module(x).fft
    out = (fft.rfftn if onesided else fft.fftn)(x, axes=dims, norm=_FORWARD_NORM[norm])
    return out.astype(np.result_type(x.dtype, np.complex64), copy=False)


def _c2r_infer(x, *, dims: tuple[int, ...], norm: int, last_dim_size: int):
    _check_dims("fft_c2r", x, dims)
    if not x.dtype.is_complex:
        raise RuntimeError(f"fft_c2r expects a complex operand, got {x.dtype.name}")
    if last_dim_size < 1:
        raise RuntimeError(f"Invalid number of data points ({last_dim_size}) specified")
    shape = list(_shape(x))
    if shape[dims[-1]] != last_dim_size // 2 + 1:
        raise ValueError(f"fft_c2r: the last transformed dimension must have {last_dim_size // 2 + 1} "
                         f"elements for {last_dim_size} outputs, got {shape[dims[-1]]}")
    shape[dims[-1]] = last_dim_size
    return TensorType(tuple(shape), x.dtype.to_real())


def _c2r(x, *, dims, norm, last_dim_size):
    s = [x.shape[d] for d in dims[:-1]] + [last_dim_size]
    out = array_module(x).fft.irfftn(x, s=s, axes=dims, norm=_INVERSE_NORM[norm])
    return out.astype(x.real.dtype, copy=False)


# complex <-> complex (forward: exp(-2 pi i jk/n), else the inverse's exp(+2 pi i jk/n))
fft_c2c = register(Primitive("fft_c2c", _c2c_infer, _c2c, kind="fft", complex_operands=True, complex_only=True))
# real -> complex, forward; onesided keeps the n // 2 + 1 non-redundant outputs of the last dim
fft_r2c = register(Primitive("fft_r2c", _r2c_infer, _r2c, kind="fft", complex_only=True))
# the Hermitian half of a complex signal -> real, inverse direction (numpy's irfftn: the imaginary
# parts that Hermitian symmetry forces to zero are ignored)
fft_c2r = register(Primitive("fft_c2r", _c2r_infer, _c2r, kind="fft", complex_operands=True, complex_only=True))
