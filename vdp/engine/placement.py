"""Placing model actors on a Ray cluster: how many replicas per stage, checked, named, reused.

Planning (`plan_placement`)
    Every stage gets at least one replica. On GPUs each replica takes the stage's GPUs
    (``resources.stage_gpus[stage]``, else ``resources.gpus_per_stage``; fractions let models
    share a GPU). Stages listed in ``resources.replicas`` get exactly that many; the others
    grow one replica at a time, always at the current bottleneck (largest cost per frame /
    replicas), while GPUs are left and the bottleneck has fewer replicas than the job has
    chunks. Costs are the seconds per frame the stage's live actors measured in earlier jobs
    (when every stage has such a measurement), else each plan's relative ``cost`` hint. Without
    GPUs, unlisted stages get one replica (CPU actors share the node's cores).

Checking (`check_resources`)
    Before any actor is created, every shortfall is collected and raised in one
    `ResourceError`: a CUDA job on a cluster without GPUs, an actor larger than any node, more
    GPUs than are free (counting GPUs held by this job's own reusable actors and by idle vdp
    actors of other configurations, which are evicted when needed), an object-store budget
    larger than the object store.

Actors (`acquire_replicas`)
    Replica ``i`` of a stage is the named actor ``vdp:<stage>:<key>:<i>`` in namespace
    ``vdp`` (visible in the Ray dashboard). Actors are detached: they outlive the job and the
    driver that created them (a restarted gateway finds its models loaded), and an actor of
    that name is reused, model loaded, by every later job; a missing one is created and waited
    for until its model is loaded. `release_actors` kills them (an embedded local Ray instance
    takes them down when it stops).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from vdp.engine.actor import StageActor
from vdp.engine.cluster import NAMESPACE
from vdp.engine.plan import StagePlan
from vdp.engine.ray_errors import to_vdp_error
from vdp.errors import JobTimeoutError, ResourceError
from vdp.spec import ResourcesSpec

PROBE_TIMEOUT_S = 2.0  # an actor that does not answer `info` this fast is busy


@dataclass(frozen=True)
class ClusterView:
    """What the cluster offers, from Ray's view (fake GPUs from ``--num-gpus`` count too).

    Attributes:
        gpus_total: GPUs of all alive nodes.
        gpus_free: GPUs not held by any actor or task.
        node_gpus: GPUs of each alive node.
        node_cpus: CPUs of each alive node.
        object_store_bytes: Object-store capacity of all alive nodes.
    """

    gpus_total: float
    gpus_free: float
    node_gpus: tuple[float, ...]
    node_cpus: tuple[float, ...]
    object_store_bytes: float

    @classmethod
    def current(cls) -> "ClusterView":
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        free = ray.available_resources()
        return cls(
            gpus_total=sum(n["Resources"].get("GPU", 0.0) for n in nodes),
            gpus_free=float(free.get("GPU", 0.0)),
            node_gpus=tuple(n["Resources"].get("GPU", 0.0) for n in nodes),
            node_cpus=tuple(n["Resources"].get("CPU", 0.0) for n in nodes),
            object_store_bytes=sum(n["Resources"].get("object_store_memory", 0.0) for n in nodes),
        )


@dataclass
class StagePlacement:
    """Replicas of one stage.

    Attributes:
        plan: The stage recipe.
        replicas: Number of actors.
        num_gpus: GPUs per actor (0 on CPU).
        cost: Cost per frame used for planning.
        measured: `cost` is seconds per frame measured by live actors (else the plan's hint).
    """

    plan: StagePlan
    replicas: int
    num_gpus: float
    cost: float
    measured: bool = False

    def names(self) -> list[str]:
        return [self.plan.actor_name(i) for i in range(self.replicas)]

    def to_dict(self) -> dict[str, Any]:
        return {"replicas": self.replicas, "num_gpus": self.num_gpus, "cost_per_frame": round(self.cost, 6),
                "cost_measured": self.measured, "actors": self.names()}


@dataclass
class Replica:
    """One live actor of a stage, with the scheduler's bookkeeping."""

    stage: str
    index: int
    name: str
    handle: Any
    info: dict[str, Any] = field(default_factory=dict)
    active: int = 0  # chunks running on it now
    chunks: int = 0  # chunks it finished in this job
    probe: Any = None  # pending `info` call after a fault: no new chunk until it answers
    dead: bool = False  # Ray gave up restarting it

    @property
    def available(self) -> bool:
        return not self.dead and self.probe is None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.info.get("pid"), "node_id": self.info.get("node_id"),
                "device": self.info.get("device"), "gpu_ids": self.info.get("gpu_ids"),
                "chunks": self.chunks, "dead": self.dead}


