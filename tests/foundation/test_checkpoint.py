"""Safe loading (issue 15 part 3): a checkpoint that pickles an arbitrary object is refused with a
short error and nothing in it runs; the checkpoints the pipeline writes hold only tensors and plain types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from crossmatch.checkpoint import check_plain, load_checkpoint, save_checkpoint
from crossmatch.errors import InputError
from crossmatch.icpa import build_model, model_payload
from crossmatch.icpa.config import ModelConfig
from crossmatch.icpa.train import model_from_payload
from tests.conftest import run_stage
from tests.icpa.helpers import toy_graph


def _plant(marker: str) -> str:
    """What a planted checkpoint would run on a full unpickle: leave a marker file."""
    Path(marker).write_text("code ran")
    return "planted"


class _Planted:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _plant, (self.marker,)


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A WeaveNet-shaped checkpoint with one pickled object inside, and the marker it would write."""
    marker = tmp_path / "marker"
    path = tmp_path / "planted.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "config": {}, "train": {"note": _Planted(marker)}}, path)
    return path, marker


def test_full_unpickle_would_run_the_planted_code(planted: tuple[Path, Path]) -> None:
    path, marker = planted  # the threat is real: without weights_only the marker is written
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_planted_object_is_refused_and_not_run(planted: tuple[Path, Path]) -> None:
    path, marker = planted
    with pytest.raises(InputError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and "refused" in msg and "_plant" in msg and len(msg) <= 500
    assert not marker.exists()


@pytest.mark.parametrize("stage, params", [
    ("weavenet_eval", "weavenet_eval: {{}}\n"),
    ("weavenet_train", "weavenet_train: {{init_checkpoint: '{ckpt}', steps: 0}}\n"),
])
def test_stages_refuse_a_planted_checkpoint(stage: str, params: str, planted: tuple[Path, Path],
                                            tmp_path: Path) -> None:
    path, marker = planted
    (tmp_path / "params.yaml").write_text(params.format(ckpt=path))
    out = tmp_path / "out"
    args = ["--params", str(tmp_path / "params.yaml"), "--metrics", str(out / "m.json")]
    args += ["--model", str(path)] if stage == "weavenet_eval" else ["--out", str(out / "w.pt")]
    proc = run_stage(stage, *args)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and "refused" in err and str(path) in err and len(err) <= 500, err
    assert not marker.exists() and not out.exists()


def test_a_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_text("not a torch file")
    with pytest.raises(InputError, match="not a torch checkpoint"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_save_refuses_what_would_not_load(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"checkpoint\['train'\]\['seconds'\] is a numpy.float64"):
        save_checkpoint({"train": {"seconds": np.float64(1.5)}}, tmp_path / "a.pt")
    with pytest.raises(TypeError, match=r"checkpoint\['config'\] is a .*ModelConfig"):
        save_checkpoint({"config": ModelConfig()}, tmp_path / "b.pt")
    assert not any(tmp_path.iterdir())
    plain = {"w": torch.ones(2), "cfg": {"hidden": [16, 8], "tower": "mlp", "lr": 0.1, "on": True, "none": None},
             "shape": (2, 3)}
    save_checkpoint(plain, tmp_path / "c.pt")
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["cfg"] == plain["cfg"] and back["shape"] == (2, 3) and torch.equal(back["w"], plain["w"])


def test_icpa_model_payload_is_plain_and_round_trips(tmp_path: Path) -> None:
    graph = toy_graph(sizes=(12, 10))
    model = build_model(graph.schemas, len(graph.categories), ModelConfig(hidden=(16, 8)), 0)
    payload = model_payload(model, {"run": "p1", "sources": list(graph.names)})
    check_plain(payload)
    save_checkpoint(payload, tmp_path / "m.pt")
    again = model_from_payload(load_checkpoint(tmp_path / "m.pt"))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                 strict=True))


def test_icpa_stages_refuse_a_planted_model_and_ignore_a_planted_training_checkpoint(
        planted: tuple[Path, Path], tmp_path: Path) -> None:
    """stages/_icpa.py: a planted model file is a clear InputError; a planted resume checkpoint is
    refused (not run) and training starts over."""
    from stages._icpa import Checkpoints, load_model

    path, marker = planted
    with pytest.raises(InputError, match="refused"):
        load_model(path)
    ck = Checkpoints(tmp_path / "ck")
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "run.pt").write_bytes(path.read_bytes())
    assert ck.load("run", "any-tag") is None
    assert not marker.exists()


def test_one_checkpoint_is_one_file_whatever_its_name(tmp_path: Path) -> None:
    """DVC hashes outputs: the same model saved under two names (an atomic write's temporary name) must be the
    same bytes, or every stage downstream of a re-emitted checkpoint re-runs."""
    obj = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "config": {"layers": 2}, "train": {"steps": 0}}
    a, b = tmp_path / "weavenet.pt", tmp_path / "tmp-81x2k.pt"
    save_checkpoint(obj, a)
    save_checkpoint(obj, b)
    assert a.read_bytes() == b.read_bytes()
    assert torch.equal(load_checkpoint(b)["state_dict"]["w"], obj["state_dict"]["w"])
