"""The cluster recipes in deploy/: parsed and cross-checked (Kubernetes), and run as far as this
machine allows (the sbatch script under a fake `srun`, the Indexed Job entrypoint with a fake index).
No real Slurm or Kubernetes cluster is involved."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vae_zoo.distribute import indexed_job
from vae_zoo.distribute.cluster import parse_tf_config
from vae_zoo.errors import UserInputError

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
for name in list(ENV):
    if name.startswith("SLURM_") or name in ("TF_CONFIG", "CUDA_VISIBLE_DEVICES", "VAE_ZOO_SLURM_PORT_BASE"):
        del ENV[name]


def documents(path):
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / path).read_text())}


def container_env(container):
    return {item["name"]: item["value"] for item in container.get("env", [])}


def run_dir_arg(command):
    return command[command.index("--run-dir") + 1]


# Kubernetes: Indexed Job + headless Service -------------------------------------------------------

@pytest.fixture(scope="module")
def indexed():
    docs = documents("kubernetes/indexed-job.yaml")
    service, job = docs["Service"], docs["Job"]
    pod = job["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    return service, job, pod, container


def test_indexed_job_runs_one_pod_per_worker_with_stable_names(indexed):
    service, job, pod, container = indexed
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    env = container_env(container)
    assert spec["completions"] == spec["parallelism"] == int(env["VAE_ZOO_WORKERS"]) >= 2
    assert env["VAE_ZOO_JOB"] == job["metadata"]["name"]
    # Pod DNS names <job>-<i>.<service> exist only with the Service as the pods' subdomain.
    assert pod["spec"]["subdomain"] == env["VAE_ZOO_SERVICE"] == service["metadata"]["name"]
    assert pod["spec"]["restartPolicy"] == "OnFailure"  # restarted in place: same name, same TF_CONFIG


def test_headless_service_selects_the_worker_pods_on_the_tensorflow_port(indexed):
    service, job, pod, container = indexed
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"].get("publishNotReadyAddresses") is True
    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    (container_port,) = container["ports"]
    assert port["port"] == port["targetPort"] == container_port["containerPort"] == int(
        container_env(container)["VAE_ZOO_PORT"])


def test_indexed_job_command_sets_tf_config_then_trains_into_the_shared_volume(indexed):
    _, _, pod, container = indexed
    command = container["command"]
    assert command[:4] == ["python", "-m", "vae_zoo.distribute.indexed_job", "--"]
    assert command[4:6] == ["python", "train.py"]
    (mount,) = container["volumeMounts"]
    assert run_dir_arg(command).startswith(mount["mountPath"] + "/")
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]}
    assert mount["name"] in claims


def test_every_pod_gets_the_same_cluster_of_pod_dns_names_and_its_own_index(indexed):
    service, job, _, container = indexed
    env = container_env(container)
    workers, port = job["spec"]["completions"], container["ports"][0]["containerPort"]
    expected = [f"{job['metadata']['name']}-{i}.{service['metadata']['name']}:{port}"
                for i in range(workers)]
    for index in range(workers):
        info = parse_tf_config(indexed_job.tf_config_from_index({**env, "JOB_COMPLETION_INDEX": str(index)}))
        assert list(info.addresses) == expected
        assert (info.task_index, info.is_chief) == (index, index == 0)


@pytest.mark.parametrize("change, message", [
    ({"JOB_COMPLETION_INDEX": None}, "JOB_COMPLETION_INDEX unset: run this in a pod"),
    ({"JOB_COMPLETION_INDEX": "2"}, "JOB_COMPLETION_INDEX=2 is out of range for VAE_ZOO_WORKERS=2"),
    ({"VAE_ZOO_WORKERS": "two"}, "VAE_ZOO_WORKERS must be an integer, got 'two'"),
    ({"VAE_ZOO_SERVICE": "Workers_1"}, "VAE_ZOO_SERVICE='Workers_1' is not a DNS label"),
    ({"VAE_ZOO_PORT": "99999"}, "which is not a \"host:port\" address"),
])
def test_indexed_job_entrypoint_names_a_bad_variable(indexed, change, message):
    env = {**container_env(indexed[3]), "JOB_COMPLETION_INDEX": "0", **change}
    env = {k: v for k, v in env.items() if v is not None}
    with pytest.raises(UserInputError, match=message.replace("(", r"\(")):
        indexed_job.tf_config_from_index(env)


def test_indexed_job_entrypoint_runs_the_command_with_its_tf_config(indexed):
    """The container's own entrypoint, with Kubernetes' JOB_COMPLETION_INDEX faked."""
    container = indexed[3]
    entrypoint = container["command"][: container["command"].index("--") + 1]
    printer = [sys.executable, "-c", "import os; print(os.environ['TF_CONFIG'])"]
    env = {**ENV, **container_env(container), "JOB_COMPLETION_INDEX": "1"}
    command = [sys.executable if arg == "python" else arg for arg in entrypoint] + printer
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["task"] == {"type": "worker", "index": 1}
    assert config["cluster"]["worker"][1] == "vae-zoo-train-1.vae-zoo-workers:2222"

    result = subprocess.run(command, env={**env, "JOB_COMPLETION_INDEX": "7"}, capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 2 and "error: JOB_COMPLETION_INDEX=7 is out of range" in result.stderr


# Kubernetes: Kubeflow TFJob -----------------------------------------------------------------------

def test_tfjob_has_the_worker_replicas_and_the_container_the_operator_expects():
    tfjob = documents("kubernetes/tfjob.yaml")["TFJob"]
    assert tfjob["apiVersion"] == "kubeflow.org/v1"
    replicas = tfjob["spec"]["tfReplicaSpecs"]
    assert list(replicas) == ["Worker"]  # no Chief or PS: worker 0 is the chief, as in MWMS
    worker = replicas["Worker"]
    assert worker["replicas"] >= 2 and worker["restartPolicy"] == "OnFailure"
    (container,) = worker["template"]["spec"]["containers"]
    assert container["name"] == "tensorflow"
    assert [p["containerPort"] for p in container["ports"]] == [2222]
    assert container["command"][:2] == ["python", "train.py"]
    (mount,) = container["volumeMounts"]
    assert run_dir_arg(container["command"]).startswith(mount["mountPath"] + "/")

    # The TF_CONFIG the training operator injects has this form (its docs); the zoo accepts it.
    name, count = tfjob["metadata"]["name"], worker["replicas"]
    injected = {"cluster": {"worker": [f"{name}-worker-{i}.default.svc:2222" for i in range(count)]},
                "task": {"type": "worker", "index": 1}, "environment": "cloud"}
    info = parse_tf_config(json.dumps(injected))
    assert info.num_workers == count and not info.is_chief


# Slurm ----------------------------------------------------------------------------------------------

SBATCH = DEPLOY / "slurm/train.sbatch"

# Plays `srun` for a job step: runs the command once per task with the variables Slurm sets, except
# train.py, which it only records.
FAKE_SRUN = """#!/usr/bin/env bash
while [[ "$1" == --* ]]; do shift; done
if [[ " $* " == *" train.py "* ]]; then printf '%s\\n' "$@" > "$FAKE_SRUN_TRAIN"; exit 0; fi
out=$(mktemp -d)
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_STEP_NUM_TASKS=$SLURM_NTASKS SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST \\
    SLURM_STEP_TASKS_PER_NODE=$SLURM_TASKS_PER_NODE "$@" > "$out/$i" &
