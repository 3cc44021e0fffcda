"""The catalog of stages and output kinds: what each needs, produces and costs, how its
layers merge across chunks, and where its output goes. Spec validation, stage planning, the
chunk merge, the CLI and the gateway all read it; adding a stage or an output kind is one
new module plus one entry (`register_stage` / `register_output`, or `vdp.catalog.builtin`).
"""
from vdp.catalog.entries import SOURCE_LAYERS, MergePolicy, OutputEntry, StageEntry
from vdp.catalog.registry import (chain_problems, merge_policies, output, outputs, producers,
                                  register_output, register_stage, stage, stages, unregister)

__all__ = ["SOURCE_LAYERS", "MergePolicy", "OutputEntry", "StageEntry", "chain_problems",
           "merge_policies", "output", "outputs", "producers", "register_output",
           "register_stage", "stage", "stages", "unregister"]
