"""The operators a compiled model file may run: an allowlist, not a denylist.

A compiled source or exported model only has to turn a batch of images into logits. Every
node of its program (TorchScript: ``node.kind()``, e.g. ``aten::conv2d``; ``torch.export``:
the operator overload's schema name) must name an operator listed here; anything else is
refused with the operator's name before the program runs on any input.

What is listed: tensor arithmetic, the layers of vision networks (convolution, normalisation,
activation, pooling, attention, resizing), shape and indexing operations, reductions, tensor
creation from sizes, and TorchScript's control flow and list/tuple/dict handling. None of
them touches a file, the network, a process or memory outside the tensors the program holds.
What is not: everything else, e.g. ``aten::save`` and ``aten::from_file`` (files),
``aten::set_`` and ``aten::as_strided`` (storage tricks), ``prim::PythonOp``, custom
namespaces and TorchBind classes. A genuine network using an operator missing here is
refused with that operator's name; adding it is a one-line change, after checking that it
computes on tensors only.
"""

from __future__ import annotations

import math
import operator
from typing import Any

# aten:: operators (names without overload: aten::add covers add.Tensor, add.Scalar, add.int, ...).
_ATEN = frozenset("""
    conv1d conv2d conv3d _convolution convolution _convolution_mode conv_transpose1d conv_transpose2d
    conv_transpose3d linear addmm mm bmm matmul baddbmm addbmm einsum t _addmm_activation
    batch_norm _batch_norm_impl_index native_batch_norm _native_batch_norm_legit
    _native_batch_norm_legit_no_training _native_batch_norm_legit_functional layer_norm native_layer_norm
    group_norm native_group_norm instance_norm rms_norm _fused_rms_norm
    relu relu_ relu6 hardtanh hardtanh_ leaky_relu leaky_relu_ elu elu_ selu selu_ celu celu_ gelu gelu_ silu
    silu_ mish mish_ hardswish hardswish_ hardsigmoid hardsigmoid_ sigmoid sigmoid_ tanh tanh_ softplus prelu
    _prelu_kernel glu log_sigmoid threshold threshold_
    softmax _softmax log_softmax _log_softmax _safe_softmax
    max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices avg_pool1d avg_pool2d
    avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool2d
    _adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d adaptive_max_pool3d
    dropout dropout_ feature_dropout feature_dropout_ alpha_dropout alpha_dropout_ feature_alpha_dropout
    feature_alpha_dropout_ native_dropout
    scaled_dot_product_attention _scaled_dot_product_attention_math _scaled_dot_product_flash_attention_for_cpu
    _scaled_dot_product_efficient_attention _scaled_dot_product_flash_attention _native_multi_head_attention
    _transform_bias_rescale_qkv
    upsample_nearest1d upsample_nearest2d upsample_nearest3d _upsample_nearest_exact1d _upsample_nearest_exact2d
    upsample_linear1d upsample_bilinear2d upsample_bicubic2d upsample_trilinear3d _upsample_bilinear2d_aa
    _upsample_bicubic2d_aa __interpolate __upsample __upsample_bilinear grid_sampler grid_sampler_2d
    affine_grid_generator pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
    constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d
    replication_pad3d _pad_circular _pad_enum
    view reshape _reshape_alias flatten unflatten permute transpose transpose_ contiguous squeeze squeeze_
    unsqueeze unsqueeze_ expand expand_as repeat repeat_interleave tile cat concat concatenate stack hstack
    vstack split split_with_sizes tensor_split chunk unsafe_chunk unsafe_split unbind narrow slice select
    index_select gather index index_put index_put_ roll flip movedim moveaxis swapaxes swapdims view_as
    reshape_as type_as to _to_copy clone detach detach_ alias lift_fresh lift_fresh_copy copy copy_ diagonal
    triu tril masked_select nonzero where masked_fill masked_fill_ scatter scatter_ scatter_add scatter_add_
    add add_ sub sub_ rsub mul mul_ div div_ true_divide floor_divide remainder fmod neg neg_ abs abs_ exp exp_
    exp2 expm1 log log_ log2 log10 log1p sqrt sqrt_ rsqrt rsqrt_ pow pow_ square reciprocal sign sgn clamp
    clamp_ clamp_min clamp_min_ clamp_max clamp_max_ clip clip_ minimum maximum fmin fmax floor ceil round
    trunc frac sin cos tan asin acos atan atan2 sinh cosh erf erfc erfinv lerp addcmul addcdiv xlogy hypot
    eq ne lt le gt ge logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_not
    bitwise_xor isnan isinf isfinite nan_to_num fill fill_ zero_ cumsum cumprod
    mean sum prod amax amin max min argmax argmin std var var_mean std_mean norm linalg_vector_norm
    frobenius_norm logsumexp all any topk sort argsort kthvalue median
    zeros zeros_like ones ones_like full full_like empty empty_like empty_strided new_zeros new_ones new_full
    new_empty arange linspace eye scalar_tensor tensor as_tensor bernoulli bernoulli_ rand rand_like randn
    randn_like normal_ uniform_ is_grad_enabled is_autocast_enabled is_autocast_cpu_enabled
    size sym_size sym_numel sym_stride sym_storage_offset numel dim stride item Int Float Bool Complex
    ScalarImplicit IntImplicit FloatImplicit _shape_as_tensor is_floating_point is_contiguous
    _assert_async _assert_scalar _assert_tensor_metadata sym_constrain_range sym_constrain_range_for_size
    _functional_sym_constrain_range _functional_sym_constrain_range_for_size _functional_assert_async
    _local_scalar_dense sym_is_contiguous
    warn format str len list append extend insert pop clear reverse keys values items _set_item __getitem__
    __contains__ __is__ __isnot__ __not__ __and__ __or__ __xor__ __range_length __derive_index floordiv
    div mul percentFormat Delete _unwrap_optional __round_to_zero_floordiv dict get setdefault
""".split())

