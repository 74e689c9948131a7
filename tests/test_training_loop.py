"""The training loop's own costs: step functions traced once, its profile, checkpoints and the
best model written at the cadence they promise, and slow writes moved off the training thread
without changing what is written."""

import gc
import signal
import threading
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.summary import v2 as tensorboard_v2

from vae_zoo.data import make_pipeline
from vae_zoo.data.store import ArrayStore
from vae_zoo.data.store import Split
from vae_zoo.models import VAE
from vae_zoo.training import TrainingLoop
from vae_zoo.training.background import BackgroundWriter
from vae_zoo.training.callbacks import GracefulInterrupt
from vae_zoo.training.callbacks import ImageSummaries
from vae_zoo.training.callbacks import StopRequested
from vae_zoo.training.callbacks import TensorBoard
from vae_zoo.training.checkpoints import BestModel
from vae_zoo.training.checkpoints import StepCheckpoint
from vae_zoo.training.loop import TraceWindow


def tiny_model():
    model = VAE((4, 4, 1), latent_dim=2, network="dense", hidden_units=[8])
    model.compile(**model.make_optimizers(1e-3))
    return model


def examples(n):
    x = np.random.default_rng(0).random((n, 4, 4, 1)).astype("float32")
    return Split(ArrayStore({"x": x}), np.arange(n))


def epochs_of(train, batch_size=16):
    """The loop's `train_batches` for a split."""
    def train_batches(epoch, start_step=0, shard=None, epochs=1):
        return make_pipeline(train, batch_size, training=True, epoch=epoch,
                             start_step=start_step, shard=shard, epochs=epochs)

    return train_batches


def fit(model, callbacks=(), epochs=2, trace=None):
    """37 training images in batches of 16 (a last batch of 5), 10 validation images in 8 + 2."""
    loop = TrainingLoop(model, tf.distribute.get_strategy(), trace=trace)
    train = examples(37)
    loop.fit(epochs_of(train), epochs, 3,
             validation_data=make_pipeline(examples(10), 8, training=False),
             callbacks=list(callbacks), verbose=0)
    return loop


def test_each_step_function_is_traced_once_and_the_profile_counts_every_part():
    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.05)

    loop = fit(tiny_model(), [Slow()])
    assert loop.traces() == {"train": 1, "test": 1}  # ragged last batches did not retrace
    assert int(loop.model.steps_trained.numpy()) == 6
    seconds = loop.profile.as_dict()
    assert seconds["train_steps"] > 0 and seconds["validation_steps"] > 0 and seconds["data"] > 0
    assert seconds["first_train_step"] > 0 and seconds["first_test_step"] > 0  # counted apart
    assert 0.1 <= seconds["callback/Slow"] < 0.5  # two epochs of 0.05 s, nothing else


