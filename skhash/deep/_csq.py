"""CSQ: central similarity quantization."""

from numbers import Real

import numpy as np
from sklearn.utils import check_random_state

from .._supervision import indicator_matrix
from ..base import SupervisedHasherMixin
from ..utils._param_validation import Interval
from ._centres import class_codes
from ._engine import BaseDeepHasher


def sample_centres(labels, centres, random_bits):
    """Each sample's hash centre: its class's centre, or for several labels
    the sign of the mean of their centres, with ``random_bits`` where the
    mean is zero (and for a sample without any label)."""
    total = labels @ centres
    return np.where(total == 0, random_bits, np.sign(total))


class CSQHasher(SupervisedHasherMixin, BaseDeepHasher):
    """Central similarity quantization: each code is pulled to a hash centre.

    Every class gets a hash centre in {-1, +1}^n_bits, the centres far apart
    (rows of a Hadamard matrix and of its negation); the network's outputs
    ``h = tanh(z)`` are trained towards their sample's centre by a binary
    cross-entropy per bit, plus a quantization term. A sample with several
    labels is pulled to the binarised centroid of its labels' centres. The
    code is ``sign(z)``.

    Parameters
    ----------
    n_bits : int, default=32
        Length of the codes.
    quantization : float, default=0.05
        Weight of the quantization term ``mean((|h| - 1) ** 2)`` (``lambda``;
        the authors' code: 0.05).
    backbone, hidden_layer_sizes, input_shape, max_epochs, batch_size, lr, \
optimizer, device, callbacks, verbose, random_state
        As in :class:`HashNetHasher`; ``random_state`` also draws the random
        centres and bits, where there are any.

    Attributes
    ----------
    centres_ : ndarray of shape (n_labels, n_bits)
        The hash centre (in {-1, +1}) of each class, in the order of
        first appearance in ``y`` (the columns of an indicator ``y``).
    net_ : skorch.NeuralNet
        The trained network and its training history.
    device_ : str
        Device used for training.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    DPNHasher : A hinge loss towards per-class codes.
    OrthoHashHasher : Cosine logits against per-class codes.

    Notes
    -----
    Centres: with ``n_bits`` a power of two, the first rows of the Hadamard
    matrix ``H`` (up to ``n_bits`` classes, pairwise distance
    ``n_bits / 2``), then of ``-H`` (up to ``2 * n_bits``); otherwise
    balanced random codes (half the bits +1), as in the authors' code, which
    samples such Bernoulli centres when the Hadamard ones run out; skhash
    keeps the best of 20 draws by minimum pairwise distance where the
    authors redraw until a distance threshold is met. Multi-label centres as
    in the authors' code: the sign of the centroid, a zero bit taken from one
    random code drawn once.

    Paper and code differ in the quantization term: the paper writes it as a
    smooth log-cosh penalty on ``|h| - 1``, the authors' code as the mean of
    ``(|h| - 1) ** 2`` with weight 0.05 (DeepHash-pytorch: ``1e-4``). skhash
    follows the code. The authors' training script also adds a pairwise
    (HashNet-like) term with weight 0.2 that the paper does not describe;
    skhash leaves it out. Their hash head is a three-layer MLP on the
    backbone's features; here the backbone provides the hidden layers and the
    head is one linear layer, as for the other deep hashers. The
    cross-entropy on ``(tanh(z) + 1) / 2`` is computed as the equal one on
    the logits ``2 z``.

    References
    ----------
    .. [1] L. Yuan, T. Wang, X. Zhang, F. E. H. Tay, Z. Jie, W. Liu and
       J. Feng, "Central similarity quantization for efficient image and
       video retrieval", CVPR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skhash import CSQHasher
    >>> X, y = load_digits(return_X_y=True)
    >>> hasher = CSQHasher(n_bits=16, max_epochs=2, random_state=0)
    >>> hasher.fit(X / 16, y).transform(X / 16).shape
    (1797, 2)
    >>> hasher.centres_.shape
    (10, 16)
    """

    _parameter_constraints = {
        **BaseDeepHasher._parameter_constraints,
        "quantization": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_bits=32,
        *,
        quantization=0.05,
        backbone="auto",
        hidden_layer_sizes=(256,),
        input_shape=None,
        max_epochs=10,
        batch_size=64,
        lr=1e-3,
        optimizer="adam",
        device="auto",
        callbacks=None,
        verbose=0,
        random_state=None,
    ):
        self.n_bits = n_bits
        self.quantization = quantization
        self.backbone = backbone
        self.hidden_layer_sizes = hidden_layer_sizes
        self.input_shape = input_shape
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.device = device
        self.callbacks = callbacks
        self.verbose = verbose
        self.random_state = random_state

    def _targets(self, X, y):
        labels = indicator_matrix(y)
        rng = check_random_state(self.random_state)
        self.centres_ = class_codes(labels.shape[1], self.n_bits, "hadamard", rng)
        random_bits = np.where(rng.rand(self.n_bits) < 0.5, -1.0, 1.0)
        return sample_centres(labels, self.centres_, random_bits).astype(np.float32)

    def _criterion(self):
        from ._pointwise import CentralSimilarityLoss

        return CentralSimilarityLoss(quantization=self.quantization)

    def _outputs_to_projection(self, z):
        return z  # sign(tanh(z))