# prim:: nodes of TorchScript graphs: constants, attributes, containers, control flow, calls of
# functions the same archive compiled (each of which is checked too), type refinements.
_PRIM = frozenset("""
    Constant GetAttr SetAttr ListConstruct ListUnpack TupleConstruct TupleUnpack TupleIndex TupleSlice
    DictConstruct DictIndex If Loop CallMethod CallFunction RaiseException Uninitialized unchecked_cast
    NumToTensor device dtype layout requires_grad is_cuda is_cpu is_meta isinstance min max abs data shape
    ModuleContainerIndex CreateObject tolist EnumValue EnumName TypeCheck unchecked_unwrap_optional
    AutogradAdd StringIndex is_nested type
""".split())

# torch.export higher-order operators: control flow and context wrappers around subgraphs
# (each subgraph is a graph of the program, checked node by node like the rest).
_HIGHER_ORDER = frozenset({"cond", "while_loop", "map_impl", "scan", "associative_scan",
                           "wrap_with_set_grad_enabled", "wrap_with_autocast", "invoke_subgraph"})

# Python-level functions a torch.export graph may call on sizes and scalars.
_PY_OPERATORS = frozenset({"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "abs", "getitem",
                           "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert", "lshift",
                           "rshift", "matmul", "truth"})
_MATH = frozenset({"ceil", "floor", "trunc", "sqrt", "exp", "log", "log2", "log10", "sin", "cos", "tan", "pow",
                   "fabs", "isfinite", "isinf", "isnan"})
_SYM = frozenset({"sym_int", "sym_float", "sym_max", "sym_min", "sym_not", "sym_ite", "sym_sqrt", "sym_sum",
                  "_sym_sqrt"})

# Why some refused operators are refused, to word the sentence (the list decides, not this).
_FILE_OPERATORS = frozenset({"aten::save", "aten::from_file", "aten::_load", "debugprims::load_tensor"})


def allowed(op: str) -> bool:
    """``op`` as ``namespace::name`` (an overload after a dot is ignored)."""
    namespace, _, name = op.partition("::")
    name = name.split(".", 1)[0]
    if namespace == "aten":
        return name in _ATEN
    if namespace == "prim":
        return name in _PRIM
    if namespace == "higher_order":
        return name in _HIGHER_ORDER
    return False


def python_name(op: str) -> str:
    """How a person would have written the call: ``aten::save`` -> ``torch.save``."""
    namespace, _, name = op.partition("::")
    if namespace == "aten":
        return f"torch.{name}"
    return op


def refusal(file_name: str, where: str, op: str, function: str | None = None) -> str:
    """The sentence for a refused operator, naming it."""
    if op in _FILE_OPERATORS:
        return (f"{file_name} was refused: {where} reads or writes files ({python_name(op)}), which a source "
                f"network never needs")
    inside = f" in {function}" if function else ""
    return (f"{file_name} was refused: {where} calls {op}{inside}, which is not among the operators a compiled "
            f"model may run here (tensor computations only)")


def python_function_allowed(spelled: str) -> bool:
    """A Python-level call as a ``.pt2`` file spells it: ``_operator.add``, ``math.floor``, ``torch.sym_int``."""
    module, _, name = spelled.rpartition(".")
    return ((module == "_operator" and name in _PY_OPERATORS) or (module == "math" and name in _MATH)
            or (module == "torch" and name in _SYM))


def _python_callables() -> list[Any]:
    import torch

    return ([getattr(operator, n) for n in _PY_OPERATORS] + [getattr(math, n) for n in _MATH]
            + [getattr(torch, n) for n in _SYM if hasattr(torch, n)])


def python_callable_allowed(target: Any) -> bool:
    """The same check on a loaded graph's resolved call target: by identity, not by name."""
    return any(target is allowed_target for allowed_target in _python_callables())
