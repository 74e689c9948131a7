"""Cluster resolution: TF_CONFIG checks, Slurm on CPU and GPU nodes (faked environments), the chief's
write folder, and real MultiWorkerMirroredStrategy all-reduces between 2 processes on loopback."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from vae_zoo.distribute import cluster
from vae_zoo.distribute.cluster import ClusterInfo
from vae_zoo.distribute.launcher import launch
from vae_zoo.errors import UserInputError

REPO = Path(__file__).resolve().parent.parent
TWO_WORKERS = {"cluster": {"worker": ["host0:2222", "host1:2222"]}, "task": {"type": "worker", "index": 1}}


@pytest.fixture(autouse=True)
def no_cluster_environment():
    """Each test starts outside any cluster and leaves os.environ as it was (the Slurm resolver sets
    CUDA_VISIBLE_DEVICES itself)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("SLURM_") or name in ("TF_CONFIG", "CUDA_VISIBLE_DEVICES",
                                                  "VAE_ZOO_SLURM_PORT_BASE"):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


def fake_slurm(procid, num_tasks, nodelist, tasks_per_node):
    os.environ.update(SLURM_PROCID=str(procid), SLURM_STEP_NUM_TASKS=str(num_tasks),
                      SLURM_STEP_NODELIST=nodelist, SLURM_STEP_TASKS_PER_NODE=tasks_per_node)


def fake_nvidia_smi(folder, gpus):
    """An `nvidia-smi` first on PATH that lists `gpus` GPUs (and nothing else on PATH)."""
    script = folder / "nvidia-smi"
    lines = "\n".join(f"echo 'GPU {i}: NVIDIA A100 (UUID: GPU-{i})'" for i in range(gpus))
    script.write_text(f"#!/bin/sh\n{lines}\n")
    script.chmod(0o755)
    os.environ["PATH"] = str(folder)


# TF_CONFIG ------------------------------------------------------------------------------------------

def test_tf_config_of_workers_only_makes_worker_0_the_chief():
    info = cluster.parse_tf_config(json.dumps(TWO_WORKERS))
    assert (info.num_workers, info.task_type, info.task_index, info.rank) == (2, "worker", 1, 1)
    assert info.address == "host1:2222" and not info.is_chief and info.source == "TF_CONFIG"
    chief = cluster.parse_tf_config(cluster.make_tf_config(["a:1", "b:2", "c:3"], 0))
    assert chief.is_chief and chief.addresses == ("a:1", "b:2", "c:3")


def test_a_chief_job_is_the_chief_and_rank_0():
    config = {"cluster": {"worker": ["w0:2222", "w1:2222"], "chief": ["c:2222"]}}
    worker0 = cluster.parse_tf_config(json.dumps({**config, "task": {"type": "worker", "index": 0}}))
    chief = cluster.parse_tf_config(json.dumps({**config, "task": {"type": "chief", "index": 0}}))
    assert not worker0.is_chief and worker0.rank == 1 and worker0.num_workers == 3
    assert chief.is_chief and chief.rank == 0 and chief.addresses[0] == "c:2222"


@pytest.mark.parametrize("text", ["", "  ", "{}"])
def test_empty_tf_config_means_no_cluster(text):
    assert cluster.parse_tf_config(text) is None
    os.environ["TF_CONFIG"] = text
    assert cluster.current_cluster() is None and cluster.is_chief() and not cluster.wants_multi_worker()
    assert cluster.cluster_resolver() is None


def with_task(cluster_jobs, task=None):
    return json.dumps({"cluster": cluster_jobs, "task": task or {"type": "worker", "index": 0}})


