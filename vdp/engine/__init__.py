"""Execution engine: chunk plans, runners (in-process or Ray actors), merge, ledger and resume.

`vdp.engine.job.run_job` is the entry point; the modules beside this one are its parts:
``chunks`` (frame ranges), ``placement`` (replicas and actors), ``scheduler`` (chunks on
replicas, faults), ``assembly`` + ``merge`` (in-order seamless merge, spilling), ``ledger``
(resume), ``chain`` (the stage-chain protocol) with its transports ``local`` (in-process) and
``chunk_run`` (Ray).
"""
from vdp.engine.chunks import Chunk, plan_chunks
from vdp.engine.local import LocalRunner
from vdp.engine.merge import ChunkMerger, merge_policies
from vdp.engine.plan import StagePlan
from vdp.engine.progress import ProgressTracker, StageProgress

__all__ = ["Chunk", "ChunkMerger", "LocalRunner", "ProgressTracker", "StagePlan", "StageProgress",
           "merge_policies", "plan_chunks"]
