"""crossmatch.device.resolve_device: the one device resolver of ICPA and WeaveNet."""

from __future__ import annotations

import pytest
import torch

from crossmatch.device import resolve_device
from crossmatch.errors import ConfigError
from crossmatch.icpa import resolve_device as icpa_resolve_device
from crossmatch.twosided.weavenet.train import resolve_device as weavenet_resolve_device


def test_one_resolver_everywhere():
    assert icpa_resolve_device is resolve_device and weavenet_resolve_device is resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device().type == resolve_device("auto").type


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")


def test_a_name_that_is_no_device_is_a_config_error():
    with pytest.raises(ConfigError, match="bad device 'gpu0'"):
        resolve_device("gpu0")
