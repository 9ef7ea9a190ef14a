"""What every example shares: the command line, weight copying, the parity check, training.

Each example builds a torch model and its MLX port, then calls, in order:

1. :func:`copy_weights`: the torch model's parameters into the port (``compat.to_mlx``);
2. :func:`check_parity`: the same seed in torch mode gives the same training-mode output;
3. :func:`train`: a few Adam steps on one synthetic batch, in flashdrop's default (mlx) mode;
4. :func:`check_modes`: eval mode is deterministic, training mode is not;
5. ``sys.exit(report())``: a summary line, and exit status 1 if any check failed.
"""

import argparse
from collections.abc import Callable

import mlx.core as mx
import mlx.nn
import mlx.optimizers as optim
import torch

import flashdrop
from flashdrop import compat

_failures: list[str] = []


def parse_args(description: str | None) -> argparse.Namespace:
    """``--quick`` (a few steps, small sizes) and ``--steps`` / ``--seed``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="few steps, small sizes (seconds)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (5, or 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the parity check")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 5 if args.quick else 100
    torch.manual_seed(args.seed)  # the torch model's initial weights and the inputs
    mx.random.seed(args.seed)  # the port's training masks (flashdrop's default "mlx" mode)
    return args


def check(ok: bool, message: str) -> None:
    """Print ``PASS: message`` or ``FAIL: message``; a failure makes :func:`report` return 1."""
    print(f"{'PASS' if ok else 'FAIL'}: {message}")
    if not ok:
        _failures.append(message)


def report() -> int:
    """The exit status: 0 when every check passed, else 1."""
    print(f"FAILED: {len(_failures)} check(s)" if _failures else "all checks passed")
    return 1 if _failures else 0


def channels_last(x: mx.array) -> mx.array:
    """torch's ``(N, C, *spatial)`` to MLX's ``(N, *spatial, C)``."""
    return mx.moveaxis(x, 1, -1)


def channels_first(x: mx.array) -> mx.array:
    """MLX's ``(N, *spatial, C)`` to torch's ``(N, C, *spatial)``."""
    return mx.moveaxis(x, -1, 1)


def copy_weights(torch_model: torch.nn.Module, mlx_model: mlx.nn.Module) -> None:
    """Load ``torch_model``'s state into ``mlx_model``, whose layers have the same names.

    Linear and LayerNorm weights have one layout in both; a convolution kernel, torch's
    ``(out, in, *kernel)``, becomes MLX's channels-last ``(out, *kernel, in)``. Loading is strict:
    a missing or extra name, or a wrong shape, raises.
    """
    weights = []
    for name, tensor in torch_model.state_dict().items():
        array = compat.to_mlx(tensor)
        if array.ndim > 2:  # a convolution kernel
            array = channels_last(array)
        weights.append((name, array))
    mlx_model.load_weights(weights, strict=True)


def check_parity(
    name: str,
    torch_model: torch.nn.Module,
    torch_input: torch.Tensor,
    mlx_model: mlx.nn.Module,
    mlx_input: mx.array,
    seed: int,
    tol: float = 1e-5,
) -> None:
    """Same seed, torch mode: the port's training-mode output is torch's, within ``tol``.

    Both models draw their dropout masks from one seeded stream, torch's CPU generator, in the
    order their dropout layers are called; that order must be the same in both. Also checks that
    dropout changed torch's output by more than ``tol`` (so the comparison is not vacuous).
    """
    torch_model.train()
    mlx_model.train()
    with torch.no_grad():
        torch.manual_seed(seed)
        expected = torch_model(torch_input)
        torch_model.eval()
        without_dropout = torch_model(torch_input)
        torch_model.train()

    flashdrop.manual_seed(seed)
    with flashdrop.rng_mode("torch"):
        got = mlx_model(mlx_input)

    diff = mx.abs(got - compat.to_mlx(expected)).max().item()
    effect = (expected - without_dropout).abs().max().item()
    check(
        diff <= tol < effect,
        f"{name}: training-mode output equals torch's: max abs diff {diff:.2e}, tolerance"
        f" {tol:.0e} (dropout changes the output by up to {effect:.2f})",
    )


def synthetic_classes(
    batch: int, shape: tuple[int, ...], classes: int
) -> tuple[mx.array, mx.array]:
    """A learnable batch: ``batch`` samples of ``shape``, each its class's pattern plus noise."""
    patterns = mx.random.normal((classes, *shape))
    labels = mx.random.randint(0, classes, (batch,))
    return patterns[labels] + mx.random.normal((batch, *shape)), labels


def train(
    name: str,
    model: mlx.nn.Module,
    loss_fn: Callable[[mx.array, mx.array], mx.array],
    x: mx.array,
    y: mx.array,
    steps: int,
    learning_rate: float = 1e-2,
) -> None:
    """``steps`` Adam steps on the batch ``(x, y)``; checks the eval-mode loss went down.

    ``loss_fn(output, y)`` is an ``mlx.nn.losses`` function; its values are averaged.
    """

    def loss_of(model: mlx.nn.Module) -> mx.array:
        return loss_fn(model(x), y).mean()

    model.eval()
    before = loss_of(model).item()
    model.train()
    optimizer = optim.Adam(learning_rate=learning_rate)
    loss_and_grad = mlx.nn.value_and_grad(model, loss_of)
    for step in range(1, steps + 1):
        loss, grads = loss_and_grad(model)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        if step == 1 or step == steps or step % max(1, steps // 5) == 0:
            print(f"{name}: step {step:3d}  training loss {loss.item():.4f}")
    model.eval()
    after = loss_of(model).item()
    check(after < before, f"{name}: loss goes down, eval loss {before:.4f} -> {after:.4f}")


def check_modes(name: str, model: mlx.nn.Module, x: mx.array) -> None:
    """Eval mode: two calls give equal outputs. Training mode: two calls draw different masks."""
    model.eval()
    check(mx.array_equal(model(x), model(x)).item(), f"{name}: eval mode is deterministic")
    model.train()
    check(not mx.array_equal(model(x), model(x)).item(), f"{name}: training mode is random")
