"""ReplicaPool: which replica of each stage runs the next chunk, and which are out after a fault.

A starting chunk takes, for every stage, the available replica running the fewest chunks, so
a replica that finishes early (a fast GPU) pulls the next chunk and a slow one ends up with
fewer. After a fault the replicas of the lost run are suspects: they get no new chunk until
they answer an `info` probe (Ray refuses calls while an actor restarts); a replica Ray gave up
on is dead, and a stage with no live replica left fails the job.
"""
from __future__ import annotations

import time

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

from vdp.engine.placement import Replica
from vdp.engine.plan import StagePlan
from vdp.errors import StageError


class ReplicaPool:
    """The replicas of a job's stages, with their load and health.

    Args:
        plans: Stages in pipeline order.
        replicas: Live replicas per stage name (`vdp.engine.placement.acquire_replicas`).
    """

    def __init__(self, plans: list[StagePlan], replicas: dict[str, list[Replica]]) -> None:
        missing = [p.name for p in plans if not replicas.get(p.name)]
        if missing:
            raise ValueError(f"no replicas for stages {missing}")
        self.plans = plans
        self.replicas = replicas
        #: Most chunks that can run at once (the largest replica count of any stage).
        self.concurrency = max(len(replicas[p.name]) for p in plans)

    def take(self) -> list[Replica] | None:
        """Per stage, the available replica running the fewest chunks, now counted as running
        one more (None: every replica of some stage is busy restarting; wait).

        Raises:
            StageError: Every replica of a stage is dead.
        """
        reps = []
        for p in self.plans:
            live = [r for r in self.replicas[p.name] if not r.dead]
            if not live:
                raise StageError(f"stage {p.name!r}: every replica died and Ray stopped restarting them")
            free = [r for r in live if r.available]
            if not free:
                return None
            reps.append(min(free, key=lambda r: (r.active, r.index)))
        for r in reps:
            r.active += 1
        return reps

    def release(self, reps: list[Replica], *, finished: bool) -> None:
        """A chunk run on `reps` ended: done (`finished`), or lost, which makes them suspects."""
        for r in reps:
            r.active -= 1
            if finished:
                r.chunks += 1
            else:
                self.suspect(r)

    def suspect(self, rep: Replica) -> None:
        """Probe `rep`; it gets no chunk until the probe answers."""
        if rep.probe is None and not rep.dead:
            rep.probe = rep.handle.info.remote()

    def check_probes(self) -> None:
        """Replicas whose probe answered are available again (restarted: new pid)."""
        for rep in self._probing():
            ready, _ = ray.wait([rep.probe], timeout=0)
            if not ready:
                continue
            try:
                rep.info = ray.get(rep.probe)
                rep.probe = None
            except ActorDiedError:
                rep.dead, rep.probe = True, None
            except (ActorUnavailableError, RayActorError, RayTaskError):
                rep.probe = None  # still restarting: ask again
                self.suspect(rep)

    def wait_probes(self, timeout_s: float) -> None:
        """Block until a probe answers, or `timeout_s` passes."""
        probes = [r.probe for r in self._probing()]
        if probes:
            ray.wait(probes, num_returns=1, timeout=timeout_s)
        else:
            time.sleep(timeout_s)

    def _probing(self) -> list[Replica]:
        return [r for rs in self.replicas.values() for r in rs if r.probe is not None]
