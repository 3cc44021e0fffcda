"""The vdp command line."""
