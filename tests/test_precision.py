"""`train.precision: auto`: the rule on each kind of hardware (facts injected), the readers of
those facts, and a run that keeps the precision it chose when resumed on other hardware."""

import json
import types

import keras
import pytest
import yaml

from vae_zoo.commands.train import build_parser
from vae_zoo.commands.train import resolve
from vae_zoo.config import RunConfig
from vae_zoo.config import apply_overrides
from vae_zoo.config import load_zoo_config
from vae_zoo.training import precision
from vae_zoo.training import train
from vae_zoo.training.precision import Hardware
from vae_zoo.training.precision import resolve_precision

AMX = frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})  # Sapphire Rapids
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16"})  # AMD EPYC Zen 4: no AMX
AVX2 = frozenset({"sse4_2", "avx2", "fma"})


@pytest.mark.parametrize("hardware, expected, reason", [
    (Hardware(cpu_flags=frozenset({"amx_bf16"})), "mixed_bfloat16", "auto: CPU has amx_bf16"),
    (Hardware(cpu_flags=AMX), "mixed_bfloat16", "auto: CPU has amx_bf16"),
    (Hardware(cpu_flags=ZEN4), "mixed_bfloat16", "auto: CPU has avx512_bf16"),
    (Hardware(cpu_flags=AVX2), "float32", "auto: CPU has none of amx_bf16, avx512_bf16"),
    (Hardware(cpu_flags=None), "float32", "auto: CPU features unknown"),
    # With GPUs the GPUs decide, whatever the CPU has.
    (Hardware(gpu_capabilities=((7, 5),), cpu_flags=AMX), "float32",
     "auto: a GPU of compute capability 7.5 (bfloat16 is fast from 8.0)"),
    (Hardware(gpu_capabilities=((8, 0),), cpu_flags=AVX2), "mixed_bfloat16",
     "auto: GPU of compute capability 8.0"),
    (Hardware(gpu_capabilities=((9, 0), (9, 0)), cpu_flags=None), "mixed_bfloat16",
     "auto: GPU of compute capability 9.0"),
    # Replicas in step: one slow GPU makes all of them float32; so does one that reports none.
    (Hardware(gpu_capabilities=((8, 6), (7, 0)), cpu_flags=AMX), "float32",
     "auto: a GPU of compute capability 7.0"),
    (Hardware(gpu_capabilities=(None,), cpu_flags=AMX), "float32",
     "auto: a GPU of compute capability unknown"),
    (Hardware(tpus=8, cpu_flags=AVX2), "mixed_bfloat16", "auto: TPU"),
])
def test_auto_chooses_by_the_hardware_and_says_why(hardware, expected, reason):
    chosen, why = resolve_precision("auto", hardware)
    assert chosen == expected
    assert why.startswith(reason), why


@pytest.mark.parametrize("setting", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_a_set_precision_is_kept_whatever_the_hardware(setting):
    assert resolve_precision(setting, Hardware(cpu_flags=AMX))[0] == setting
    assert resolve_precision(setting, Hardware(gpu_capabilities=((7, 5),)))[0] == setting


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
vmx flags\t: vnmi preemption_timer
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu sse4_2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""


def test_cpu_flags_reads_the_flags_line_of_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    flags = precision.cpu_flags(cpuinfo)
    assert {"avx512_bf16", "amx_bf16", "avx2"} <= flags
    assert "vnmi" not in flags and "spectre_v1" not in flags  # other lines that end in "flags"
    assert precision.cpu_flags(tmp_path / "missing") is None  # no /proc/cpuinfo: not Linux


def test_read_hardware_asks_tensorflow_for_gpu_capabilities(monkeypatch):
    import tensorflow as tf

    gpus = [types.SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(2)]
    details = {gpus[0].name: {"compute_capability": (8, 6), "device_name": "NVIDIA A10"},
               gpus[1].name: {"device_name": "no capability reported"}}
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: details[device.name])
    monkeypatch.setattr(precision, "cpu_flags", lambda: ZEN4)
    assert precision.read_hardware() == Hardware(0, ((8, 6), None), ZEN4)
    assert resolve_precision("auto")[0] == "float32"  # the GPU without a capability decides


def test_the_config_accepts_auto():  # a bad value's message: tests/test_config.py
    raw = apply_overrides(load_zoo_config("dense_vae"), ["train.precision=auto"])
    assert RunConfig.from_dict(raw).train.precision == "auto"


TINY = ["data.dataset=mnist_sample", "data.train_limit=256", "data.test_limit=64",
        "data.batch_size=64", "train.precision=auto", "eval.iw_samples=2",
        "eval.pictures=false"]


def on(monkeypatch, cpu_flags):
    """This process sees a CPU with `cpu_flags` and no GPU."""
    monkeypatch.setattr(precision, "read_hardware", lambda: Hardware(cpu_flags=cpu_flags))


def test_a_run_records_what_auto_chose_and_keeps_it_on_other_hardware(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["--model", "dense_vae", "--run-dir", str(run), "--epochs", "1"] + [
        a for item in TINY for a in ("--set", item)]
    on(monkeypatch, ZEN4)
    config, folder = resolve(build_parser().parse_args(args))
    assert config.train.precision == "auto"  # a new run: chosen when training starts
    lines = []
    metrics = train(config, folder, verbose=0, log=lines.append)
    assert "precision: mixed_bfloat16 (auto: CPU has avx512_bf16)" in lines
    assert metrics["precision"] == {"value": "mixed_bfloat16",
                                    "reason": "auto: CPU has avx512_bf16"}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == \
        "mixed_bfloat16"
    assert keras.models.load_model(run / "model.keras").dtype_policy.name == "mixed_bfloat16"

    # The same command on a CPU without bfloat16: the folder holds this run (`auto` matches the
    # precision it chose), so it resumes, in bfloat16, and config.yaml still says so.
    on(monkeypatch, AVX2)
    assert resolve_precision("auto")[0] == "float32"
    again = build_parser().parse_args(args + ["--epochs", "2", "--resume"])
    config, folder = resolve(again)
    assert config.train.precision == "mixed_bfloat16"
    same = build_parser().parse_args(args)
    assert resolve(same)[0].train.precision == "mixed_bfloat16" and same.resume

    # The library call with `auto` and resume keeps it too, and the model trains on in bfloat16.
    lines = []
    auto = config.with_precision("auto")
    metrics = train(auto, folder, resume=True, verbose=0, log=lines.append)
    assert "precision: mixed_bfloat16 (train.precision in the config)" in lines
    assert metrics["epochs"] == 2 and metrics["precision"]["value"] == "mixed_bfloat16"
    assert json.loads((run / "metrics.json").read_text())["precision"]["value"] == \
        "mixed_bfloat16"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["precision"] == \
        "mixed_bfloat16"
    assert keras.models.load_model(run / "model.keras").dtype_policy.name == "mixed_bfloat16"
