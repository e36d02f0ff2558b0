"""The paper's three SqueezeNet variants, in its order: SDC-SN (fine-tuned as is), SDC-SN-ELF (higher
learning rates on the shallow layers) and SDC-SN-ELF-MRF (a two-branch multi-receptive-field head)."""
VARIANTS = ("SDC-SN", "SDC-SN-ELF", "SDC-SN-ELF-MRF")
