"""FLOPs of a model's forward pass, counted from its convolutions' and matmuls' shapes.

Convention (the usual one for a training step's arithmetic): a convolution's forward pass costs
2 * N * H_out * W_out * kh * kw * C_in * C_out (one multiply and one add per kernel tap; a transposed convolution counts
its *input* positions, N * H_in * W_in, the work of the strided convolution it inverts); a matmul or einsum
2 * (output size) * (contracted size). Elementwise ops (activations, gates, log-probabilities) are not counted. A
training step is `TRAIN_FACTOR` = 3 forward passes: the backward pass computes the gradients for the inputs and for
the weights, each as costly as the forward.
"""

import math
import re

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

TRAIN_FACTOR = 3

# Ops that run a nested function every call; `If`/`While` branches are skipped: what runs
# there once (weight-norm or actnorm data-dependent initialization) is no per-step work.
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def forward_flops(fn, *input_specs):
    """FLOPs of one call of `fn` on fully defined `tf.TensorSpec`s; where a nested function leaves a shape unknown
    (TFP's Keras layers run in functions traced for any batch), counted in the frozen graph, functions inlined."""
    for spec in input_specs:
        if not spec.shape.is_fully_defined():
            raise ValueError(f"input specs must have fully defined shapes to count FLOPs, got {spec}.")
    traced = tf.function(fn).get_concrete_function(*input_specs)
    try:
        return graph_flops(traced.graph)
    except UnknownShapeError:
        frozen = convert_variables_to_constants_v2(traced, lower_control_flow=False, aggressive_inlining=True)
        return graph_flops(frozen.graph)


class UnknownShapeError(ValueError):
    """An op to count has a shape the trace left unknown."""


def graph_flops(graph):
    """Sum of `op_flops` over the ops of a graph, nested function calls included."""
    total = 0
    for op in graph.get_operations():
        if op.type in _CALLS:
            total += graph_flops(graph._get_function(op.get_attr("f").name).graph)  # noqa: SLF001
        else:
            total += op_flops(op)
    return total


def _dims(tensor):
    if not tensor.shape.is_fully_defined():
        raise UnknownShapeError(f"{tensor.op.type} op {tensor.op.name!r} has shape {tensor.shape}.")
    return tensor.shape.as_list()


def op_flops(op):
    """FLOPs of one graph op by the module's convention; 0 for ops it does not count."""
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
        kh, kw, cin, _ = _dims(op.inputs[1])
        out = _dims(op.outputs[0])  # [N, H_out, W_out, C_out] (NHWC: the only layout on CPU)
        return 2 * math.prod(out) * kh * kw * (cin if op.type == "Conv2D" else 1)
    if op.type == "Conv2DBackpropInput":  # a transposed convolution's forward pass
        kh, kw, _, cin = _dims(op.inputs[1])  # filter [kh, kw, C_out, C_in] of the transposed conv
        small = _dims(op.inputs[2])  # its input [N, H_in, W_in, C_in]
        return 2 * math.prod(small[:3]) * kh * kw * cin * _dims(op.outputs[0])[-1]
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _dims(op.inputs[0])
        adj = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        contracted = a[-2] if adj else a[-1]
        return 2 * math.prod(_dims(op.outputs[0])) * contracted
    if op.type != "Einsum":
        return 0
    # An einsum: 2 * (output size) * (product of the sizes of the indices summed over).
    equation = op.get_attr("equation").decode().replace(" ", "")
    inputs, output = equation.split("->")
    sizes = {}
    for term, tensor in zip(inputs.split(","), op.inputs):
        dims = _dims(tensor)
        head, _, tail = term.partition("...")
        for letter, size in zip(head, dims[:len(head)]):
            sizes[letter] = size
        for letter, size in zip(tail[::-1], dims[::-1]):
            sizes[letter] = size
    contracted = set(re.sub(r"[^a-zA-Z]", "", inputs)) - set(output)
    return 2 * math.prod(_dims(op.outputs[0])) * math.prod(sizes[c] for c in contracted)
