"""Which multi-worker cluster this process belongs to, and the strategy that trains across it.

A worker learns its peers from `TF_CONFIG` (set by `--workers N`, the Kubernetes recipes, Kubeflow's
TFJob, or by hand) or, inside an `srun` step, from Slurm's SLURM_* variables. `TF_CONFIG` wins when
both are present. `python -m vae_zoo.distribute.cluster` prints what this process resolves to (the
sbatch recipe's check before training).
"""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import tensorflow as tf

from vae_zoo.errors import UserInputError

JOBS = ("chief", "worker")  # what MultiWorkerMirroredStrategy trains with; worker 0 is chief if no chief job
TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 0}}'
)
SLURM_PORT_BASE = 8888  # SlurmClusterResolver's default; VAE_ZOO_SLURM_PORT_BASE overrides it
SLURM_STEP_VARIABLES = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
                        "SLURM_STEP_TASKS_PER_NODE")
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


@dataclasses.dataclass(frozen=True)
class ClusterInfo:
    """This process's place in a multi-worker cluster.

    Attributes:
        jobs: dict. Job name ("chief", "worker") to the tuple of its "host:port" addresses.
        task_type: str. This process's job.
        task_index: int. This process's index within its job.
        source: str. Where the cluster came from: "TF_CONFIG" or "Slurm".
    """

    jobs: dict
    task_type: str
    task_index: int
    source: str

    @property
    def addresses(self):
        """Every worker's address, chief first: the order of `rank`."""
        return tuple(address for job in JOBS for address in self.jobs.get(job, ()))

    @property
    def num_workers(self):
        return len(self.addresses)

    @property
    def rank(self):
        return self.addresses.index(self.address)

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]

    @property
    def is_chief(self):
        """The chief writes the run folder: the `chief` task, or worker 0 when there is none."""
        return self.rank == 0