def test_a_trace_window_writes_a_profiler_trace_and_leaves_training_as_it_was(tmp_path):
    keras.utils.set_random_seed(0)
    plain = fit(tiny_model()).model.get_weights()
    keras.utils.set_random_seed(0)
    window = TraceWindow(tmp_path / "worker0", 2, 3)  # across the end of the first epoch
    traced = fit(tiny_model(), trace=window).model.get_weights()
    traces = list((tmp_path / "worker0").glob("plugins/profile/*/*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
    assert not window.active  # stopped after step 3
    for a, b in zip(plain, traced):
        np.testing.assert_array_equal(a, b)


def test_epoch_ends_save_only_when_the_last_checkpoint_is_old_enough_and_training_end_saves(
        tmp_path):
    model = tiny_model()
    loop = TrainingLoop(model, tf.distribute.get_strategy())
    flushed = []
    rarely = StepCheckpoint(tmp_path / "rare", loop, every=None, min_seconds=3600,
                            after_save=[lambda: flushed.append(loop.global_step())])
    always = StepCheckpoint(tmp_path / "always", loop, every=None, min_seconds=0, keep=5)
    train = examples(37)
    loop.fit(epochs_of(train), 2, 3,
             callbacks=[rarely, always], verbose=0)
    assert [p.name for p in sorted((tmp_path / "always").iterdir())] == [
        "step-000000003", "step-000000006"]
    assert [p.name for p in sorted((tmp_path / "rare").iterdir())] == ["step-000000006"]
    assert flushed == [6]


def test_a_stop_request_stops_one_process_at_the_next_batch_boundary_sigterm_first():
    """What GracefulInterrupt does with a signal, without sending one: the request is acted on
    at the end of the batch it came in (multi-worker: tests/test_multi_worker.py), and of two
    requests SIGTERM is the one reported (a preempted job must exit as preempted)."""
    model = tiny_model()
    loop = TrainingLoop(model, tf.distribute.get_strategy())

    class SignalAtBatch1(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if loop.global_step() == 1:
                loop.request_stop(signal.SIGINT)
                loop.request_stop(signal.SIGTERM)

    train, interrupt = examples(37), GracefulInterrupt(loop)
    try:
        with pytest.raises(StopRequested) as stop:
            loop.fit(epochs_of(train), 2, 3,
                     callbacks=[interrupt, SignalAtBatch1()], verbose=0)
    finally:
        interrupt.restore()  # the trainer does so after its checkpoint
    assert stop.value.signum == loop.stop_reason == signal.SIGTERM
    assert (loop.epoch, loop.step, loop.global_step()) == (0, 2, 2)


def test_best_model_holds_the_best_epochs_weights_until_flushed(tmp_path):
    model = tiny_model()
    saved = []
    best = BestModel(lambda m, path: saved.append((path, [w.copy() for w in m.get_weights()])),
                     tmp_path / "best.keras", threshold=4.0)
    best.set_model(model)
    weights = {}
    for epoch, val_loss in enumerate([5.0, 3.0, 3.5, 2.0, 2.5]):
        model.set_weights([w + epoch for w in model.get_weights()] if epoch else model.get_weights())
        weights[epoch] = model.get_weights()
        best.on_epoch_end(epoch, {"val_loss": val_loss})
        if epoch == 2:
            best.flush()  # a checkpoint after epoch 2 writes epoch 1's weights (val_loss 3.0)
    best.on_train_end()
    assert [path.name for path, _ in saved] == ["best.keras", "best.keras"]
    for (_, written), epoch in zip(saved, (1, 3)):
        for a, b in zip(written, weights[epoch]):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_weights(), weights[4]):  # the model keeps training's weights
        np.testing.assert_array_equal(a, b)
    best.flush()
    assert len(saved) == 2  # nothing new to write


def test_the_garbage_collector_is_frozen_while_fitting_and_only_then():
    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            frozen.append(gc.get_freeze_count())

    frozen = []
    fit(tiny_model(), [Record()])
    assert len(frozen) == 2 and min(frozen) > 0
    assert gc.get_freeze_count() == 0  # every object is collectable again


def test_the_background_writer_keeps_order_waits_for_every_write_and_raises_the_first_error():
    done, threads = [], set()

    def write(i):
        time.sleep(0.01)
        threads.add(threading.current_thread().name)
        done.append(i)

    with BackgroundWriter(max_pending=2) as writer:
        for i in range(6):
            writer.submit(write, i)
    assert done == list(range(6))  # all written, in order, before the block ended
    assert threads == {"vae_zoo-writer"}

    def fail(i):
        raise OSError(f"disk full at {i}")

    writer = BackgroundWriter()
    writer.submit(fail, 1)
    writer.submit(write, 7)  # skipped: an earlier write failed
    with pytest.raises(OSError, match="disk full at 1"):
        writer.close()
    assert done == list(range(6))

    with pytest.raises(KeyError):  # the block's own error is not replaced by the writer's
        with BackgroundWriter() as writer:
            writer.submit(fail, 2)
            raise KeyError("first")


def tensorboard_values(folder):
    """{(run, tag): [(step, value or PNG bytes), ...]} of every event file under `folder`."""
    values = {}
    for run in ("train", "validation", "images"):
        acc = EventAccumulator(str(folder / run), size_guidance={"tensors": 0})
        acc.Reload()
        for tag in acc.Tags()["tensors"]:
            values[(run, tag)] = [(e.step, tf.make_ndarray(e.tensor_proto).tolist())
                                  for e in acc.Tensors(tag)]
    return values


def test_summaries_written_in_the_background_equal_keras_written_on_the_training_thread(
        tmp_path, monkeypatch):
    preview = np.random.default_rng(1).random((4, 4, 4, 1)).astype("float32")
    scalars = []  # the name of every scalar summary built (tf.summary.scalar calls this)
    real_scalar = tensorboard_v2.scalar
    monkeypatch.setattr(tensorboard_v2, "scalar",
                        lambda name, *a, **k: scalars.append(name) or real_scalar(name, *a, **k))
    keras.utils.set_random_seed(0)
    with BackgroundWriter() as writer:
        fit(tiny_model(), [TensorBoard(str(tmp_path / "ours"), writer=writer, write_graph=False),
                           ImageSummaries(str(tmp_path / "ours"), preview, num_samples=4,
                                          writer=writer)])
    ours, scalars[:] = list(scalars), []
    keras.utils.set_random_seed(0)
    fit(tiny_model(), [keras.callbacks.TensorBoard(str(tmp_path / "keras"), write_graph=False),
                       ImageSummaries(str(tmp_path / "keras"), preview, num_samples=4)])
    # Keras builds (and drops) a summary of every log on each of the 6 batches; ours does not.
    assert sum(name.startswith("batch_") for name in scalars) >= 6
    assert not any(name.startswith("batch_") for name in ours)
    expected = tensorboard_values(tmp_path / "keras")
    assert {tag for _, tag in expected} >= {"epoch_loss", "evaluation_loss_vs_iterations",
                                            "reconstructions", "prior_samples"}
    assert tensorboard_values(tmp_path / "ours") == expected


def test_one_dataset_feeds_the_whole_run_and_a_resumed_run_gets_the_rest_of_it():
    """The loop asks for the batches once per fit (one iterator for every epoch), and for the
    batches from the resume point on; validation is read whole after every epoch."""
    asked = []
    train = examples(37)

    def train_batches(epoch, start_step=0, shard=None, epochs=1):
        asked.append((epoch, start_step, epochs))
        return epochs_of(train)(epoch, start_step, shard, epochs)

    seen = []

    class CountTestBatches(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

    loop = TrainingLoop(tiny_model(), tf.distribute.get_strategy())
    loop.fit(train_batches, 3, 3, validation_data=make_pipeline(examples(10), 8, training=False),
             callbacks=[CountTestBatches()], verbose=0)
    assert asked == [(0, 0, 3)]
    assert seen == [0, 1] * 3  # 10 images in 8 + 2, each epoch
    loop.fit(train_batches, 5, 3, initial_epoch=3, initial_step=1, verbose=0)
    assert asked[1] == (3, 1, 2)
    assert int(loop.model.steps_trained.numpy()) == 9 + 2 + 3
