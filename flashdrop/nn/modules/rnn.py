r"""torch.nn's multi-layer recurrent layers on MLX: :class:`RNN`, :class:`LSTM` (with
``proj_size``) and :class:`GRU`, with torch 2.13's arguments, defaults, parameters (named and
shaped as torch's ``state_dict()``: ``weight_ih_l0``, ``bias_hh_l1_reverse``,
``weight_hr_l0``...), errors and warnings.

They drop as torch's do: with ``dropout > 0`` in training, :func:`flashdrop.nn.functional.dropout`
of each layer's output except the last layer's, an (L, N, H * num_directions) sequence, in
(L, N, H) order also with ``batch_first=True`` (torch runs its layers on (L, N, H) sequences).
In torch random mode the masks are torch's.
"""

import math
import numbers
import warnings

import mlx.core as mx

from flashdrop import _checks
from flashdrop.nn import functional as F
from flashdrop.nn.modules._layer import TorchModule

__all__ = ["GRU", "LSTM", "RNN"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _torch_dtype_name(dtype: mx.Dtype) -> str:
    return "torch." + str(dtype).rpartition(".")[2]


class _RNNBase(TorchModule):
    """torch's ``RNNBase``: the checks, the parameters, the layers and the dropout between them;
    each subclass its cell (:meth:`_cell`)."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        if (
            not isinstance(dropout, numbers.Number)
            or not 0 <= dropout <= 1
            or isinstance(dropout, bool)
        ):
            _checks.raise_rnn_dropout()
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        if dropout > 0 and num_layers == 1:
            warnings.warn(_checks.rnn_dropout_single_layer(dropout, num_layers), stacklevel=3)
        for arg, value, kind in (
            ("bias", bias, bool),
            ("batch_first", batch_first, bool),
            ("input_size", input_size, int),
        ):
            if not isinstance(value, kind):
                _checks.raise_rnn_type(arg, value)
        if input_size <= 0:
            _checks.raise_rnn_not_positive("input_size")
        if not isinstance(hidden_size, int):
            _checks.raise_rnn_type("hidden_size", hidden_size)
        if hidden_size <= 0:
            _checks.raise_rnn_not_positive("hidden_size")
        if num_layers <= 0:
            _checks.raise_rnn_not_positive("num_layers")
        if proj_size < 0:
            _checks.raise_proj_size_negative()
        if proj_size >= hidden_size:
            _checks.raise_proj_size_not_smaller()

        # torch's parameters, in its order, each uniform(-1/sqrt(hidden_size), 1/sqrt(...))
        gate_size = _GATES[mode] * hidden_size
        out_size = proj_size if proj_size > 0 else hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * self._directions
            for suffix in ("", "_reverse")[: self._directions]:
                shapes = {"weight_ih": (gate_size, layer_input), "weight_hh": (gate_size, out_size)}
                if bias:
                    shapes |= {"bias_ih": (gate_size,), "bias_hh": (gate_size,)}
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    setattr(
                        self, f"{name}_l{layer}{suffix}", mx.random.uniform(-bound, bound, shape)
                    )

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _extra_repr(self) -> str:
        """torch's ``extra_repr``."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _prepare(
        self, name: str, input: mx.array, hx: tuple[mx.array, ...] | None
    ) -> tuple[mx.array, tuple[mx.array, ...] | None, bool]:
        """torch's checks of ``input`` and of the given states; returns the input batched and
        (L, N, D), the states batched, and whether the input was batched."""
        if not isinstance(input, mx.array):
            _checks.raise_not_an_array(name, "input", input)
        if input.ndim not in (2, 3):
            _checks.raise_rnn_input_dims(name, input.ndim)
        is_batched = input.ndim == 3
        if not is_batched:
            input = mx.expand_dims(input, 0 if self.batch_first else 1)
        if hx is not None:
            want = 3 if is_batched else 2
            if any(h.ndim != want for h in hx):
                _checks.raise_hx_dims(is_batched, [h.ndim for h in hx], name == "LSTM")
            if not is_batched:
                hx = tuple(mx.expand_dims(h, 1) for h in hx)
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype:
            _checks.raise_rnn_input_dtype(
                _torch_dtype_name(input.dtype), _torch_dtype_name(weight.dtype)
            )
        if input.shape[-1] != self.input_size:
            _checks.raise_rnn_input_size(self.input_size, input.shape[-1])
        if self.batch_first:
            input = input.swapaxes(0, 1)  # torch's layers run on (L, N, D)
        return input, hx, is_batched

    def _expected(self, batch: int, size: int) -> tuple[int, int, int]:
        return (self.num_layers * self._directions, batch, size)

    def _layers(
        self, x: mx.array, states: list[tuple[mx.array, ...]], zero_start: bool
    ) -> tuple[mx.array, list]:
        """The layers on x (L, N, D), from ``states[k]`` (layer * directions + direction), with
        torch's dropout between them; the last layer's output and every final state.
        ``zero_start``: the states are zeros (no ``hx`` given)."""
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(("", "_reverse")[: self._directions]):
                weights = [
                    getattr(self, f"{name}_l{layer}{suffix}", None)
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
                ]
                out, final = self._direction(
                    x,
                    states[layer * self._directions + direction],
                    weights,
                    direction == 1,
                    zero_start,
                )
                outputs.append(out)
                finals.append(final)
            x = outputs[0] if len(outputs) == 1 else mx.concatenate(outputs, axis=-1)
            if self.dropout != 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def _direction(
        self,
        x: mx.array,
        state: tuple[mx.array, ...],
        weights: list,
        reverse: bool,
        zero_start: bool,
    ) -> tuple[mx.array, tuple[mx.array, ...]]:
        """One layer in one direction over the sequence: its outputs (L, N, H) and final state.

        From a zero state the first step's hidden product is ``b_hh`` exactly (``None``
        without biases: nothing to add), as ``mlx.nn``'s layers skip it."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        x_gates = x @ w_ih.T if b_ih is None else mx.addmm(b_ih, x, w_ih.T)
        outputs = [None] * x.shape[0]
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        for step, t in enumerate(steps):
            if step == 0 and zero_start:
                h_gates = b_hh
            else:
                h_gates = state[0] @ w_hh.T if b_hh is None else mx.addmm(b_hh, state[0], w_hh.T)
            state = self._cell(x_gates[t], h_gates, state, w_hr)
            outputs[t] = state[0]
        if not outputs:
            return mx.zeros((0, *state[0].shape), x.dtype), state
        return mx.stack(outputs), state

    def _cell(
        self,
        x_gates: mx.array,
        h_gates: mx.array | None,
        state: tuple[mx.array, ...],
        w_hr: mx.array | None,
    ) -> tuple[mx.array, ...]:
        """One step: the new state from the input's and the hidden state's gate products
        (``h_gates`` None: zero)."""
        raise NotImplementedError


class RNN(_RNNBase):
    r"""A multi-layer Elman RNN, as torch 2.13's ``nn.RNN``:
    :math:`h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1}W_{hh}^T + b_{hh})` (or ReLU).

    Args:
        input_size: The number of expected features in the input ``x``.
        hidden_size: The number of features in the hidden state ``h``.
        num_layers: Number of recurrent layers. Default: 1
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``
        bias: use the biases ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: input and output are (batch, seq, feature). Default: ``False``
        dropout: dropout on the outputs of each layer except the last. Default: 0
        bidirectional: a bidirectional RNN. Default: ``False``
        kwargs: none is taken: ``proj_size`` (LSTM's) raises torch's ``ValueError``, any
            other keyword a ``TypeError``.

    Shape:
        - input: :math:`(L, H_{in})`, :math:`(L, N, H_{in})` or, with ``batch_first``,
          :math:`(N, L, H_{in})`; h_0: :math:`(D \cdot \text{num\_layers}, N, H_{out})` or
          without N. Returns ``(output, h_n)``: output :math:`(L, N, D \cdot H_{out})` (or as
          the input is laid out), h_n like h_0.

    Example::

        >>> rnn = nn.RNN(10, 20, num_layers=2, dropout=0.1)
        >>> output, h_n = rnn(mx.random.normal((5, 3, 10)))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        **kwargs: object,
    ) -> None:
        _checks.check_no_proj_size(kwargs)
        if nonlinearity not in ("tanh", "relu"):
            _checks.raise_nonlinearity(nonlinearity)
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        self.nonlinearity = nonlinearity

    def _cell(self, x_gates, h_gates, state, w_hr):
        pre = x_gates if h_gates is None else x_gates + h_gates
        return (mx.tanh(pre) if self.mode == "RNN_TANH" else mx.maximum(pre, 0),)

    def forward(self, input: mx.array, hx: mx.array | None = None) -> tuple[mx.array, mx.array]:
        """Run the layers over ``input`` from ``hx`` (zeros by default): ``(output, h_n)``."""
        return _single_state_forward(self, "RNN", input, hx)


