"""``flashdrop.compile``: ``mx.compile`` with the random state threaded through, retraced per
random mode and training flags (as ``torch.compile`` retraces per training flag); and
:class:`CompiledPerShape`, the bounded cache of per-shape traces the library's own fused
kernels use."""

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import mlx.core as mx
import mlx.nn

from flashdrop import _checks
from flashdrop._random.hook import recorders, recording_here
from flashdrop._random.streams import (
    KeyStream,
    current_stream,
    get_rng_mode,
    local,
    local_value,
    put_mlx_key,
)
from flashdrop._random.tracing import is_traced


def note_training_flag(module: Any) -> None:
    """A layer reads its training flag: inside a :func:`compile` trace, the trace depends on it
    (a later call with the flag changed is traced anew)."""
    if local.trace_modules is not None:
        local.trace_modules.append(module)


def _add_new(modules: list[Any], more: Iterable[Any]) -> None:
    """Append to ``modules`` those of ``more`` it does not hold (modules are dicts, unhashable:
    compared by identity)."""
    known = {id(m) for m in modules}
    for module in more:
        if id(module) not in known:
            known.add(id(module))
            modules.append(module)


def _modules_in(tree: Any) -> list[Any]:
    """Every ``mlx.nn.Module`` in a tree of lists, tuples and dicts, and their submodules
    (``model.state`` is the model itself)."""
    if isinstance(tree, mlx.nn.Module):
        return list(tree.modules())
    if isinstance(tree, dict):
        tree = tree.values()
    if isinstance(tree, (list, tuple, type({}.values()))):
        return [m for item in tree for m in _modules_in(item)]
    return []


