"""Element types and PyTorch's type-promotion rules.

The DType objects here are the ones users see as ``graphc.float32`` etc.; they live in
``ir`` because type inference of every primitive needs them.
"""
from __future__ import annotations

import numpy as np

BOOL, INT, FLOAT, COMPLEX = 0, 1, 2, 3  # promotion categories, ordered


class DType:
    __slots__ = ("name", "np", "category", "itemsize", "torch_names", "short", "scalar_name", "c_name")

    def __init__(self, name: str, np_dtype, category: int, short: str, torch_names: tuple[str, ...],
                 scalar_name: str, c_name: str, itemsize: int | None = None):
        self.name = name
        # PyTorch's names in its error messages: the ScalarType ("Float", "Long") and the C++
        # type ("float", "long int")
        self.scalar_name = scalar_name
        self.c_name = c_name
        if np_dtype is not None:
            self.np = np.dtype(np_dtype)
        self.category = category
        self.itemsize = self.np.itemsize if itemsize is None else itemsize
        self.short = short  # the IR text form: f32, i64, b8 ...
        self.torch_names = torch_names

    @property
    def is_floating_point(self) -> bool:
        return self.category == FLOAT

    @property
    def is_signed(self) -> bool:
        return self.name not in ("uint8", "bool")

    @property
    def is_complex(self) -> bool:
        return self.category == COMPLEX

    @property
    def is_inexact(self) -> bool:
        """Floating point or complex: the dtypes that can require gradients (PyTorch's rule)."""
        return self.category >= FLOAT

    def to_real(self) -> "DType":
        """The real dtype of a complex one's parts (complex64: float32); other dtypes themselves."""
        return _REAL_OF.get(self, self)

    def to_complex(self) -> "DType":
        """The complex dtype whose parts are this floating dtype (float64: complex128; float16 and
        bfloat16: complex64, as graphc has no complex32); complex dtypes themselves."""
        return self if self.category == COMPLEX else _COMPLEX_OF.get(self, complex64)

    @property
    def is_low_precision(self) -> bool:
        """float16 or bfloat16: reductions, matmuls and scans accumulate in float32 and round the
        result once, as PyTorch's CPU kernels do (numpy would accumulate in the format itself)."""
        return self.category == FLOAT and self.itemsize == 2

    def __repr__(self) -> str:
        return f"graphc.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


class _MLDtypesDType(DType):
    """A dtype whose numpy type comes from the ``ml_dtypes`` package (JAX's): imported when the
    numpy type is first needed, so that graphc imports and runs without the package until such a
    tensor is made."""

    __slots__ = ()

    @property
    def np(self) -> np.dtype:
        try:
            return DType.np.__get__(self)
        except AttributeError:
            pass
        try:
            import ml_dtypes
        except ImportError:
            raise RuntimeError(
                f"graphc.{self.name} tensors need the ml_dtypes package: pip install ml_dtypes "
                "(or pip install graphc[bf16])") from None
        npd = np.dtype(getattr(ml_dtypes, self.name))
        DType.np.__set__(self, npd)
        _BY_NP[npd] = self
        return npd


float16 = DType("float16", np.float16, FLOAT, "f16", ("float16", "half"), "Half", "c10::Half")
float32 = DType("float32", np.float32, FLOAT, "f32", ("float32", "float"), "Float", "float")
float64 = DType("float64", np.float64, FLOAT, "f64", ("float64", "double"), "Double", "double")
int8 = DType("int8", np.int8, INT, "i8", ("int8",), "Char", "signed char")
int16 = DType("int16", np.int16, INT, "i16", ("int16", "short"), "Short", "short int")
int32 = DType("int32", np.int32, INT, "i32", ("int32", "int"), "Int", "int")
int64 = DType("int64", np.int64, INT, "i64", ("int64", "long"), "Long", "long int")
uint8 = DType("uint8", np.uint8, INT, "u8", ("uint8",), "Byte", "unsigned char")
bool_ = DType("bool", np.bool_, BOOL, "b8", ("bool",), "Bool", "bool")
complex64 = DType("complex64", np.complex64, COMPLEX, "c64", ("complex64", "cfloat"), "ComplexFloat",
                  "c10::complex<float>")
complex128 = DType("complex128", np.complex128, COMPLEX, "c128", ("complex128", "cdouble"), "ComplexDouble",
                   "c10::complex<double>")
_REAL_OF = {complex64: float32, complex128: float64}
_COMPLEX_OF = {float32: complex64, float64: complex128}
bfloat16 = _MLDtypesDType("bfloat16", None, FLOAT, "bf16", ("bfloat16",), "BFloat16", "c10::BFloat16",
                          itemsize=2)

ALL_DTYPES = (float16, bfloat16, float32, float64, complex64, complex128, int8, int16, int32, int64, uint8, bool_)
# numpy dtype -> DType; bfloat16 joins when its numpy type is first made (``_MLDtypesDType.np``)
_BY_NP = {d.np: d for d in ALL_DTYPES if d is not bfloat16}
BY_NUMPY = _BY_NP  # numpy dtype -> DType, for hot paths that already hold an np.dtype
_BY_NAME = {n: d for d in ALL_DTYPES for n in (d.name, *d.torch_names)}
_BY_SHORT = {d.short: d for d in ALL_DTYPES}

_default_float = float32


def get_default_dtype() -> DType:
    return _default_float