def make_tf_config(addresses, index):
    """The TF_CONFIG string of worker `index` in a cluster of `addresses` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def parse_tf_config(text):
    """Validates a TF_CONFIG string into a `ClusterInfo`.

    TensorFlow itself accepts most mistakes here and then waits forever for a peer that does not
    exist, or fails deep inside strategy creation; checking first turns them into one clear line.

    Args:
        text: str. The TF_CONFIG value.

    Returns:
        A `ClusterInfo`, or None when `text` is empty or `{}` (TensorFlow's "no cluster").

    Raises:
        UserInputError: naming what is wrong and showing the expected form.
    """
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        _bad_tf_config(f"is not valid JSON ({e.msg} at character {e.pos})")
    if not isinstance(config, dict):
        _bad_tf_config(f"must be a JSON object, got {type(config).__name__}")
    if not config:
        return None
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        _bad_tf_config('has no "cluster" object with a "worker" list')
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        _bad_tf_config(f"has job(s) {', '.join(unknown)} in its cluster; multi-worker training uses "
                       f'only "worker" and at most one "chief"')
    jobs = {}
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            _bad_tf_config(f'cluster "{job}" must be a non-empty list of "host:port" strings, '
                           f"got {addresses!r}")
        for address in addresses:
            _check_address(address, job)
        jobs[job] = tuple(addresses)
    if len(jobs.get("chief", ())) > 1:
        _bad_tf_config(f'lists {len(jobs["chief"])} chiefs; a cluster has at most one "chief"')
    every = [address for job in JOBS for address in jobs.get(job, ())]
    duplicates = sorted({address for address in every if every.count(address) > 1})
    if duplicates:
        _bad_tf_config(f"lists {', '.join(duplicates)} more than once; every task needs its own "
                       f"host:port")

    task = config.get("task")
    if not isinstance(task, dict):
        _bad_tf_config('has no "task" object saying which of the cluster\'s tasks this process is, '
                       'e.g. "task": {"type": "worker", "index": 0}')
    task_type, index = task.get("type"), task.get("index")
    if task_type not in jobs:
        _bad_tf_config(f'task type {task_type!r} is not a job of its cluster ({", ".join(jobs)})')
    if not isinstance(index, int) or isinstance(index, bool):
        _bad_tf_config(f"task index must be an integer, got {index!r}")
    if not 0 <= index < len(jobs[task_type]):
        _bad_tf_config(f'task index {index} is out of range: the cluster has {len(jobs[task_type])} '
                       f'"{task_type}" task(s), indexes 0 to {len(jobs[task_type]) - 1}')
    return ClusterInfo(jobs=jobs, task_type=task_type, task_index=index, source="TF_CONFIG")


def _check_address(address, job):
    match = _ADDRESS.match(address) if isinstance(address, str) else None
    if not match or not 1 <= int(match.group(2)) <= 65535:
        _bad_tf_config(f'cluster "{job}" has {address!r}, which is not a "host:port" address '
                       f"with a port from 1 to 65535")


def _bad_tf_config(problem):
    raise UserInputError(f"TF_CONFIG {problem}. Set it like {TF_CONFIG_EXAMPLE} "
                         f"(or unset it for a single-process run)")


def in_slurm_step():
    """True inside an `srun` step, where SlurmClusterResolver finds everything it reads."""
    return all(name in os.environ for name in SLURM_STEP_VARIABLES)


def wants_multi_worker():
    """Whether `--strategy auto` should train multi-worker: TF_CONFIG with more than one worker, or
    an `srun` step of more than one task. Reads only the environment (no side effects, no TF ops).
    """
    info = parse_tf_config(os.environ.get("TF_CONFIG", ""))
    if info is not None:
        return info.num_workers > 1
    return in_slurm_step() and int(os.environ["SLURM_STEP_NUM_TASKS"]) > 1


def cluster_resolver():
    """TFConfigClusterResolver for a valid TF_CONFIG, else `slurm_resolver()` inside an `srun`
    step, else None (no cluster).
    """
    if parse_tf_config(os.environ.get("TF_CONFIG", "")) is not None:
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if in_slurm_step():
        return slurm_resolver()
    return None


def current_cluster():
    """The `ClusterInfo` of this process, or None when it is not part of a cluster."""
    info = parse_tf_config(os.environ.get("TF_CONFIG", ""))
    if info is not None or not in_slurm_step():
        return info
    resolver = slurm_resolver()
    spec = resolver.cluster_spec().as_dict()
    return ClusterInfo(jobs={job: tuple(addresses) for job, addresses in spec.items()},
                       task_type=resolver.task_type, task_index=resolver.task_id, source="Slurm")


def is_chief():
    """True for the process that writes the run folder: the chief, or the only process."""
    info = current_cluster()
    return info is None or info.is_chief


class _SlurmResolver(tf.distribute.cluster_resolver.SlurmClusterResolver):
    """SlurmClusterResolver that reports the GPUs this task really has.

    MultiWorkerMirroredStrategy builds its replicas from `num_accelerators()`, which upstream
    returns as `gpus_per_task` even on a CPU node: there it would place every replica on a
    "GPU:0" that does not exist (measured). `gpus_per_task` must still be >= 1 for
    `cluster_spec()` to list the tasks, so the real count is kept apart.
    """

    def __init__(self, local_gpus, **kwargs):
        super().__init__(**kwargs)
        self._local_gpus = local_gpus

    def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
        return {"GPU": self._local_gpus}


def slurm_resolver(port_base=None):
    """A SlurmClusterResolver for this `srun` step that works on CPU nodes and on GPU nodes.

    Upstream defaults call `nvidia-smi` (FileNotFoundError on CPU nodes) and `gpus_per_node=0`
    raises, so the GPUs are counted here: CUDA_VISIBLE_DEVICES when Slurm set it (each task keeps
    the GPUs Slurm gave it), else `nvidia-smi` (the node's GPUs are split evenly between its tasks
    through CUDA_VISIBLE_DEVICES), else none.

    Args:
        port_base: int. First port on each node (a node's tasks take consecutive ports); default
            VAE_ZOO_SLURM_PORT_BASE, else 8888. Jobs that share a node need different bases.

    Raises:
        UserInputError: outside an `srun` step, or with fewer GPUs on a node than tasks.
    """
    if not in_slurm_step():
        missing = [name for name in SLURM_STEP_VARIABLES if name not in os.environ]
        raise UserInputError(f"not inside a Slurm job step ({', '.join(missing)} unset): start each "
                             f"worker with srun, e.g. `srun python train.py ...` in the sbatch script")
    if port_base is None:
        port_base = int(os.environ.get("VAE_ZOO_SLURM_PORT_BASE", SLURM_PORT_BASE))
    tasks_per_node = _max_tasks_per_node(os.environ["SLURM_STEP_TASKS_PER_NODE"])
    visible = _visible_gpus()
    if visible is not None:  # Slurm (or the user) already chose this task's GPUs: keep them
        gpus_per_node, gpus_per_task, local_gpus, auto_set_gpu = tasks_per_node, 1, visible, False
    else:
        node_gpus = _nvidia_smi_gpus()
        if node_gpus and node_gpus < tasks_per_node:
            raise UserInputError(f"{tasks_per_node} tasks per node but {node_gpus} GPU(s) per node: "
                                 f"run at most one task per GPU (e.g. --ntasks-per-node=1)")
        if node_gpus:
            gpus_per_node, gpus_per_task = node_gpus, node_gpus // tasks_per_node
            local_gpus, auto_set_gpu = gpus_per_task, True
        else:  # CPU node: the resolver still needs one "GPU" per task to list the tasks
            gpus_per_node, gpus_per_task, local_gpus, auto_set_gpu = tasks_per_node, 1, 0, False
    return _SlurmResolver(local_gpus, port_base=port_base, gpus_per_node=gpus_per_node,
                          gpus_per_task=gpus_per_task, auto_set_gpu=auto_set_gpu)


def _max_tasks_per_node(tasks_per_node):
    """The largest count in a SLURM_STEP_TASKS_PER_NODE value such as "2(x3),1"."""
    counts = re.findall(r"(\d+)(?:\(x\d+\))?(?:,|$)", tasks_per_node)
    if not counts:
        raise UserInputError(f"cannot read SLURM_STEP_TASKS_PER_NODE={tasks_per_node!r}")
    return max(int(count) for count in counts)


def _visible_gpus():
    """How many GPUs CUDA_VISIBLE_DEVICES lists, or None when it is unset."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    devices = [d for d in value.split(",") if d.strip()]
    return 0 if devices in ([], ["-1"], ["NoDevFiles"]) else len(devices)


def _nvidia_smi_gpus():
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        output = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True,
                                timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in output.splitlines())


def multi_worker_strategy(resolver=None):
    """MultiWorkerMirroredStrategy over the cluster this process belongs to.

    Call it FIRST, before any other TensorFlow op, tensor, dataset or `tf.config` device setup:
    collective ops must be configured at program startup, and later the strategy raises
    "Collective ops must be configured at program startup". It blocks until every worker of the
    cluster has started (TensorFlow waits forever), and while it waits a SIGTERM neither ends nor
    stops the process: whatever starts the workers must bound them and stop them with SIGKILL
    (train.py does so itself: `training.trainer.cluster_watchdog`).

    TensorFlow's coordination service installs a C handler for SIGTERM while the strategy is
    created (tsl's `SigtermNotifier`, which only records the signal for
    `PreemptionCheckpointHandler`; `signal.getsignal` does not show it): left there, every later
    SIGTERM would be swallowed (measured). The handler that was there before is put back, so
    outside training SIGTERM ends the process as usual, and during training
    `training.callbacks.GracefulInterrupt` stops every worker at the same step.

    On CPUs the all-reduce is RING (NCCL is GPU only); with GPUs, NCCL.

    Args:
        resolver: a ClusterResolver; default `cluster_resolver()`.

    Raises:
        UserInputError: when this process belongs to no cluster, or TF_CONFIG is malformed.
    """
    resolver = resolver or cluster_resolver()
    if resolver is None:
        raise UserInputError("multi-worker training needs a cluster: set TF_CONFIG on every worker, "
                             "run under `srun`, or try it on this machine with --workers N")
    resolver.cluster_spec()  # under Slurm this sets CUDA_VISIBLE_DEVICES: before TF looks at GPUs
    implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL
                      if tf.config.list_physical_devices("GPU")
                      else tf.distribute.experimental.CommunicationImplementation.RING)
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=tf.distribute.experimental.CommunicationOptions(
                implementation=implementation),
        )
    except RuntimeError as e:
        if "program startup" not in str(e):
            raise
        raise RuntimeError(f"{e}: create the strategy (vae_zoo.distribute.multi_worker_strategy) "
                           f"before any other TensorFlow op runs in this process") from e
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_DFL if sigterm is None else sigterm)
    return strategy