def use_gpus(resources: ResourcesSpec, cluster: ClusterView) -> bool:
    """``cuda`` always, ``cpu`` never, ``auto`` when the cluster has GPUs."""
    if resources.device == "cpu":
        return False
    return resources.device == "cuda" or cluster.gpus_total > 0


def stage_gpus(plan: StagePlan, resources: ResourcesSpec) -> float:
    """GPUs one actor of `plan` takes on a GPU job."""
    return float(resources.stage_gpus.get(plan.name, resources.gpus_per_stage))


def measured_costs(plans: list[StagePlan]) -> dict[str, float]:
    """Seconds per frame measured by each stage's replica 0, for stages whose actor is alive,
    idle enough to answer, and has processed frames."""
    out = {}
    for plan in plans:
        info = _probe(plan.actor_name(0))
        if info and info.get("frames", 0) > 0 and info.get("busy_seconds", 0) > 0:
            out[plan.name] = info["busy_seconds"] / info["frames"]
    return out


def plan_placement(plans: list[StagePlan], resources: ResourcesSpec, *, use_gpu: bool,
                   gpus_available: float, max_replicas: int,
                   costs: dict[str, float] | None = None) -> list[StagePlacement]:
    """Replicas and GPUs per stage (see the module docstring).

    Args:
        plans: Stages in pipeline order.
        resources: The job's resources (fixed replicas, GPUs per stage).
        use_gpu: Actors take GPUs.
        gpus_available: GPUs this job may use (free + its own reusable + evictable).
        max_replicas: Most replicas worth having per stage (the number of chunks).
        costs: Measured seconds per frame per stage (used when every stage has one).

    Returns:
        One placement per plan, in order.
    """
    costs = costs or {}
    measured = bool(plans) and all(p.name in costs for p in plans)
    cost = {p.name: (costs[p.name] if measured else max(p.cost, 1e-9)) for p in plans}
    gpus = {p.name: stage_gpus(p, resources) if use_gpu else 0.0 for p in plans}
    reps = {p.name: resources.replicas.get(p.name, 1) for p in plans}
    if use_gpu:
        budget = gpus_available - sum(reps[n] * gpus[n] for n in reps)
        while plans:
            name = max(reps, key=lambda n: cost[n] / reps[n])
            if (name in resources.replicas or reps[name] >= max_replicas
                    or gpus[name] > budget + 1e-9):
                break
            reps[name] += 1
            budget -= gpus[name]
    return [StagePlacement(p, reps[p.name], gpus[p.name], cost[p.name], measured) for p in plans]


def check_resources(placements: list[StagePlacement], resources: ResourcesSpec,
                    cluster: ClusterView, *, use_gpu: bool, gpus_reusable: float,
                    gpus_evictable: float) -> None:
    """Raise one `ResourceError` listing every shortfall (see the module docstring).

    Args:
        placements: The planned replicas.
        resources: The job's resources.
        cluster: The cluster now.
        use_gpu: Actors take GPUs.
        gpus_reusable: GPUs held by actors of this plan that already exist (no new GPU needed).
        gpus_evictable: GPUs held by idle vdp actors of other configurations.
    """
    problems = []
    if resources.device == "cuda" and cluster.gpus_total == 0:
        problems.append("resources.device is 'cuda' but the cluster has no GPU")
    biggest = max(cluster.node_gpus, default=0.0)
    if use_gpu:
        for p in placements:
            if p.num_gpus > biggest:
                problems.append(f"stage {p.plan.name!r}: one actor takes {p.num_gpus:g} GPUs but "
                                f"the largest node has {biggest:g}")
        need = sum(p.replicas * p.num_gpus for p in placements) - gpus_reusable
        have = cluster.gpus_free + gpus_evictable
        if need > have + 1e-9:
            detail = ", ".join(f"{p.plan.name} {p.replicas} x {p.num_gpus:g}" for p in placements)
            problems.append(f"GPUs: the job needs {need:g} more GPUs ({detail}"
                            f"{f', {gpus_reusable:g} already held by its actors' if gpus_reusable else ''}"
                            f") but {cluster.gpus_free:g} of the cluster's {cluster.gpus_total:g} "
                            f"are free{f' and {gpus_evictable:g} held by idle vdp actors' if gpus_evictable else ''}")
    budget = resources.object_store_budget_mb
    if budget is not None and budget * 2**20 > cluster.object_store_bytes:
        problems.append(f"resources.object_store_budget_mb={budget:g} exceeds the cluster's object "
                        f"store ({cluster.object_store_bytes / 2**20:.0f} MB)")
    if problems:
        raise ResourceError("the cluster cannot run this job:\n  - " + "\n  - ".join(problems))


