"""SSM temporal refiner: a small residual model on top of a frozen depth teacher."""
from vdp.models.refiner.confidence import derive_confidence
from vdp.models.refiner.config import PRESETS, RefinerConfig
from vdp.models.refiner.load import (SHIPPED_CHECKPOINT, SHIPPED_METADATA, load_refiner,
                                     save_refiner)
from vdp.models.refiner.model import Refiner, RefinerOutput
from vdp.models.refiner.ssm import BiSSM, SelectiveSSM, selective_scan, selective_scan_reference

__all__ = ["PRESETS", "SHIPPED_CHECKPOINT", "SHIPPED_METADATA", "BiSSM", "Refiner",
           "RefinerConfig", "RefinerOutput", "SelectiveSSM", "derive_confidence", "load_refiner",
           "save_refiner", "selective_scan", "selective_scan_reference"]
