"""WeaveNet (ALGORITHMS.md §3.4–3.7): model, losses, binarisation, training."""

from crossmatch.twosided.weavenet.binarize import binarize
from crossmatch.twosided.weavenet.losses import LossWeights, total_loss
from crossmatch.twosided.weavenet.model import WeaveNet, WeaveNetConfig, dual_softmax

__all__ = ["LossWeights", "WeaveNet", "WeaveNetConfig", "binarize", "dual_softmax", "total_loss"]
