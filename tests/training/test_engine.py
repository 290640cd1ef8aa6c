"""The one training engine (seqattn.training): several processes, kill -9, reproducibility, guards.

The torchrun tests start real process groups (gloo on localhost) in child processes; each takes
10-30 s on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import Killed, kill_at, make_treebank, seqattn, tiny_tagger_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _env(**more) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT", "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, **more}


def _torchrun(*args: str, processes: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]


def test_two_gloo_processes_reach_the_weights_of_one_process_with_the_same_global_batch(tmp_path):
    """Each rank takes half of every step's sentences; DDP averages the gradients; the loss weights
    make that the one-process gradient.  In float64 the two runs agree to rounding (5e-14 seen);
    in float32 Adam amplifies last-bit differences of the sharded sums (4e-5 after 2 epochs)."""
    script = str(HERE / "ddp_tagger.py")
    subprocess.run([sys.executable, script, str(tmp_path), "one", "--fp64"], check=True, env=_env(),
                   capture_output=True, timeout=300)
    proc = subprocess.run(_torchrun(script, str(tmp_path), "two", "--fp64"), env=_env(OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (load_file(str(tmp_path / n / "model.safetensors")) for n in ("one", "two"))
    assert one.keys() == two.keys() and one["encoder.norm.weight"].dtype == torch.float64
    assert max((one[k] - two[k]).abs().max().item() for k in one) <= 1e-6
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["training"]["processes"] == 2
    assert not (tmp_path / "two.checkpoint").exists() and not (tmp_path / ".two.lock").exists()


def _train_tagger_args(root: Path, out: str, *more: str) -> list[str]:
    return ["-m", "seqattn", "train", "tagger", "--train", str(root / "train.conllu"), "--dev",
            str(root / "dev.conllu"), "--out", str(root / out), "--epochs", "6", "--batch-size", "128",
            "--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff", "64", "--checkpoint-every", "1",
            "--quiet", *more]


def _children(pid: int) -> list[int]:
    """The running child processes of ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_kill_9_of_torchrun_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path):
    make_treebank(tmp_path / "train.conllu", 120, 0), make_treebank(tmp_path / "dev.conllu", 30, 1)
    whole = subprocess.run(_torchrun(*_train_tagger_args(tmp_path, "whole")), env=_env(OMP_NUM_THREADS="1"),
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]

    launcher = subprocess.Popen(_torchrun(*_train_tagger_args(tmp_path, "cut")), env=_env(OMP_NUM_THREADS="1"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = tmp_path / "cut.checkpoint" / "checkpoint.json"
    progress = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and launcher.poll() is None:
            try:
                progress = json.loads(state.read_text())["progress"]
            except (OSError, ValueError, KeyError):
                progress = None
            if progress and progress["epoch"] >= 2 and 0 < progress["step"]:  # mid-epoch, after an epoch
                break
            time.sleep(0.05)
    finally:
        ranks = _children(launcher.pid)
        os.kill(launcher.pid, signal.SIGKILL)  # kill -9 of the launcher: its ranks die with it
        launcher.wait()
        deadline = time.time() + 30
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in ranks):
            time.sleep(0.05)
    assert ranks and not any(Path(f"/proc/{pid}").exists() for pid in ranks), "ranks outlived their launcher"
    assert progress and progress["step"] > 0, "the run ended before a mid-epoch checkpoint was seen"
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    resumed = subprocess.run(_torchrun(*_train_tagger_args(tmp_path, "cut", "--resume",
                                                           str(tmp_path / "cut.checkpoint"))),
                             env=_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (tmp_path / "cut" / "model.safetensors").read_bytes() == \
        (tmp_path / "whole" / "model.safetensors").read_bytes()


def test_same_seed_and_data_give_the_same_bytes_with_the_default_threads(tiny_treebank, tmp_path):
    """docs/training.md promises byte-identical weights for the same seed and data without any
    thread setting (two runs in fresh processes, OMP_NUM_THREADS unset)."""
    args = ["train", "tagger", "--train", str(tiny_treebank[0]), "--dev", str(tiny_treebank[1]), "--epochs", "1",
            "--batch-size", "256", "--quiet"]
    for name in ("a", "b"):
        proc = subprocess.run([sys.executable, "-m", "seqattn", *args, "--out", str(tmp_path / name)], env=_env(),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_resuming_with_another_tasks_checkpoint_is_one_line_and_exit_2(tiny_treebank, tone_manifests, tmp_path):
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from seqattn.training.engine import Callbacks

    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, tmp_path / "tagger", tagger_settings(epochs=2, batch_size=256),
                     tiny_tagger_config(), reporter=Callbacks(on_epoch=kill_at(1)))
    proc = seqattn("train", "speech", "--train", tone_manifests[0], "--out", tmp_path / "speech",
                   "--resume", tmp_path / "tagger.checkpoint")
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1, proc.stderr
    assert b"a checkpoint of a tagger run, not of a speech run" in proc.stderr


def test_resume_names_every_option_that_changed(tiny_treebank, tmp_path):
    from seqattn.models.tagger import TaggerConfig
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from seqattn.training.engine import Callbacks
    from seqattn.training.options import ModelOptions

    config = TaggerConfig()  # what the command below builds, but for --d-model
    ModelOptions(layers=1, d_model=32, heads=2, d_ff=64).apply_to_encoder(config.encoder)
    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, tmp_path / "m", tagger_settings(epochs=3, batch_size=256, seed=1), config,
                     reporter=Callbacks(on_epoch=kill_at(1)))
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out", tmp_path / "m",
                   "--resume", tmp_path / "m.checkpoint", "--epochs", "5", "--seed", "2", "--batch-size", "256",
                   "--layers", "1", "--d-model", "64", "--heads", "2", "--d-ff", "64")
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1
    for name in (b"--epochs (checkpoint 3, now 5)", b"--seed (checkpoint 1, now 2)",
                 b"model encoder.d_model (checkpoint 32, now 64)"):
        assert name in proc.stderr, proc.stderr
    assert b"--layers" not in proc.stderr and b"n_layers" not in proc.stderr  # the same as the checkpoint's
    other = tmp_path / "other.conllu"
    make_treebank(other, 50, 7)
    proc = seqattn("train", "tagger", "--train", other, "--dev", tiny_treebank[1], "--out", tmp_path / "m",
                   "--resume", tmp_path / "m.checkpoint", "--epochs", "3", "--seed", "1", "--batch-size", "256",
                   "--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff", "64")
    assert proc.returncode == 2 and b"--train (other data than the checkpoint's)" in proc.stderr, proc.stderr


