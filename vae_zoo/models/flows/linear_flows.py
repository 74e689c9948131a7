"""Planar and radial flows (Rezende & Mohamed, 2015, "Variational Inference with Normalizing
Flows", section 4.1): maps z -> z' with a log-det-Jacobian in O(d), their parameters given per
example by the encoder."""

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors

# Guards only a division by an exactly zero ||w||^2 or a square root at r = 0 (no gradient there).
_TINY = 1e-12


def planar(z, parameters):
    """f(z) = z + u_hat tanh(w.z + b) and log |det df/dz| = log |1 + u_hat.psi(z)|, with
    psi(z) = tanh'(w.z + b) w (the paper's eq. 10-12).

    u_hat = u + (m(w.u) - w.u) w / ||w||^2, m(a) = -1 + softplus(a), is the paper's appendix A
    constraint: w.u_hat = m(w.u) > -1, so 1 + u_hat.psi = 1 + tanh'(.) m > 0 (tanh' in (0, 1])
    and f is invertible. The log-det is computed as log((1 - t^2) softplus(w.u) + t^2),
    t = tanh(w.z + b), the same number written as a sum of two terms >= 0: 1 + (1 - t^2) m
    rounds to 0 when m is within float precision of -1 (w.u = -50 gave log_det = -inf).

    Args:
        z: `(..., d)`.
        parameters: `(..., 2 d + 1)`, u, w and b, broadcasting against z's leading axes.

    Returns:
        `(f(z), log_det)`, `(..., d)` and `(...)`.
    """
    d = z.shape[-1]
    u, w, b = parameters[..., :d], parameters[..., d:2 * d], parameters[..., 2 * d:]
    wu = tf.reduce_sum(w * u, axis=-1, keepdims=True)
    softplus_wu = tf.nn.softplus(wu)
    u_hat = u + (softplus_wu - 1.0 - wu) * w / tf.maximum(
        tf.reduce_sum(w * w, axis=-1, keepdims=True), _TINY)
    h = tf.tanh(tf.reduce_sum(w * z, axis=-1, keepdims=True) + b)
    log_det = tf.math.log((1.0 - h * h) * softplus_wu + h * h)[..., 0]
    return z + u_hat * h, log_det


def radial(z, parameters):
    """f(z) = z + beta h(alpha, r) (z - z_ref), h = 1 / (alpha + r), r = ||z - z_ref||, and

        log |det df/dz| = (d - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)
                        = (d - 1) log1p(beta h) + log1p(beta alpha h^2)

    (the paper's eq. 14; h' = -h^2, so h + h' r = alpha h^2). alpha = softplus(a) > 0 and
    beta = -alpha + softplus(b) > -alpha, the appendix A condition for an invertible f.

    Args:
        z: `(..., d)`.
        parameters: `(..., d + 2)`, z_ref, a and b, broadcasting against z's leading axes.

    Returns:
        `(f(z), log_det)`, `(..., d)` and `(...)`.
    """
    d = z.shape[-1]
    z_ref, a, b = parameters[..., :d], parameters[..., d:d + 1], parameters[..., d + 1:]
    alpha = tf.nn.softplus(a)
    beta = tf.nn.softplus(b) - alpha
    diff = z - z_ref
    r = tf.sqrt(tf.reduce_sum(diff * diff, axis=-1, keepdims=True) + _TINY)
    h = 1.0 / (alpha + r)
    log_det = (d - 1) * tf.math.log1p(beta * h) + tf.math.log1p(beta * alpha * h * h)
    return z + beta * h * diff, log_det[..., 0]


FLOWS = {"planar": planar, "radial": radial}


def parameter_count(kind, latent_dim):
    """Numbers one flow of `kind` takes for a `latent_dim`-dimensional z."""
    return {"planar": 2 * latent_dim + 1, "radial": latent_dim + 2}[kind]


class LinearFlowChain(tfb.Bijector):
    """The flows `kinds` (`"planar"`, `"radial"`) applied in order, as a TFP bijector on vectors,
    so that q(z_K|x) is a `TransformedDistribution` of q_0 like IAF's.

    Only the forward map and its log-det-Jacobian are defined: planar and radial flows have no
    closed-form inverse, so `log_prob` of an arbitrary z is not available (a flow's own draws are
    scored by `experimental_sample_and_log_prob`, or the model's `log_importance_weights`).

    Args:
        kinds: sequence of str. The flows, first applied first.
        flow_parameters: `(..., sum of their parameter counts)`, concatenated in that order.
    """

    def __init__(self, kinds, flow_parameters, name="linear_flows"):
        parameters = dict(locals())
        self._kinds = tuple(kinds)
        self._flow_parameters = flow_parameters
        super().__init__(forward_min_event_ndims=1, parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype):
        return {"flow_parameters": tfp.util.ParameterProperties(event_ndims=1)}

    def apply(self, z):
        """`(f_K(...f_1(z)), sum_k log_det_k)`."""
        log_det = tf.zeros(tf.shape(z)[:-1], z.dtype)
        offset = 0
        for kind in self._kinds:
            size = parameter_count(kind, z.shape[-1])
            z, step = FLOWS[kind](z, self._flow_parameters[..., offset:offset + size])
            log_det += step
            offset += size
        return z, log_det

    def _forward(self, z):
        return self.apply(z)[0]

    def _forward_log_det_jacobian(self, z):
        return self.apply(z)[1]