def acquire_replicas(plans: list[StagePlan], resources: ResourcesSpec, *, max_replicas: int,
                     threads: int | None, timeout_s: float,
                     cpu_turns: bool = False) -> tuple[dict[str, list[Replica]], list[StagePlacement], bool]:
    """Plan, check, then create (or reuse) every stage's replicas and wait for their models.

    Args:
        plans: Stages in pipeline order.
        resources: The job's resources.
        max_replicas: Most replicas worth having per stage (the number of chunks).
        threads: torch CPU threads inside each actor.
        timeout_s: Longest to wait for the actors' models to load.
        cpu_turns: On a CPU-only job, a node's actors take turns computing (`vdp.engine.cores`).

    Returns:
        Replicas per stage name, the placements, and whether actors take GPUs.

    Raises:
        ResourceError: The cluster cannot hold the planned actors (every shortfall listed).
        JobTimeoutError: An actor did not come up within `timeout_s`.
        VdpError: An actor failed while loading its model.
    """
    cluster = ClusterView.current()
    gpu = use_gpus(resources, cluster)
    own_all = _own_actors(plans, max_replicas)
    reusable_gpus = sum(info.get("resources", {}).get("GPU", 0.0) for info in own_all.values())
    idle_foreign = _idle_foreign_actors({n for n in own_all}, plans) if gpu else {}
    evictable = sum(i.get("resources", {}).get("GPU", 0.0) for i in idle_foreign.values())
    placements = plan_placement(plans, resources, use_gpu=gpu,
                                gpus_available=cluster.gpus_free + reusable_gpus + evictable,
                                max_replicas=max_replicas, costs=measured_costs(plans))
    wanted = {n for p in placements for n in p.names()}
    reused_gpus = sum(i.get("resources", {}).get("GPU", 0.0) for n, i in own_all.items() if n in wanted)
    check_resources(placements, resources, cluster, use_gpu=gpu, gpus_reusable=reused_gpus,
                    gpus_evictable=evictable)
    need = sum(p.replicas * p.num_gpus for p in placements) - reused_gpus
    if gpu and need > cluster.gpus_free + 1e-9:
        _evict(idle_foreign, need - cluster.gpus_free)
    replicas: dict[str, list[Replica]] = {}
    for p in placements:
        replicas[p.plan.name] = []
        for i in range(p.replicas):
            handle = StageActor.options(
                name=p.plan.actor_name(i), namespace=NAMESPACE, get_if_exists=True,
                lifetime="detached", num_gpus=p.num_gpus, num_cpus=0,
                scheduling_strategy="DEFAULT" if gpu else "SPREAD",
            ).remote(p.plan, threads, resources.actor_idle_s, cpu_turns and not gpu)
            replicas[p.plan.name].append(Replica(p.plan.name, i, p.plan.actor_name(i), handle))
    everyone = [r for rs in replicas.values() for r in rs]
    live = live_job_ids()
    if live is not None:  # state left by drivers that died mid-job is dropped before we start
        for r in everyone:
            r.handle.prune.remote(live)
    infos = _wait_loaded(everyone, timeout_s)
    for r, info in zip(everyone, infos):
        r.info = info
    return replicas, placements, gpu


def live_job_ids() -> list[str] | None:
    """Job ids of the cluster's drivers that are alive (None when Ray cannot tell)."""
    try:
        from ray._private.state import jobs

        return [j["JobID"] for j in jobs() if not j.get("IsDead")]
    except Exception:  # private API: absent or changed in another Ray version
        return None