@pytest.mark.parametrize("text, message", [
    ("{cluster: }", "is not valid JSON (Expecting property name"),
    ('["host0:2222"]', "must be a JSON object, got list"),
    ('{"task": {"type": "worker", "index": 0}}', 'has no "cluster" object'),
    (with_task({"worker": ["a:1"], "ps": ["b:2"]}), "has job(s) ps in its cluster"),
    (with_task({"worker": []}), 'cluster "worker" must be a non-empty list'),
    (with_task({"worker": "a:1,b:2"}), 'cluster "worker" must be a non-empty list'),
    (with_task({"worker": ["localhost"]}), "'localhost', which is not a \"host:port\" address"),
    (with_task({"worker": ["a:0"]}), "'a:0', which is not"),
    (with_task({"worker": ["a:70000"]}), "'a:70000', which is not"),
    (with_task({"worker": ["a: 22"]}), "'a: 22', which is not"),
    (with_task({"worker": [2222]}), "2222, which is not"),
    (with_task({"worker": ["a:1"], "chief": ["c:1", "d:1"]}), "lists 2 chiefs"),
    (with_task({"worker": ["a:1", "a:1"]}), "lists a:1 more than once"),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), 'has no "task" object'),
    (with_task({"worker": ["a:1"]}, {"type": "chief", "index": 0}), "task type 'chief' is not a job"),
    (with_task({"worker": ["a:1"]}, {"type": "worker", "index": "0"}), "task index must be an integer, got '0'"),
    (with_task({"worker": ["a:1"]}, {"type": "worker", "index": True}), "must be an integer, got True"),
    (with_task({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 2}),
     'task index 2 is out of range: the cluster has 2 "worker" task(s), indexes 0 to 1'),
    (with_task({"worker": ["a:1"]}, {"type": "worker", "index": -1}), "task index -1 is out of range"),
])
def test_bad_tf_config_is_one_line_saying_what_and_how_to_fix(text, message):
    with pytest.raises(UserInputError) as error:
        cluster.parse_tf_config(text)
    text = str(error.value)
    assert message in text and "\n" not in text
    assert text.startswith("TF_CONFIG ") and cluster.TF_CONFIG_EXAMPLE in text


def test_bad_tf_config_stops_every_entry_point_before_tensorflow_sees_it():
    os.environ["TF_CONFIG"] = with_task({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 5})
    for function in (cluster.wants_multi_worker, cluster.is_chief, cluster.cluster_resolver,
                     cluster.multi_worker_strategy, lambda: cluster.strategy_for("auto")):
        with pytest.raises(UserInputError, match="out of range"):
            function()


def test_tf_config_resolver_and_auto():
    os.environ["TF_CONFIG"] = json.dumps(TWO_WORKERS)
    resolver = cluster.cluster_resolver()
    assert isinstance(resolver, tf.distribute.cluster_resolver.TFConfigClusterResolver)
    assert resolver.cluster_spec().as_dict() == {"worker": ["host0:2222", "host1:2222"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 1)
    assert cluster.wants_multi_worker() and not cluster.is_chief()
    os.environ["TF_CONFIG"] = cluster.make_tf_config(["solo:2222"], 0)
    assert not cluster.wants_multi_worker() and cluster.is_chief()


def test_multi_worker_without_a_cluster_says_how_to_get_one():
    with pytest.raises(UserInputError, match="set TF_CONFIG on every worker, run under `srun`"):
        cluster.strategy_for("multi_worker")
    assert cluster.strategy_for("default") is tf.distribute.get_strategy()


# Slurm ----------------------------------------------------------------------------------------------

def test_slurm_on_cpu_nodes_lists_every_task_and_keeps_replicas_on_the_cpu(tmp_path):
    fake_slurm(procid=3, num_tasks=4, nodelist="node[01-02]", tasks_per_node="2(x2)")
    os.environ["PATH"] = str(tmp_path)  # no nvidia-smi: upstream's defaults would fail here
    resolver = cluster.slurm_resolver()
    assert resolver.cluster_spec().as_dict() == {
        "worker": ["node01:8888", "node01:8889", "node02:8888", "node02:8889"]}
    assert resolver.get_task_info() == ("worker", 3)
    # Upstream reports gpus_per_task GPUs here, and MWMS would put its replica on a missing GPU:0.
    assert resolver.num_accelerators() == {"GPU": 0}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    info = cluster.current_cluster()
    assert (info.source, info.rank, info.num_workers, info.is_chief) == ("Slurm", 3, 4, False)
    assert cluster.wants_multi_worker() and not cluster.is_chief()


def test_slurm_port_base_comes_from_the_environment(tmp_path):
    fake_slurm(procid=0, num_tasks=2, nodelist="a,b", tasks_per_node="1(x2)")
    os.environ.update(PATH=str(tmp_path), VAE_ZOO_SLURM_PORT_BASE="23456")
    info = cluster.current_cluster()
    assert info.addresses == ("a:23456", "b:23456") and info.is_chief


def test_slurm_on_gpu_nodes_splits_the_nodes_gpus_between_its_tasks(tmp_path):
    fake_slurm(procid=3, num_tasks=4, nodelist="gpu[1-2]", tasks_per_node="2(x2)")
    fake_nvidia_smi(tmp_path, gpus=4)
    resolver = cluster.slurm_resolver()
    resolver.cluster_spec()
    assert resolver.num_accelerators() == {"GPU": 2}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"  # the second task of its node


def test_slurm_keeps_the_gpus_slurm_assigned():
    fake_slurm(procid=1, num_tasks=2, nodelist="gpu[1-2]", tasks_per_node="1(x2)")
    os.environ["CUDA_VISIBLE_DEVICES"] = "2,3"  # e.g. --gres=gpu:2 without device cgroups
    resolver = cluster.slurm_resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["gpu1:8888", "gpu2:8888"]}
    assert resolver.num_accelerators() == {"GPU": 2}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_slurm_with_more_tasks_than_gpus_on_a_node_is_refused(tmp_path):
    fake_slurm(procid=0, num_tasks=4, nodelist="gpu1", tasks_per_node="4")
    fake_nvidia_smi(tmp_path, gpus=2)
    with pytest.raises(UserInputError, match="4 tasks per node but 2 GPU"):
        cluster.slurm_resolver()


