"""BigGAN models (generator, discriminator) and their spectral-norm layers."""

from .biggan import Discriminator, Generator, GeneratorBlock
from .config import BigGANConfig
from .init import orthogonal_init
from .spectral import freeze_sn, unfreeze_sn

__all__ = [
    "BigGANConfig",
    "Discriminator",
    "Generator",
    "GeneratorBlock",
    "freeze_sn",
    "orthogonal_init",
    "unfreeze_sn",
]
