"""Facts about dtypes that several rooms need: which ones torch draws and computes in, and the
names torch's messages give them. Written once here; nothing here checks or draws."""

import mlx.core as mx

# The floating dtypes: drawn and scaled (every other dtype fails one of torch's checks).
FLOATING = frozenset((mx.float16, mx.bfloat16, mx.float32, mx.float64))
# The integer and bool dtypes torch's random kernels fill.
INTS = (mx.bool_, mx.uint8, mx.int8, mx.int16, mx.int32, mx.int64)
# The significand's bits of each floating dtype: the integers it holds exactly are |n| <= 2**d.
DIGITS = {mx.float16: 11, mx.bfloat16: 8, mx.float32: 24, mx.float64: 53}
DEFAULT_FLOAT = mx.float32  # torch.get_default_dtype()

# Dtypes torch's CPU bernoulli_ has no kernel for: the draw fails before any number is drawn.
NO_BERNOULLI_KERNEL = (mx.uint16, mx.uint32, mx.uint64, mx.complex64)

# torch's names for the dtypes that torch and MLX share (c10::ScalarType's names).
TORCH_NAMES = {
    mx.bool_: "Bool",
    mx.uint8: "Byte",
    mx.int8: "Char",
    mx.int16: "Short",
    mx.int32: "Int",
    mx.int64: "Long",
    mx.uint16: "UInt16",
    mx.uint32: "UInt32",
    mx.uint64: "UInt64",
    mx.complex64: "ComplexFloat",
    mx.float32: "Float",
    mx.float64: "Double",
    mx.float16: "Half",
    mx.bfloat16: "BFloat16",
}

# The C++ type names torch's attention and randint checks print for a dtype (caffe2's TypeMeta
# names).
TORCH_CPP_NAMES = {
    mx.float32: "float",
    mx.float64: "double",
    mx.float16: "c10::Half",
    mx.bfloat16: "c10::BFloat16",
    mx.int64: "long int",
    mx.int32: "int",
    mx.int16: "short int",
    mx.int8: "signed char",
    mx.uint8: "unsigned char",
    mx.bool_: "bool",
    mx.complex64: "c10::complex<float>",
    mx.uint16: "short unsigned int",
    mx.uint32: "unsigned int",
    mx.uint64: "long unsigned int",
}


def compute_dtype(dtype: mx.Dtype) -> mx.Dtype:
    """The dtype torch computes a ``dtype`` op in: float64 for float64, else float32."""
    return mx.float64 if dtype == mx.float64 else mx.float32
