"""Runs as sessions of TensorBoard's HParams dashboard: queried through TensorBoard's own plugin,
each run shows its hyper-parameters beside its test metrics."""

import tensorflow as tf

from vae_zoo.evaluation.report import flat_hyperparameters
from vae_zoo.evaluation.report import write_hparams
from vae_zoo.evaluation.report import write_scalars
from vae_zoo.run_folder import RunFolder


def hparams_dashboard(logdir):
    """`(experiment, session groups)` as the dashboard's HTTP routes return them."""
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from tensorboard.plugins.scalar import scalars_plugin
    from werkzeug.test import Client

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    context = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=multiplexer, plugin_name_to_instance={},
        data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    context.plugin_name_to_instance["scalars"] = scalars_plugin.ScalarsPlugin(context)
    apps = hparams_plugin.HParamsPlugin(context).get_plugin_apps()
    experiment = Client(apps["/experiment"]).post("/experiment", json={"experimentName": ""})
    groups = Client(apps["/session_groups"]).post("/session_groups", json={
        "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "colParams": [],
        "startIndex": 0, "sliceSize": 10})
    assert experiment.status_code == groups.status_code == 200
    return experiment.get_json(), groups.get_json()["sessionGroups"]


def test_the_config_flattens_into_dashboard_values():
    config = {"model": {"name": "conv_vae", "latent_dim": 16, "hidden_units": [8, 4],
                        "capacity": None},
              "train": {"learning_rate": 1e-3, "jit_compile": True}}
    assert flat_hyperparameters(config) == {
        "model.name": "conv_vae", "model.latent_dim": 16, "model.hidden_units": "[8, 4]",
        "model.capacity": "None", "train.learning_rate": 1e-3, "train.jit_compile": True}


def test_each_run_is_a_session_with_its_hyperparameters_and_test_metrics(tmp_path):
    for name, latent_dim, elbo in (("small", 8, -101.5), ("large", 32, -97.25)):
        run = RunFolder(tmp_path / name)
        run.create()
        write_hparams(run, {"model": {"name": "conv_vae", "latent_dim": latent_dim}})
        writer = tf.summary.create_file_writer(str(run.tensorboard_dir / "evaluation"))
        write_scalars(writer, {"elbo": elbo, "iw_nll": -elbo - 2.0}, step=3)

    experiment, groups = hparams_dashboard(tmp_path)
    assert {"model.name", "model.latent_dim"} <= {info["name"] for info in experiment["hparamInfos"]}
    assert {("evaluation", "test/elbo"), ("evaluation", "test/iw_nll")} <= {
        (info["name"]["group"], info["name"]["tag"]) for info in experiment["metricInfos"]}
    shown = {}
    for group in groups:
        (session,) = group["sessions"]
        metrics = {value["name"]["tag"]: value["value"] for value in session["metricValues"]}
        shown[group["hparams"]["model.latent_dim"]] = (metrics["test/elbo"], metrics["test/iw_nll"])
    assert shown == {8: (-101.5, 99.5), 32: (-97.25, 95.25)}