class GRU(_RNNBase):
    r"""A multi-layer gated recurrent unit RNN, as torch 2.13's ``nn.GRU``:
    :math:`r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr})`, :math:`z` alike,
    :math:`n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))`,
    :math:`h' = (1 - z) \odot n + z \odot h` (``b_hn`` inside the reset product, as torch).

    Args:
        input_size: The number of expected features in the input ``x``.
        hidden_size: The number of features in the hidden state ``h``.
        num_layers: Number of recurrent layers. Default: 1
        bias: use the biases. Default: ``True``
        batch_first: input and output are (batch, seq, feature). Default: ``False``
        dropout: dropout on the outputs of each layer except the last. Default: 0
        bidirectional: a bidirectional GRU. Default: ``False``
        kwargs: none is taken: ``proj_size`` (LSTM's) raises torch's ``ValueError``, any
            other keyword a ``TypeError``.

    Example::

        >>> gru = nn.GRU(10, 20, num_layers=2, dropout=0.1, bidirectional=True)
        >>> output, h_n = gru(mx.random.normal((5, 3, 10)))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        **kwargs: object,
    ) -> None:
        _checks.check_no_proj_size(kwargs)
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )

    def _cell(self, x_gates, h_gates, state, w_hr):
        size = self.hidden_size
        if h_gates is None:
            r, z = mx.split(mx.sigmoid(x_gates[..., : 2 * size]), 2, axis=-1)
            n = mx.tanh(x_gates[..., 2 * size :])
        else:
            rz = mx.sigmoid(x_gates[..., : 2 * size] + h_gates[..., : 2 * size])
            r, z = mx.split(rz, 2, axis=-1)
            n = mx.tanh(x_gates[..., 2 * size :] + r * h_gates[..., 2 * size :])
        return (n + z * (state[0] - n),)  # torch's (1 - z) * n + z * h

    def forward(self, input: mx.array, hx: mx.array | None = None) -> tuple[mx.array, mx.array]:
        """Run the layers over ``input`` from ``hx`` (zeros by default): ``(output, h_n)``."""
        return _single_state_forward(self, "GRU", input, hx)


def _single_state_forward(
    rnn: _RNNBase, name: str, input: mx.array, hx: mx.array | None
) -> tuple[mx.array, mx.array]:
    """``forward`` of RNN and GRU, whose state is ``h`` alone."""
    x, states, is_batched = rnn._prepare(name, input, None if hx is None else (hx,))
    expected = rnn._expected(x.shape[1], rnn.hidden_size)
    h0 = mx.zeros(expected, x.dtype) if states is None else states[0]
    if h0.shape != expected:
        _checks.raise_hidden_size("hidden", expected, h0.shape)
    out, finals = rnn._layers(x, [(h0[k],) for k in range(expected[0])], states is None)
    h_n = mx.stack([f[0] for f in finals])
    return _outputs(rnn, out, is_batched), h_n if is_batched else h_n[:, 0]


def _outputs(rnn: _RNNBase, out: mx.array, is_batched: bool) -> mx.array:
    """The last layer's (L, N, H) output, in the input's layout."""
    if not is_batched:
        return out[:, 0]
    return out.swapaxes(0, 1) if rnn.batch_first else out


class LSTM(_RNNBase):
    r"""A multi-layer long short-term memory RNN, as torch 2.13's ``nn.LSTM``, with its
    ``proj_size`` (the hidden state projected by ``weight_hr_l{k}``).

    Args:
        input_size: The number of expected features in the input ``x``.
        hidden_size: The number of features in the hidden state ``h``.
        num_layers: Number of recurrent layers. Default: 1
        bias: use the biases ``b_ih`` and ``b_hh``. Default: ``True``
        batch_first: input and output are (batch, seq, feature). Default: ``False``
        dropout: dropout on the outputs of each layer except the last. Default: 0
        bidirectional: a bidirectional LSTM. Default: ``False``
        proj_size: project the hidden state to this size, if > 0. Default: 0

    Shape:
        - Returns ``(output, (h_n, c_n))``; ``h_n`` has ``proj_size`` features when it is > 0.

    Example::

        >>> lstm = nn.LSTM(10, 20, num_layers=2, dropout=0.1)
        >>> output, (h_n, c_n) = lstm(mx.random.normal((5, 3, 10)))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
        )

    def _cell(self, x_gates, h_gates, state, w_hr):
        gates = x_gates if h_gates is None else x_gates + h_gates
        i, f, g, o = mx.split(gates, 4, axis=-1)
        c = mx.sigmoid(f) * state[1] + mx.sigmoid(i) * mx.tanh(g)
        h = mx.sigmoid(o) * mx.tanh(c)
        return (h if w_hr is None else h @ w_hr.T, c)

    def forward(
        self, input: mx.array, hx: tuple[mx.array, mx.array] | None = None
    ) -> tuple[mx.array, tuple[mx.array, mx.array]]:
        """Run the layers over ``input`` from ``hx = (h_0, c_0)`` (zeros by default):
        ``(output, (h_n, c_n))``."""
        x, states, is_batched = self._prepare("LSTM", input, hx)
        out_size = self.proj_size if self.proj_size > 0 else self.hidden_size
        expected_h = self._expected(x.shape[1], out_size)
        expected_c = self._expected(x.shape[1], self.hidden_size)
        zero_start = states is None
        if zero_start:
            states = (mx.zeros(expected_h, x.dtype), mx.zeros(expected_c, x.dtype))
        h0, c0 = states
        if h0.shape != expected_h:
            _checks.raise_hidden_size("hidden[0]", expected_h, h0.shape)
        if c0.shape != expected_c:
            _checks.raise_hidden_size("hidden[1]", expected_c, c0.shape)
        out, finals = self._layers(x, [(h0[k], c0[k]) for k in range(expected_h[0])], zero_start)
        h_n, c_n = (mx.stack([f[i] for f in finals]) for i in (0, 1))
        if not is_batched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return _outputs(self, out, is_batched), (h_n, c_n)