def release_actors(prefix: str = "vdp:", wait_s: float = 20.0) -> list[str]:
    """Kill every named vdp actor whose name starts with `prefix` and wait for its GPUs to free.

    Returns:
        The names killed.
    """
    victims = {n: (_probe(n) or {}) for n in _named_vdp_actors() if n.startswith(prefix)}
    _evict(victims, float("inf"), wait_s=wait_s)
    return sorted(victims)


# -- internals --------------------------------------------------------------------------------

def _probe(name: str) -> dict | None:
    """`info()` of the named actor, or None if it does not exist or is busy/dead."""
    try:
        handle = ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
    try:
        return ray.get(handle.info.remote(), timeout=PROBE_TIMEOUT_S)
    except (GetTimeoutError, RayActorError, RayTaskError):
        return None


def _own_actors(plans: list[StagePlan], max_replicas: int) -> dict[str, dict]:
    """Existing actors that this job would reuse (any replica index), with their info."""
    names = _named_vdp_actors()
    prefixes = {f"vdp:{p.name}:{p.key}:" for p in plans}
    out = {}
    for name in names:
        if any(name.startswith(pfx) for pfx in prefixes):
            info = _probe(name)
            out[name] = info or {}
    return out


def _idle_foreign_actors(own: set[str], plans: list[StagePlan]) -> dict[str, dict]:
    """Actors of other configurations with no stream of a live driver open."""
    prefixes = {f"vdp:{p.name}:{p.key}:" for p in plans}
    live = live_job_ids()
    out = {}
    for name in _named_vdp_actors():
        if name in own or name.startswith(WRITER_PREFIX) or any(name.startswith(pfx) for pfx in prefixes):
            continue  # (writers hold no GPU: evicting one frees nothing)
        info = _probe(name)
        if info is None:
            continue
        streams = info.get("streams", [])
        if live is not None:
            streams = [s for s in streams if s.split(":", 1)[0] in live]
        if not streams:
            out[name] = info
    return out


#: Names of the nodes' writer actors (`vdp.engine.writer_actor`).
WRITER_PREFIX = "vdp:writer:"


def _named_vdp_actors() -> list[str]:
    return [e["name"] for e in ray.util.list_named_actors(all_namespaces=True)
            if e["namespace"] == NAMESPACE and e["name"].startswith("vdp:")]


def _evict(victims: dict[str, dict], gpus_needed: float, wait_s: float = 20.0) -> None:
    """Kill actors (most GPUs first) until `gpus_needed` GPUs are freed, then wait until Ray
    reports them free (it releases resources a moment after the kill)."""
    before = float(ray.available_resources().get("GPU", 0.0))
    freed = 0.0
    for name, info in sorted(victims.items(), key=lambda kv: -kv[1].get("resources", {}).get("GPU", 0.0)):
        if freed >= gpus_needed - 1e-9:
            break
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        except ValueError:
            continue
        freed += info.get("resources", {}).get("GPU", 0.0)
    deadline = time.monotonic() + wait_s
    while freed and time.monotonic() < deadline:
        if float(ray.available_resources().get("GPU", 0.0)) >= before + freed - 1e-9:
            return
        time.sleep(0.1)


def _wait_loaded(replicas: list[Replica], timeout_s: float) -> list[dict]:
    refs = [r.handle.info.remote() for r in replicas]
    deadline = time.monotonic() + timeout_s
    infos: list[dict | None] = [None] * len(refs)
    pending = dict(enumerate(refs))
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            names = [replicas[i].name for i in pending]
            raise JobTimeoutError(f"actors {names} did not load their models within {timeout_s:.0f} s "
                                  f"(waiting for resources, or loading is stuck)")
        ready, _ = ray.wait(list(pending.values()), num_returns=len(pending), timeout=min(left, 1.0))
        for i, ref in list(pending.items()):
            if ref in ready:
                infos[i] = _get_info(ref, replicas[i].name)
                del pending[i]
    return infos  # type: ignore[return-value]


def _get_info(ref: Any, name: str) -> dict:
    try:
        return ray.get(ref)
    except (RayTaskError, RayActorError) as exc:
        raise to_vdp_error(exc, f"loading the model of actor {name}") from None