def test_outside_an_srun_step_there_is_no_slurm_cluster():
    os.environ.update(SLURM_PROCID="0", SLURM_JOB_ID="7")  # an sbatch script before srun
    assert not cluster.in_slurm_step() and cluster.current_cluster() is None
    assert not cluster.wants_multi_worker() and cluster.is_chief()
    with pytest.raises(UserInputError, match=r"SLURM_STEP_NUM_TASKS.*unset\): start each worker with srun"):
        cluster.slurm_resolver()


def test_one_slurm_task_is_not_multi_worker_and_tf_config_wins_over_slurm(tmp_path):
    os.environ["PATH"] = str(tmp_path)
    fake_slurm(procid=0, num_tasks=1, nodelist="node1", tasks_per_node="1")
    assert cluster.current_cluster().num_workers == 1 and not cluster.wants_multi_worker()
    os.environ["TF_CONFIG"] = json.dumps(TWO_WORKERS)
    assert cluster.current_cluster().source == "TF_CONFIG" and cluster.wants_multi_worker()
    assert isinstance(cluster.cluster_resolver(), tf.distribute.cluster_resolver.TFConfigClusterResolver)


# The chief's run folder ---------------------------------------------------------------------------

def test_write_dir_is_the_run_folder_on_the_chief_and_a_removable_temporary_one_elsewhere(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    chief = ClusterInfo({"worker": ("a:1", "b:1")}, "worker", 0, "TF_CONFIG")
    other = ClusterInfo({"worker": ("a:1", "b:1")}, "worker", 1, "TF_CONFIG")
    assert cluster.write_dir(run, chief) == run
    scratch = cluster.write_dir(run, other)
    assert scratch.is_dir() and run not in scratch.parents and scratch != run
    (scratch / "checkpoint").write_text("x")
    cluster.remove_write_dir(scratch, run)
    assert not scratch.exists()
    cluster.remove_write_dir(run, run)  # the chief's "cleanup" must never delete the run
    assert run.is_dir()

    assert cluster.write_dir(run) == run  # no cluster: a single process writes the run folder
    os.environ["TF_CONFIG"] = json.dumps(TWO_WORKERS)
    from_environment = cluster.write_dir(run)
    assert from_environment != run
    cluster.remove_write_dir(from_environment, run)


def test_a_worker_resuming_a_run_starts_from_the_chiefs_histories_and_best_checkpoints(tmp_path):
    from vae_zoo.run_folder import RunFolder

    run = tmp_path / "run"
    (run / "checkpoints/steps/step-000000004").mkdir(parents=True)
    (run / "history.csv").write_text("epoch,loss,val_loss\n0,5.0,4.0\n")
    (run / "history-prior.csv").write_text("epoch,loss,val_loss\n1,3.0,2.0\n2,2.5,2.5\n")
    (run / "checkpoints/best.keras").write_bytes(b"autoencoder")
    (run / "checkpoints/best-prior.keras").write_bytes(b"prior")
    other = RunFolder(run, ClusterInfo({"worker": ("a:1", "b:1")}, "worker", 1, "TF_CONFIG"))
    try:
        assert other.best_epoch() is None and other.for_stage("prior").best_epoch() is None
        other.start_from_chief()
        assert other.best_epoch() == (1, 4.0)
        assert other.for_stage("prior").best_epoch() == (2, 2.0)  # epoch 1, numbered from 1
        assert other.for_stage("prior").best_checkpoint.read_bytes() == b"prior"
        assert other.best_checkpoint.read_bytes() == b"autoencoder"
        assert not (other.root / "checkpoints/steps").exists()  # read from the chief's folder
    finally:
        other.cleanup()
    chief = RunFolder(run, ClusterInfo({"worker": ("a:1", "b:1")}, "worker", 0, "TF_CONFIG"))
    chief.start_from_chief()  # its own folder: nothing to copy
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "history-prior.csv",
                                                       "history.csv"]


