"""Stop requests: SLURM's signals set a flag (and keep the previous handler for later), and a
sweep task's submitit checkpoint hook requeues the same run."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from fermixnet.config import Config
from fermixnet.engine.preemption import StopRequest
from fermixnet.engine.sweep_launch import RunTask


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_sets_the_flag_instead_of_ending_the_process(sig):
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), sig)
        assert stop.requested and stop.received == sig
    # Still alive: the default action of both signals would have ended the test process.


def test_first_signal_wins_and_handlers_are_restored():
    calls = []
    before = signal.signal(signal.SIGUSR1, lambda s, f: calls.append(s))
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGUSR1)
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.received == signal.SIGUSR1 and calls == []
        os.kill(os.getpid(), signal.SIGUSR1)  # our own handler is back
        assert calls == [signal.SIGUSR1]
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_forward_calls_the_previous_handler_once_asked():
    requeued = []
    before = signal.signal(signal.SIGUSR2, lambda s, f: requeued.append(s))
    try:
        with StopRequest([signal.SIGUSR2]) as stop:
            stop.forward()  # nothing received yet: nothing forwarded
            os.kill(os.getpid(), signal.SIGUSR2)
            assert requeued == []  # deferred to the step boundary
            stop.forward()
            assert requeued == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, before)


def test_install_outside_the_main_thread_fails():
    errors = []

    def target():
        try:
            StopRequest().install()
        except RuntimeError as err:
            errors.append(err)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_task_checkpoint_requeues_the_same_run(tmp_path):
    submitit = pytest.importorskip("submitit")
    run = tmp_path / "cfg" / "seed0"
    run.mkdir(parents=True)
    cfg = Config.from_dict({"name": "cfg"}).to_dict()
    task = RunTask()
    delayed = task.checkpoint(cfg, str(run))
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is task and delayed.args == (cfg, str(run))
    assert json.loads((run / "task.json").read_text())["state"] == "requeued"


def test_a_requeued_task_stays_requeued_when_submitit_exits_it(tmp_path):
    """submitit's handler calls checkpoint() and then sys.exit(); the record must keep saying
    'requeued' so that neither --status nor a resubmission takes the run for stopped."""
    pytest.importorskip("submitit")
    run = tmp_path / "cfg" / "seed0"
    cfg = Config.from_dict({"name": "cfg"}).to_dict()

    def preempted_fit(cfg_obj, out_dir, resume=False):
        task.checkpoint(cfg, str(run))
        raise SystemExit(-1)

    task = RunTask(preempted_fit)
    with pytest.raises(SystemExit):
        task(cfg, str(run))
    assert json.loads((run / "task.json").read_text())["state"] == "requeued"
