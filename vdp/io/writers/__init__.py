"""Incremental, atomic writers: data arrives batch by batch, the output appears only on close.

Every writer is a context manager: leaving the ``with`` block normally publishes the output
under its final name, an exception (or `abort()`) removes everything it wrote.
"""
from vdp.io.writers.arrays import NpyWriter, NpzWriter
from vdp.io.writers.mp4 import CompositeMp4Writer, Mp4Writer
from vdp.io.writers.png import Png16SequenceWriter, PngRgbaSequenceWriter, encode_in_idle_time
from vdp.io.writers.webm import WebmAlphaWriter, read_webm_alpha, read_webm_rgba

__all__ = ["CompositeMp4Writer", "Mp4Writer", "NpyWriter", "NpzWriter", "Png16SequenceWriter",
           "PngRgbaSequenceWriter", "WebmAlphaWriter", "encode_in_idle_time", "read_webm_alpha",
           "read_webm_rgba"]