def set_default_dtype(d: DType) -> None:
    global _default_float
    if not isinstance(d, DType) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def from_numpy_dtype(npd) -> DType:
    try:
        return _BY_NP[np.dtype(npd)]
    except (KeyError, TypeError):
        # an ml_dtypes array seen before graphc made any bfloat16 tensor: ml_dtypes is loaded
        if getattr(npd, "name", None) == "bfloat16" and bfloat16.np == npd:
            return bfloat16
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(npd)}. The only supported types are: "
            "float64, float32, float16, bfloat16, complex64, complex128, int64, int32, int16, int8, uint8, and bool."
        ) from None


def is_floating_array_dtype(npd: np.dtype) -> bool:
    """Whether a numpy dtype is a floating-point one, ml_dtypes' bfloat16 included (its numpy
    kind is "V", not "f"), without importing ml_dtypes."""
    return npd.kind == "f" or npd.name == "bfloat16"


def float_info(d: DType):
    """numpy's finfo for a floating-point DType (ml_dtypes' own for bfloat16, which numpy's
    finfo does not know)."""
    if isinstance(d, _MLDtypesDType):
        import ml_dtypes
        return ml_dtypes.finfo(d.np)
    return np.finfo(d.np)


def fill_value(value, d: DType):
    """A Python number as PyTorch stores it in a tensor of ``d``: for float16 and bfloat16 through
    float32 (c10's Half and BFloat16 are made from a float), so that a double just beside a tie of
    the format rounds as in PyTorch, not directly."""
    if d.is_low_precision and isinstance(value, float):
        return float(np.float32(value))
    return value


def host_array(data, d: DType) -> np.ndarray:
    """``np.array(data, d.np)``, with float16/bfloat16 made from float32 values as ``fill_value``
    says (Python floats are doubles)."""
    if d.is_low_precision:
        with np.errstate(over="ignore"):  # beyond the format's range: inf, silently (PyTorch)
            return np.array(data, dtype=np.float32).astype(d.np)
    return np.array(data, dtype=d.np)


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def from_short(short: str) -> DType:
    return _BY_SHORT[short]


def promote_types(a: DType, b: DType) -> DType:
    """torch.promote_types: the smallest type both convert to without leaving their category
    (float16 with bfloat16: float32, which holds both)."""
    if a is b:
        return a
    if a.category == COMPLEX or b.category == COMPLEX:
        # complex with anything: complex parts as wide as the widest floating operand's
        parts = promote_types(a.to_real(), b.to_real()) if a.category >= FLOAT and b.category >= FLOAT else (
            a if a.category == COMPLEX else b).to_real()
        return parts.to_complex()
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == FLOAT:
        if a.itemsize != b.itemsize:
            return a if a.itemsize > b.itemsize else b
        return float32  # float16 and bfloat16: neither holds the other
    return _BY_NP[np.promote_types(a.np, b.np)]


def scalar_dtype(x) -> DType:
    """The dtype a Python number takes when it stands alone (torch's wrapped-number type)."""
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, (int, np.integer)):
        return int64
    if isinstance(x, (float, np.floating)):
        return _default_float
    if isinstance(x, (complex, np.complexfloating)):
        return _default_float.to_complex()
    raise TypeError(f"expected a tensor or a Python number, got {type(x).__name__}")


# Types whose instances were found to have ``dtype`` and ``ndim`` (IR Values, tensors, arrays):
# every traced op infers its result type from its operands, and a hit here skips two ``hasattr``
# probes (property calls) per operand. Only classes that declare both attributes themselves are
# remembered, so an instance that happens to carry them is still probed one by one. (The set
# only grows, by single adds: safe under threads.)
TENSOR_TYPES: set[type] = set()


def is_tensor_like(x) -> bool:
    """Whether ``x`` has a dtype and dimensions (a tensor, array or IR value; not a numpy scalar)."""
    t = type(x)
    if t in TENSOR_TYPES:
        return True
    if hasattr(x, "dtype") and hasattr(x, "ndim") and not isinstance(x, np.generic):
        if hasattr(t, "dtype") and hasattr(t, "ndim"):
            TENSOR_TYPES.add(t)
        return True
    return False


def result_type(*operands) -> DType:
    """torch.result_type over tensors (anything with .dtype and .ndim) and Python numbers.

    Tensors with dimensions outrank zero-dim tensors, which outrank Python numbers; a lower tier
    only matters when its category (bool < int < float) is higher than everything above it.
    """
    tiers: list[DType | None] = [None, None, None]
    for x in operands:
        if is_tensor_like(x):
            tier, d = (0 if x.ndim > 0 else 1), x.dtype
        else:
            tier, d = 2, scalar_dtype(x)
        tiers[tier] = d if tiers[tier] is None else promote_types(tiers[tier], d)
    out = None
    for d in tiers:
        if d is None:
            continue
        if out is None:
            out = d
        elif d.category > out.category:
            if d.category == COMPLEX and out.category == FLOAT:
                # a complex number of a lower tier keeps the floating tensors' precision
                # (float64 tensor + 1j: complex128; float32 tensor + complex128 0-dim: complex64)
                out = out.to_complex()
            else:
                out = promote_types(out, d) if out.category == BOOL or d.category >= FLOAT else d
    if out is None:
        raise TypeError("result_type needs at least one operand")
    return out


def is_python_scalar(x) -> bool:
    return isinstance(x, (bool, int, float, complex, np.bool_, np.integer, np.inexact)) and not hasattr(x, "ndim")