# Real MultiWorkerMirroredStrategy on loopback ------------------------------------------------------

ALL_REDUCE = """
import json, sys
from vae_zoo.distribute.cluster import current_cluster, is_chief, multi_worker_strategy
strategy = multi_worker_strategy()  # first: before any other TensorFlow op
import tensorflow as tf
info = current_cluster()
step = tf.function(lambda: tf.distribute.get_replica_context().all_reduce(
    "SUM", tf.constant([info.rank + 1.0, 10.0])))
values = strategy.experimental_local_results(strategy.run(step))
with open(f"{sys.argv[1]}/{info.rank}.json", "w") as f:
    json.dump({"chief": is_chief(), "replicas": strategy.num_replicas_in_sync,
               "sums": [v.numpy().tolist() for v in values],
               "devices": list(strategy.extended.worker_devices)}, f)
"""


def check_all_reduce(out, workers):
    results = {int(p.stem): json.loads(p.read_text()) for p in out.glob("*.json")}
    assert sorted(results) == list(range(workers))
    for rank, result in results.items():
        assert result["chief"] == (rank == 0)
        assert result["replicas"] == workers
        assert result["sums"] == [[sum(range(1, workers + 1)), 10.0 * workers]]
        assert len(result["devices"]) == 1 and result["devices"][0].endswith("/device:CPU:0")


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_two_workers_all_reduce_through_the_launcher(tmp_path):
    """TF_CONFIG from the launcher, free ports and RING options: a real collective over loopback."""
    script = tmp_path / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    (tmp_path / "out").mkdir()
    os.environ["PYTHONPATH"] = str(REPO)
    assert launch([sys.executable, str(script), str(tmp_path / "out")], 2, grace=5) == 0
    check_all_reduce(tmp_path / "out", 2)


def consecutive_free_ports(count):
    for _ in range(20):
        with socket.socket() as s:
            s.bind(("", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            probes = []
            for port in range(base, base + count):
                probes.append(socket.socket())
                probes[-1].bind(("", port))
            return base
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise RuntimeError("no consecutive free ports")


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_two_slurm_tasks_on_a_cpu_node_all_reduce(tmp_path):
    """The Slurm resolver's CPU-node arguments through a real MultiWorkerMirroredStrategy: the two
    tasks of one `srun` step on this machine, as Slurm's variables describe them."""
    script = tmp_path / "all_reduce.py"
    script.write_text(ALL_REDUCE)
    (tmp_path / "out").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "SLURM_STEP_NUM_TASKS": "2",
           "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": "2",
           "VAE_ZOO_SLURM_PORT_BASE": str(consecutive_free_ports(2))}
    workers = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "out")],
                                env={**env, "SLURM_PROCID": str(i)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert [w.returncode for w in workers] == [0, 0], outputs
    check_all_reduce(tmp_path / "out", 2)
