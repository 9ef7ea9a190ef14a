"""Helpers of the layer parity tests: a torch layer's flashdrop twin, and the checks each test
makes of a pair (draws and outputs, generator state, gradients, compile, checkpoint).

Tolerances: float32 outputs within ``ATOL + RTOL * |torch|`` (MLX's and torch's matrix
products and softmax round differently, in the last bits; a few layers deep, and through an
RNN's steps, the differences stay below 1e-5 at these sizes); gradients within ``GRAD_TOL``.
"""

import mlx.core as mx
import mlx.nn
import numpy as np
import torch
from mlx.utils import tree_flatten

import flashdrop
from flashdrop import compat
from flashdrop.testing import assert_same_as_torch

ATOL = RTOL = 1e-5
GRAD_TOL = 1e-4


def twin(torch_module: torch.nn.Module, cls: type, *args, **kwargs) -> mlx.nn.Module:
    """``cls(*args, **kwargs)`` loaded with ``torch_module``'s state_dict, no renaming, in the
    same training mode."""
    port = cls(*args, **kwargs)
    port.load_weights([(k, compat.to_mlx(v)) for k, v in torch_module.state_dict().items()])
    port.train(torch_module.training)
    return port


def mlx_(value):
    return compat.to_mlx(value) if isinstance(value, torch.Tensor) else value


def drop_none(out):
    """Outputs without the ``None`` of ``need_weights=False`` (the comparison takes arrays)."""
    if isinstance(out, tuple):
        return tuple(drop_none(o) for o in out if o is not None)
    return out


def assert_same(torch_fn, port_fn, *inputs, calls: int = 2) -> None:
    """Same draws (shapes, p, masks, in order) and outputs within tolerance, call after call,
    and the generator left where torch leaves it."""
    assert_same_as_torch(
        lambda *a: drop_none(torch_fn(*a)),
        lambda *a: drop_none(port_fn(*a)),
        *inputs,
        calls=calls,
        atol=ATOL,
        rtol=RTOL,
    )
    torch.manual_seed(3)
    torch_fn(*inputs)
    theirs = torch.get_rng_state().numpy().tobytes()
    flashdrop.manual_seed(3)
    with flashdrop.rng_mode("torch"):
        mx.eval(port_fn(*(mlx_(x) for x in inputs)))
        ours = bytes(np.array(flashdrop.get_rng_state())[: len(theirs)])
    assert ours == theirs


def assert_same_gradients(torch_module, port, torch_loss, port_loss, *inputs) -> None:
    """``mx.grad`` of the port's loss with respect to its parameters is torch autograd's, from
    the same seed in torch mode (the same masks), also through ``flashdrop.checkpoint``."""
    torch.manual_seed(5)
    torch_module.zero_grad()
    torch_loss(*inputs).backward()
    theirs = {k: p.grad for k, p in torch_module.named_parameters()}

    def loss(params):
        port.update(params)
        return port_loss(*(mlx_(x) for x in inputs))

    for wrap in (lambda f: f, flashdrop.checkpoint):  # checkpointed: the masks replayed
        flashdrop.manual_seed(5)
        with flashdrop.rng_mode("torch"):
            grads = dict(tree_flatten(mx.grad(wrap(loss))(port.trainable_parameters())))
        assert sorted(grads) == sorted(theirs)
        for name, grad in grads.items():
            np.testing.assert_allclose(
                np.array(grad), theirs[name].numpy(), atol=GRAD_TOL, rtol=GRAD_TOL, err_msg=name
            )


def assert_compiles_and_checkpoints(port, port_loss, *inputs) -> None:
    """In mlx mode: inside ``flashdrop.compile`` each call draws fresh masks and gives what the
    uncompiled call gives from the same seed; after ``eval()`` it draws nothing; inside
    ``flashdrop.checkpoint`` the gradient is the plain one's (the masks replayed)."""
    args = [mlx_(x) for x in inputs]
    port.train()
    compiled = flashdrop.compile(lambda *a: port_loss(*a), inputs=port, outputs=port)
    mx.random.seed(11)
    eager = [port_loss(*args) for _ in range(2)]
    mx.random.seed(11)
    traced = [compiled(*args) for _ in range(2)]
    for e, t in zip(eager, traced, strict=True):
        np.testing.assert_allclose(np.array(t), np.array(e), atol=ATOL, rtol=RTOL)
    assert not np.allclose(np.array(traced[0]), np.array(traced[1]))  # fresh masks
    port.eval()
    evaluated = [compiled(*args) for _ in range(2)]
    np.testing.assert_array_equal(np.array(evaluated[0]), np.array(evaluated[1]))
    np.testing.assert_allclose(np.array(evaluated[0]), np.array(port_loss(*args)), atol=ATOL)
    port.train()

    def loss(params, *a):
        port.update(params)
        return port_loss(*a)

    params = port.trainable_parameters()
    mx.random.seed(12)
    plain = dict(tree_flatten(mx.grad(loss)(params, *args)))
    mx.random.seed(12)
    replayed = dict(tree_flatten(mx.grad(flashdrop.checkpoint(loss))(params, *args)))
    for name, grad in plain.items():
        np.testing.assert_allclose(
            np.array(replayed[name]), np.array(grad), atol=1e-6, err_msg=name
        )
