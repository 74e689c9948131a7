"""pythae's default VAE (PyTorch) on a statically binarised MNIST sample: the reference that
`time_to_result.py` compares dense_vae's 50-epoch run with. It runs from its own venv, never
vae_zoo's (pythae and torch are no dependency of vae_zoo):

    python -m venv ../pythae-venv && ../pythae-venv/bin/pip install pythae
    ../pythae-venv/bin/python benchmarks/pythae_vae.py DATA.npz --epochs 50

DATA.npz is written by time_to_result.py (x_train, x_validation as 0/255 uint8). Prints one JSON
line: wall and CPU seconds of the training pipeline (its per-epoch evaluation, logging and
checkpoint writes included, as pythae runs by default), and its last losses.
"""

import argparse
import json
import resource
import tempfile
import time


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=16)
    args = parser.parse_args()

    import numpy as np
    import torch
    from pythae.models import VAE
    from pythae.models import VAEConfig
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    torch.manual_seed(0)
    data = np.load(args.data)
    train = (data["x_train"].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    validation = (data["x_validation"].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    model = VAE(model_config=VAEConfig(input_dim=(1, 28, 28), latent_dim=args.latent_dim,
                                       reconstruction_loss="bce"))
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(
            output_dir=out, learning_rate=1e-3, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.batch_size, num_epochs=args.epochs, no_cuda=True)
        pipeline = TrainingPipeline(training_config=config, model=model)
        wall, cpu = time.perf_counter(), cpu_seconds()
        pipeline(train_data=train, eval_data=validation)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(json.dumps({"framework": f"pythae (torch {torch.__version__})",
                      "params": sum(p.numel() for p in model.parameters()),
                      "epochs": args.epochs, "train_images": len(train),
                      "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