@pytest.mark.parametrize("target", ["..", ".", "/", "here"])
def test_out_never_names_the_working_directory_or_its_parents(target, tiny_treebank, tmp_path, monkeypatch):
    """Issue 26: `--out .. --force` from proj/data deleted everything in proj."""
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "notes.txt").write_text("mine")
    monkeypatch.chdir(project / "data")
    out = str(project / "data") if target == "here" else target
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out", out,
                   "--force", "--epochs", "1")
    assert proc.returncode == 2 and proc.stderr.count(b"\n") == 1, proc.stderr
    assert (project / "notes.txt").read_text() == "mine" and (project / "data").is_dir()


def test_force_replaces_only_a_model_directory_and_never_follows_a_symlink(tiny_treebank, tiny_tagger_dir, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    link = tmp_path / "link"
    link.symlink_to(tiny_tagger_dir, target_is_directory=True)
    common = ["train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--epochs", "1", "--force"]
    for out, needle in ((mine, b"only a seqattn model directory"), (link, b"symbolic link"),
                        (tmp_path / "mine" / "thesis.tex" / "m", b"not a directory")):
        proc = seqattn(*common, "--out", out)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert (tiny_tagger_dir / "model.safetensors").is_file()


def test_an_unwritable_out_fails_before_training(tiny_treebank, tmp_path):
    if os.geteuid() == 0:  # root writes anywhere; /proc refuses even root
        out = Path("/proc/seqattn-model")
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        out = locked / "m"
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out", out,
                   "--epochs", "1")
    assert proc.returncode == 2 and b"--out" in proc.stderr and b"epoch 1" not in proc.stderr, proc.stderr


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tiny_treebank, tmp_path):
    from seqattn.training.output import OutLock

    lock = OutLock(tmp_path / "m").acquire()
    try:
        proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1],
                       "--out", tmp_path / "m", "--epochs", "1")
    finally:
        lock.release()
    assert proc.returncode == 2 and b"another run is writing it" in proc.stderr, proc.stderr


def test_recipe_file_sets_options_and_flags_override_it(tiny_treebank, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'train = "{tiny_treebank[0]}"\ndev = "{tiny_treebank[1]}"\nepochs = 2\nlayers = 1\n'
                      'd-model = 32\nheads = 2\nd-ff = 64\nscore = "additive"\nbatch_size = 256\n')
    proc = seqattn("train", "tagger", "--config", recipe, "--epochs", "1", "--out", tmp_path / "m", "--quiet")
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["training"]["settings"]["epochs"] == 1 and saved["training"]["settings"]["batch_size"] == 256
    assert saved["config"]["encoder"]["score"] == "additive" and saved["config"]["encoder"]["n_layers"] == 1
    recipe.write_text("epochs = 'many'\n")
    bad = seqattn("train", "tagger", "--config", recipe, "--out", tmp_path / "n")
    assert bad.returncode == 2 and b"epochs" in bad.stderr
    recipe.write_text("windw = 3\n")
    bad = seqattn("train", "tagger", "--config", recipe, "--out", tmp_path / "n")
    assert bad.returncode == 2 and b"unknown option 'windw'" in bad.stderr


