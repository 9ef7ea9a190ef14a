"""flashdrop.checkpoint in torch mode against torch.utils.checkpoint (preserve_rng_state=True).

After the same seed, a checkpointed training step draws the masks torch draws, computes the
gradients torch computes, and leaves the generator where torch's is: the forward's draws only,
for both ``use_reentrant`` settings.
"""

import mlx.core as mx
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
import torch.utils.checkpoint

import flashdrop
import flashdrop.nn.functional as F

SEED = 123
TORCH_STATE_BYTES = 5056


def torch_layer(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    h = TF.dropout(h * w, 0.5)
    return TF.dropout1d(h.reshape(8, 8, 8), 0.3).reshape(8, 64) * 2


def mlx_layer(w: mx.array, h: mx.array) -> mx.array:
    h = F.dropout(h * w, 0.5)
    return F.dropout1d(h.reshape(8, 8, 8), 0.3).reshape(8, 64) * 2


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((2, 64), dtype=np.float32),
        rng.standard_normal((8, 64), dtype=np.float32),
    )


def torch_step(use_reentrant: bool | None):
    w_np, x_np = inputs()
    w = torch.from_numpy(w_np).requires_grad_()
    x = torch.from_numpy(x_np)
    torch.manual_seed(SEED)
    h = x
    for i in range(2):
        if use_reentrant is None:
            h = torch_layer(w[i], h)
        else:
            h = torch.utils.checkpoint.checkpoint(torch_layer, w[i], h, use_reentrant=use_reentrant)
    (h**2).sum().backward()
    return h.detach().numpy(), w.grad.numpy(), torch.get_rng_state().numpy().tobytes()


def flashdrop_step(checkpoint: bool):
    w_np, x_np = inputs()
    layer = flashdrop.checkpoint(mlx_layer) if checkpoint else mlx_layer
    outputs = []

    def loss(w, x):
        h = x
        for i in range(2):
            h = layer(w[i], h)
        outputs.append(h)
        return (h**2).sum()

    with flashdrop.rng_mode("torch"):
        flashdrop.manual_seed(SEED)
        grad = mx.grad(loss)(mx.array(w_np), mx.array(x_np))
        state = bytes(np.array(flashdrop.get_rng_state()))[:TORCH_STATE_BYTES]
    return np.array(outputs[0]), np.array(grad), state


@pytest.mark.parametrize("use_reentrant", [True, False])
def test_checkpointed_step_matches_torch_checkpoint(use_reentrant):
    out, grad, state = torch_step(use_reentrant)
    _, _, plain_state = torch_step(None)
    assert state == plain_state, "torch: checkpointing takes no extra draws"
    ours_out, ours_grad, ours_state = flashdrop_step(checkpoint=True)
    assert np.array_equal(ours_out, out), "the same masks"
    assert ours_state == state, "the generator advanced exactly as torch's"
    np.testing.assert_allclose(ours_grad, grad, rtol=1e-6, atol=1e-6)
    _, uncheckpointed_grad, _ = flashdrop_step(checkpoint=False)
    assert np.array_equal(ours_grad, uncheckpointed_grad), "bit for bit the uncheckpointed grad"