def strategy_for(name):
    """The strategy for `train.strategy`: `multi_worker`, or `auto` when `wants_multi_worker()`,
    gives `multi_worker_strategy()`; every other name goes to `training.strategy.resolve_strategy`.

    Like `multi_worker_strategy`, call it before any other TensorFlow op.
    """
    if name == "multi_worker" or (name == "auto" and wants_multi_worker()):
        return multi_worker_strategy()
    from vae_zoo.training.strategy import resolve_strategy

    return resolve_strategy(name)


def write_dir(real_dir, cluster=None):
    """Where this process writes run files: `real_dir` on the chief, a new temporary folder on the
    other workers.

    Every worker must run the same saves (saving a distributed model runs collective ops), but only
    the chief's files are kept, so workers do not overwrite each other's files in a shared folder.
    Remove the folder with `remove_write_dir` when training ends. Reading (resuming) always uses
    `real_dir`.

    Args:
        real_dir: str or Path. The run folder.
        cluster: a `ClusterInfo`; default `current_cluster()`.
    """
    cluster = cluster if cluster is not None else current_cluster()
    if cluster is None or cluster.is_chief:
        return Path(real_dir)
    return Path(tempfile.mkdtemp(prefix=f"vae_zoo_worker{cluster.rank}_"))


def remove_write_dir(path, real_dir):
    """Deletes a worker's temporary `write_dir`; never the real run folder."""
    if Path(path).resolve() != Path(real_dir).resolve():
        shutil.rmtree(path, ignore_errors=True)


def describe():
    """What this process resolves to, as a dict: printed by `python -m vae_zoo.distribute.cluster`."""
    info = current_cluster()
    if info is None:
        return {"cluster": None, "multi_worker": False}
    resolver = cluster_resolver()
    return {
        "source": info.source, "task_type": info.task_type, "task_index": info.task_index,
        "rank": info.rank, "num_workers": info.num_workers, "is_chief": info.is_chief,
        "address": info.address, "cluster": {job: list(a) for job, a in info.jobs.items()},
        "gpus": resolver.num_accelerators().get("GPU", 0) if info.source == "Slurm" else None,
        "multi_worker": wants_multi_worker(),
    }


if __name__ == "__main__":
    try:
        print(json.dumps(describe(), sort_keys=True))
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