@pytest.mark.parametrize("args,needle", [
    (["--dropout", "2"], b"--dropout"), (["--lr", "-1"], b"--lr"), (["--label-smoothing", "1.5"], b"--label-smoothing"),
    (["--layers", "0"], b"--layers"), (["--max-minutes", "-1"], b"--max-minutes"), (["--epochs", "0"], b"--epochs"),
    (["--seed", "1e23"], b"--seed"), (["--score", "cosine"], b"--score"), (["--positional", "rotary"], b"--positional"),
    (["--attention-activation", "tanh"], b"--attention-activation"), (["--heads", "3"], b"divisible"),
    (["--positional", "relative", "--attention-window", "-1"], b"relative"),
])
def test_option_ranges_are_checked_before_any_work(args, needle, tiny_treebank, tmp_path):
    proc = seqattn("train", "tagger", "--train", tiny_treebank[0], "--dev", tiny_treebank[1], "--out",
                   tmp_path / "m", *args)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count(b"\n") == 1, proc.stderr
    assert not (tmp_path / "m").exists()


def _killed_tagger_run(tiny_treebank, out: Path):
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from seqattn.training.engine import Callbacks

    settings = tagger_settings(epochs=2, batch_size=256)
    with pytest.raises(Killed):
        train_tagger(*tiny_treebank, out, settings, tiny_tagger_config(), reporter=Callbacks(on_epoch=kill_at(1)))
    return settings


@pytest.mark.parametrize("damage", ["nan weights", "wrong shape", "no progress", "nested json", "not json",
                                    "missing tensor file"])
def test_a_damaged_checkpoint_is_one_error_and_exit_2(damage, tiny_treebank, tmp_path):
    from safetensors.torch import save_file

    from seqattn.tasks.tagging import train_tagger

    settings = _killed_tagger_run(tiny_treebank, tmp_path / "m")
    checkpoint = tmp_path / "m.checkpoint"
    state_path, tensor_path = checkpoint / "checkpoint.json", checkpoint / "checkpoint.safetensors"
    tensors = load_file(str(tensor_path))
    state = json.loads(state_path.read_text())
    if damage == "nan weights":
        tensors["model.head.proj.weight"][0, 0] = float("nan")
        save_file(tensors, str(tensor_path))
    elif damage == "wrong shape":
        tensors["model.head.proj.weight"] = torch.zeros(3, 3)
        save_file(tensors, str(tensor_path))
    elif damage == "no progress":
        del state["progress"]
        state_path.write_text(json.dumps(state))
    elif damage == "nested json":
        state_path.write_text("[" * 100000 + "]" * 100000)
    elif damage == "not json":
        state_path.write_bytes(b"\xff\xfe garbage")
    else:
        tensor_path.unlink()
    from seqattn.errors import ModelError

    with pytest.raises(ModelError, match="--resume"):
        train_tagger(*tiny_treebank, tmp_path / "m", settings, tiny_tagger_config(), resume=checkpoint)


def test_a_full_disk_while_checkpointing_is_one_error_exit_1_and_keeps_the_last_checkpoint(tiny_treebank, tmp_path,
                                                                                           monkeypatch):
    """Issue 26: a full disk in training was "unexpected SafetensorError"."""
    import safetensors.torch
    from safetensors import SafetensorError

    from seqattn.errors import SeqattnError
    from seqattn.tasks.tagging import tagger_settings, train_tagger
    from seqattn.training.engine import Callbacks

    real, writes = safetensors.torch.save_file, []

    def full_after_first(tensors, path, *args, **kwargs):
        writes.append(path)
        if len(writes) > 1:
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                  "message: \"No space left on device\" })")
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", full_after_first)
    with pytest.raises(SeqattnError, match="cannot write the checkpoint") as caught:
        train_tagger(*tiny_treebank, tmp_path / "m", tagger_settings(epochs=3, batch_size=256), tiny_tagger_config(),
                     reporter=Callbacks())
    assert caught.value.exit_code == 1 and "No space left" in str(caught.value)
    state = json.loads((tmp_path / "m.checkpoint" / "checkpoint.json").read_text())
    assert state["progress"]["epoch"] == 2  # the checkpoint after epoch 1 is intact
    assert not list(tmp_path.glob(".m.checkpoint.*"))  # no half-written temporary left behind