def _fresh(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A new function object calling ``fn``: MLX keeps one compiled cache per function object,
    so each of :func:`compile`'s variants needs its own."""
    return lambda *args, **kwargs: fn(*args, **kwargs)


def compile(
    fn: Callable[..., Any],
    inputs: Any = None,
    outputs: Any = None,
    shapeless: bool = False,
) -> Callable[..., Any]:
    """``mx.compile`` with the random state threaded through.

    A plain ``mx.compile`` bakes the random key in at trace time, so every call of the compiled
    function repeats one mask. This one passes the random state in and out of the graph, so
    each call draws a fresh mask, exactly as the uncompiled function would: in the main thread
    MLX's ``mx.random.state``, in other threads the thread's own mlx-mode stream (see
    :func:`next_mlx_key`). A torch-mode draw inside raises ``RuntimeError``: torch's stream
    lives on the host. If a call fails while tracing, the random state is restored.

    As ``torch.compile`` retraces when a module's training flag changes, a call made after
    ``model.eval()`` (or ``model.train()``) runs a trace made in that mode: one trace is kept per
    combination of the training flags of the flashdrop layers a trace called and of every
    module of the models in ``inputs`` and ``outputs`` (``model.state`` is the model). An
    ``mlx.nn`` layer reached only through ``fn``'s closure, or a ``training=`` argument given
    to a function, is read once, when a shape is first traced, as by ``mx.compile``.

    While :func:`flashdrop.testing.record_draws` records in the calling thread, an mlx-mode
    call runs ``fn`` uncompiled, so that each draw is recorded with its mask: the same masks,
    outputs and random state.

    Args:
        fn: the function to compile.
        inputs, outputs: as for ``mx.compile`` (for example a model's and an optimizer's
            state); the random state is added to them.
        shapeless: must be ``False``: MLX's random ops cannot be traced shapeless (they cannot
            infer their output shapes); ``True`` raises ``ValueError`` here, before any trace.

    Example::

        >>> step = flashdrop.compile(lambda x: model(x).sum())
    """
    _checks.check_compile_not_shapeless(shapeless)

    # The modules whose training flag a trace may depend on: those of the models in `inputs`
    # and `outputs`, and each flashdrop layer a trace called. A trace is kept per combination
    # of their flags, as torch.compile retraces when a module's training flag changes.
    modules: list[Any] = []
    _add_new(modules, _modules_in([inputs, outputs]))  # inputs and outputs often hold one model

    def run(*args: Any, **kwargs: Any) -> Any:
        depth, noted = local.tracing, local.trace_modules
        local.tracing = depth + 1  # torch-mode draws refuse to be traced
        local.trace_modules = found = []
        try:
            return fn(*args, **kwargs)
        finally:
            local.tracing, local.trace_modules = depth, noted
            _add_new(modules, found)

    def traced_global(*args: Any, **kwargs: Any) -> Any:
        # After mx.disable_compile() this runs eagerly: then nothing is traced.
        return (run if is_traced(mx.random.state[0]) else fn)(*args, **kwargs)

    def traced_keyed(key: mx.array, *args: Any, **kwargs: Any) -> Any:
        stream = KeyStream(key)
        with local_value("override", stream):
            out = (run if is_traced(key) else fn)(*args, **kwargs)
        return stream.key, out

    # Per random mode and combination of training flags: [keyed, global]. The keyed one threads
    # a key given as an argument (other threads, checkpoint recomputations inside a trace); the
    # global one MLX's own state, made on the first call in the main thread (reading
    # mx.random.state in another thread would make its MLX state, see next_mlx_key).
    variants: dict[tuple[str, tuple[bool, ...]], list[Any]] = {}

    def trace_key() -> tuple[str, tuple[bool, ...]]:
        """What a trace depends on besides its arguments: the mode, the training flags."""
        return get_rng_mode(), tuple(m.training for m in modules)

    def call(variant: list[Any], args: tuple, kwargs: dict) -> Any:
        stream = current_stream()
        if stream is not None:  # another thread, or a checkpoint's recomputation
            if variant[0] is None:
                variant[0] = mx.compile(_fresh(traced_keyed), inputs=inputs, outputs=outputs)
            stream.key, out = variant[0](stream.key, *args, **kwargs)
            return out
        if variant[1] is None:
            state = [mx.random.state, inputs]
            variant[1] = mx.compile(
                _fresh(traced_global), inputs=state, outputs=[mx.random.state, outputs]
            )
        saved = mx.random.state[0]
        try:
            return variant[1](*args, **kwargs)
        except BaseException:
            # A failed trace leaves a placeholder as MLX's key: put the key back (inside an
            # outer trace, the key is that trace's, and that trace puts back its own).
            if not is_traced(saved):
                put_mlx_key(saved)
            raise

    @functools.wraps(fn)
    def compiled(*args: Any, **kwargs: Any) -> Any:
        if recorders and get_rng_mode() == "mlx" and recording_here():
            # Recording (flashdrop.testing.record_draws): run eagerly, so that every draw is
            # seen with its mask; the same masks, outputs and random state as compiled.
            return fn(*args, **kwargs)
        key, known = trace_key(), len(modules)
        variant = variants.setdefault(key, [None, None])
        out = call(variant, args, kwargs)
        if len(modules) > known:  # the trace met layers: its flags are theirs now, too
            variants[trace_key()] = variants.pop(key)
        if local.trace_modules is not None:  # called inside another compile's trace
            local.trace_modules.extend(modules)
        return out

    return compiled


class CompiledPerShape:
    """``fused`` compiled, one trace per signature (the input's shape and dtype), at most
    ``traces`` kept: the least recently used is dropped (deleting a compiled function frees its
    trace), so that many input shapes (variable sequence lengths) do not pile up traces.

    A signature is compiled from its second call on; its first call runs ``fallback`` (the same
    bits, no trace), so that shapes seen once cost no trace. The last ``16 * traces``
    signatures called once are remembered. When a trace is dropped before it served
    ``pays_off`` calls, shapes come and go faster than traces pay off: from then on no new
    signature is compiled (those compiled stay in use).
    """

    def __init__(
        self,
        fused: Callable[..., mx.array],
        fallback: Callable[..., mx.array],
        compile: Callable,
        traces: int = 256,
        pays_off: int = 8,
    ) -> None:
        self.fused, self.fallback, self.compile = fused, fallback, compile
        self.traces, self.seen_limit, self.pays_off = traces, 16 * traces, pays_off
        self.compiled: OrderedDict[tuple, list] = OrderedDict()  # [compiled fn, calls served]
        self.seen: OrderedDict[tuple, None] = OrderedDict()
        self.compiling = True

    def __call__(self, input: mx.array, *args: Any) -> mx.array:
        # The other arrays' shapes follow from the input's (element dropout: the noise shape is
        # the input's, q is 0-d); alpha dropout has three constants, the others one. A
        # function of the input alone (attention's softmax) has no other arguments.
        signature = (input.shape, input.dtype, len(args[-1]) if args else 0)
        entry = self.compiled.get(signature)
        if entry is not None:
            self.compiled.move_to_end(signature)
            entry[1] += 1
            return entry[0](input, *args)
        if not self.compiling:
            return self.fallback(input, *args)
        if signature not in self.seen:
            self.seen[signature] = None
            if len(self.seen) > self.seen_limit:
                self.seen.popitem(last=False)
            return self.fallback(input, *args)
        del self.seen[signature]
        entry = self.compiled[signature] = [self.compile(self.fused), 1]
        if len(self.compiled) > self.traces:
            _, (_, served) = self.compiled.popitem(last=False)
            self.compiling = served >= self.pays_off
        return entry[0](input, *args)
