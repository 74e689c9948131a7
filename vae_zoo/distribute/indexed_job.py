"""Entrypoint of the Kubernetes Indexed Job recipe: sets TF_CONFIG from the pod's index, then runs
the training command.

`python -m vae_zoo.distribute.indexed_job -- python train.py ...` in every pod. Kubernetes sets
JOB_COMPLETION_INDEX in each pod of an Indexed Job; the recipe sets the rest (see
deploy/kubernetes/indexed-job.yaml). With the headless Service as the pods' `subdomain`, pod i is
reachable as `<job>-<i>.<service>`, so every pod can write the whole cluster without asking the API.
"""

import os
import re
import sys

from vae_zoo.distribute.cluster import make_tf_config
from vae_zoo.distribute.cluster import parse_tf_config
from vae_zoo.errors import UserInputError

INDEX = "JOB_COMPLETION_INDEX"  # set by Kubernetes (completionMode: Indexed)
JOB = "VAE_ZOO_JOB"  # the Job's metadata.name: the pods' hostnames are <job>-<index>
SERVICE = "VAE_ZOO_SERVICE"  # the headless Service, also the pod template's `subdomain`
WORKERS = "VAE_ZOO_WORKERS"  # the Job's completions (= parallelism)
PORT = "VAE_ZOO_PORT"  # the container port TensorFlow's server listens on
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def worker_addresses(job, service, workers, port):
    """`<job>-<i>.<service>:<port>` for every pod index i, in index order."""
    return [f"{job}-{index}.{service}:{port}" for index in range(workers)]


def tf_config_from_index(env):
    """The TF_CONFIG of the pod whose environment is `env`.

    Raises:
        UserInputError: naming the variable that is missing or wrong.
    """
    missing = [name for name in (INDEX, JOB, SERVICE, WORKERS, PORT) if not env.get(name)]
    if missing:
        raise UserInputError(f"{', '.join(missing)} unset: run this in a pod of the Indexed Job "
                             f"recipe (deploy/kubernetes/indexed-job.yaml), which sets them")
    for name in (JOB, SERVICE):
        if not _DNS_LABEL.match(env[name]):
            raise UserInputError(f"{name}={env[name]!r} is not a DNS label (lower-case letters, "
                                 f"digits and '-'): use the Job's and Service's metadata.name")
    numbers = {}
    for name in (INDEX, WORKERS, PORT):
        try:
            numbers[name] = int(env[name])
        except ValueError:
            raise UserInputError(f"{name} must be an integer, got {env[name]!r}") from None
    if numbers[WORKERS] < 1:
        raise UserInputError(f"{WORKERS} must be >= 1 (the Job's completions), got {numbers[WORKERS]}")
    if not 0 <= numbers[INDEX] < numbers[WORKERS]:
        raise UserInputError(f"{INDEX}={numbers[INDEX]} is out of range for {WORKERS}="
                             f"{numbers[WORKERS]}: set {WORKERS} to the Job's completions")
    addresses = worker_addresses(env[JOB], env[SERVICE], numbers[WORKERS], numbers[PORT])
    tf_config = make_tf_config(addresses, numbers[INDEX])
    parse_tf_config(tf_config)  # the same checks a hand-written TF_CONFIG gets (e.g. the port range)
    return tf_config


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m vae_zoo.distribute.indexed_job -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        tf_config = tf_config_from_index(os.environ)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"TF_CONFIG={tf_config}", file=sys.stderr, flush=True)
    os.execvpe(command[0], command, {**os.environ, "TF_CONFIG": tf_config})


if __name__ == "__main__":
    sys.exit(main())
