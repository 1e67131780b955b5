"""The single-layer RNN classifier and its BPTT gradients, by hand in NumPy.

The model (Keras layout, row vectors; h_0 = 0):

    h_t = tanh(x_t W + h_{t-1} U + b)     W: N x L, U: L x L, b: L
    y^  = softmax(h_T V + B)              V: L x K, B: K
    E   = -(1 / M) sum_m log y^_m[y_m]    (mean cross entropy over M sequences)

At a masked (padding) step the state is carried, h_t = h_{t-1}, so h_T is the
state at the last real step. Backpropagation through time, with
delta_t = dE/d(pre-activation at t):

    dE/dB = sum_m (y^ - y) / M
    dE/dV = sum_m h_T^T (y^ - y) / M
    dh_T  = (y^ - y) V^T / M
    delta_t = dh_t * (1 - h_t^2)          at a real step; dh_{t-1} = delta_t U^T
    dh_{t-1} = dh_t                       at a masked step
    dE/dW = sum_t x_t^T delta_t,  dE/dU = sum_t h_{t-1}^T delta_t,
    dE/db = sum_t delta_t

This is the reference the tests hold the Keras layers and their
`tf.GradientTape` gradients to.
"""

import numpy as np


def _as_mask(x: np.ndarray, mask) -> np.ndarray:
    if x.ndim != 3:
        raise ValueError(
            "`x` expected a 3D array (batch, time, features), got shape "
            f"{x.shape}."
        )
    if mask is None:
        return np.ones(x.shape[:2], dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"`mask` expected shape {x.shape[:2]} (batch, time), got "
            f"{mask.shape}."
        )
    return mask


def forward(
    x: np.ndarray,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    V: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The forward pass of the single-layer RNN classifier.

    Args:
        x: `(M, T, N)` padded inputs.
        W, U, b: the RNN's kernel, recurrent kernel and bias.
        V, B: the output layer's kernel `(L, K)` and bias `(K,)`.
        mask: `(M, T)` booleans, True at real steps. Default: all real.

    Returns:
        `(probabilities, states)`: `(M, K)` softmax outputs and `(M, T + 1,
        L)` states, `states[:, 0]` being h_0 = 0.
    """
    x = np.asarray(x)
    mask = _as_mask(x, mask)
    states = np.zeros((x.shape[0], x.shape[1] + 1, U.shape[0]), x.dtype)
    for t in range(x.shape[1]):
        h_prev = states[:, t]
        h = np.tanh(x[:, t] @ W + h_prev @ U + b)
        states[:, t + 1] = np.where(mask[:, t, None], h, h_prev)
    logits = states[:, -1] @ V + B
    logits = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True), states


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross entropy `E` of integer `labels` under `probabilities`."""
    rows = np.arange(len(labels))
    return float(-np.mean(np.log(probabilities[rows, labels])))


def bptt_gradients(
    x: np.ndarray,
    labels: np.ndarray,
    W: np.ndarray,
    U: np.ndarray,
    b: np.ndarray,
    V: np.ndarray,
    B: np.ndarray,
    mask: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The gradients of the mean cross entropy by backpropagation in time.

    Args:
        x: `(M, T, N)` padded inputs.
        labels: `(M,)` integer classes.
        W, U, b, V, B: the weights, as in `forward`.
        mask: `(M, T)` booleans, True at real steps. Default: all real.

    Returns:
        A dict with keys `"dE/dB"`, `"dE/dV"`, `"dE/dW"`, `"dE/dU"` and
        `"dE/db"`, each shaped like its weight.

    Example:

    ```python
    grads = bptt_gradients(x, labels, W, U, b, V, B, mask=mask)
    W -= learning_rate * grads["dE/dW"]
    ```
    """
    x = np.asarray(x)
    mask = _as_mask(x, mask)
    probabilities, states = forward(x, W, U, b, V, B, mask)
    batch = x.shape[0]
    error = probabilities.copy()
    error[np.arange(batch), labels] -= 1.0
    error /= batch
    grads = {
        "dE/dB": error.sum(axis=0),
        "dE/dV": states[:, -1].T @ error,
        "dE/dW": np.zeros_like(W),
        "dE/dU": np.zeros_like(U),
        "dE/db": np.zeros_like(b),
    }
    dh = error @ V.T
    for t in reversed(range(x.shape[1])):
        real = mask[:, t, None]
        delta = np.where(real, dh * (1.0 - states[:, t + 1] ** 2), 0.0)
        grads["dE/dW"] += x[:, t].T @ delta
        grads["dE/dU"] += states[:, t].T @ delta
        grads["dE/db"] += delta.sum(axis=0)
        dh = np.where(real, delta @ U.T, dh)
    return grads
