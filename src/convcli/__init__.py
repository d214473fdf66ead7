"""convcli: see what a convolution does to an image, and get CNN arithmetic exactly right."""

__version__ = "0.1.0"
