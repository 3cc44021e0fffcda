"""Seed ranges of the procedural data splits (disjoint, so held-out means never trained on)."""

#: Training clips use seeds TRAIN_SEED_BASE + i (i < pool size, at most 100 000).
TRAIN_SEED_BASE = 1_000
#: Validation clips (baseline parameter choice) use VAL_SEED_BASE + i.
VAL_SEED_BASE = 500_000
#: Test clips (the reported table) use TEST_SEED_BASE + i.
TEST_SEED_BASE = 900_000
#: Teacher-simulator seeds of evaluation clips are offset by this from the clip seed.
TEACHER_SEED_OFFSET = 7_000_000

#: Teacher families (`vdp.refiner.families`) a training run may use.
TRAIN_FAMILIES = ("classic", "vda_windows", "ar1_scale", "shimmer")
#: Teacher families never used in training: evaluation only.
HELD_OUT_FAMILIES = ("drift", "moving_objects", "camera_motion")
#: Family f (index in TRAIN_FAMILIES + HELD_OUT_FAMILIES, classic = 0) offsets evaluation
#: teacher seeds by f * FAMILY_SEED_STEP more, so families do not share noise draws.
FAMILY_SEED_STEP = 10_000_000