done
wait
cat "$out"/*  # each task's lines whole: concurrent writes to one pipe can interleave
"""


def test_sbatch_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    header = [line for line in SBATCH.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH --ntasks-per-node=1" in header


def test_sbatch_script_resolves_the_cluster_on_cpu_nodes_and_trains_in_one_run_folder(tmp_path):
    """The script itself under a fake Slurm allocation of 2 CPU nodes: each task's check prints the
    cluster the resolver builds (no nvidia-smi, no CUDA_VISIBLE_DEVICES), and the training step
    gets one shared --run-dir and the script's arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**ENV, "PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2",
           "SLURM_JOB_NODELIST": "cpu[07-08]", "SLURM_TASKS_PER_NODE": "1(x2)",
           "FAKE_SRUN_TRAIN": str(tmp_path / "train-args")}
    result = subprocess.run(["bash", str(SBATCH), "--model", "beta_vae", "--epochs", "3"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    tasks = sorted((json.loads(line) for line in result.stdout.splitlines()), key=lambda t: t["rank"])
    port = 20000 + 4242 % 20000
    for rank, task in enumerate(tasks):
        assert task["source"] == "Slurm" and task["rank"] == rank and task["num_workers"] == 2
        assert task["cluster"] == {"worker": [f"cpu07:{port}", f"cpu08:{port}"]}
        assert task["is_chief"] == (rank == 0) and task["gpus"] == 0 and task["multi_worker"]
    assert len(tasks) == 2

    train_args = (tmp_path / "train-args").read_text().split()
    assert train_args[1:] == ["train.py", "--run-dir", "runs/slurm-4242", "--model", "beta_vae",
                              "--epochs", "3"]


# Preemption ------------------------------------------------------------------------------------

# deploy/README.md, "Preemption": from SIGTERM to every worker saved and gone took 2-7 s for
# conv_vae here (two steps, a checkpoint, TensorFlow's shutdown); the recipes allow 60 s.
GRACE_SECONDS = 60


def test_every_recipe_gives_the_workers_time_to_checkpoint_between_sigterm_and_sigkill():
    pods = [documents("kubernetes/indexed-job.yaml")["Job"]["spec"]["template"],
            documents("kubernetes/tfjob.yaml")["TFJob"]["spec"]["tfReplicaSpecs"]["Worker"][
                "template"]]
    for pod in pods:
        assert pod["spec"]["terminationGracePeriodSeconds"] >= GRACE_SECONDS
    (line,) = [line for line in SBATCH.read_text().splitlines()
               if line.startswith("#SBATCH --signal")]
    match = re.fullmatch(r"#SBATCH --signal=(B:)?TERM@(\d+)", line)
    assert match, line
    assert match.group(1) is None  # "B:" would signal the batch shell alone, not the workers
    assert int(match.group(2)) >= GRACE_SECONDS
