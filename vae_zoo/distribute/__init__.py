"""Multi-worker training plumbing: which cluster a process is in, its strategy, and local launches.

`cluster` resolves TF_CONFIG or Slurm into MultiWorkerMirroredStrategy and says which worker writes
the run folder; `launcher` runs a command as N workers on this machine (`train.py --workers N`);
`indexed_job` sets TF_CONFIG from a Kubernetes Indexed Job's pod index.
"""

from vae_zoo.distribute.cluster import ClusterInfo
from vae_zoo.distribute.cluster import current_cluster
from vae_zoo.distribute.cluster import is_chief
from vae_zoo.distribute.cluster import multi_worker_strategy
from vae_zoo.distribute.cluster import remove_write_dir
from vae_zoo.distribute.cluster import strategy_for
from vae_zoo.distribute.cluster import wants_multi_worker
from vae_zoo.distribute.cluster import write_dir
