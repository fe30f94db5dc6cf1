"""Devices on a machine without CUDA: tensors live on the CPU and asking for CUDA/MPS is a clear
RuntimeError. CuPy is made unimportable here, so these hold on a GPU machine too; the cuda device
itself is tested in tests/test_cuda_device.py."""
import sys

import pytest

import fake_cupy
import graphc as torch


@pytest.fixture(autouse=True)
def _no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ImportError
    fake_cupy.reset_runtime(monkeypatch)


def test_device_objects():
    d = torch.device("cpu")
    assert repr(d) == "device(type='cpu')" and str(d) == "cpu"
    assert d.type == "cpu" and d.index is None
    assert d == torch.device("cpu") and hash(d) == hash(torch.device("cpu"))
    assert {torch.device("cpu"): 1}[torch.device("cpu")] == 1
    assert repr(torch.device("cuda", 1)) == "device(type='cuda', index=1)"
    assert repr(torch.device("cuda:0")) == "device(type='cuda', index=0)"
    assert str(torch.device("cuda:0")) == "cuda:0"
    assert repr(torch.device("cpu", 0)) == "device(type='cpu', index=0)"
    assert torch.device(torch.device("cpu")) == d


def test_bad_device_strings():
    with pytest.raises(RuntimeError, match="Expected one of .*cpu.*cuda.* device type at start of device string: foo"):
        torch.device("foo")
    with pytest.raises(RuntimeError):
        torch.device("cuda:x")


def test_availability_queries():
    assert torch.cuda.is_available() is False
    assert torch.cuda.device_count() == 0
    assert torch.accelerator.is_available() is False
    assert torch.backends.mps.is_available() is False


def test_tensors_are_on_cpu():
    t = torch.ones(2)
    assert t.device == torch.device("cpu") and repr(t.device) == "device(type='cpu')"
    assert t.is_cpu and not t.is_cuda and not t.is_mps and t.get_device() == -1
    assert t.to("cpu") is t and t.cpu() is t
    assert t.to(torch.device("cpu")) is t
    for make in (lambda: torch.ones(2, device="cpu"), lambda: torch.ones(2, device=torch.device("cpu")),
                 lambda: torch.tensor([1], device="cpu"), lambda: torch.zeros(2, device="cpu:0")):
        assert make().device.type == "cpu"


def test_device_agnostic_idiom():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    t = torch.randn(3, device=device)
    assert t.device.type == "cpu"


@pytest.mark.parametrize("call", [
    lambda: torch.ones(2).to("cuda"),
    lambda: torch.ones(2).to(torch.device("cuda:0")),
    lambda: torch.ones(2).to("cuda", torch.float64),
    lambda: torch.ones(2).to(device="cuda"),
    lambda: torch.ones(2).cuda(),
    lambda: torch.ones(2, device="cuda"),
    lambda: torch.zeros(2, device="cuda"),
    lambda: torch.empty(2, device="cuda"),
    lambda: torch.full((2,), 1.0, device="cuda"),
    lambda: torch.tensor([1.0], device="cuda"),
    lambda: torch.as_tensor([1.0], device="cuda"),
    lambda: torch.arange(3, device="cuda"),
    lambda: torch.linspace(0, 1, 3, device="cuda"),
    lambda: torch.eye(2, device="cuda"),
    lambda: torch.rand(2, device="cuda"),
    lambda: torch.randn(2, device="cuda"),
    lambda: torch.randint(0, 3, (2,), device="cuda"),
    lambda: torch.randperm(3, device="cuda"),
    lambda: torch.zeros_like(torch.ones(2), device="cuda"),
    lambda: torch.rand_like(torch.ones(2), device="cuda"),
    lambda: torch.ones(2).new_zeros(2, device="cuda"),
    lambda: torch.ones(2).new_full((2,), 1.0, device="cuda"),
    lambda: torch.ones(2).new_tensor([1.0], device="cuda"),
    lambda: torch.cuda.current_device(),
])
def test_cuda_requests_raise_clear_error(call):
    with pytest.raises(RuntimeError) as info:
        call()
    msg = str(info.value)
    assert "CUDA" in msg and "is_available() is False" in msg
    assert isinstance(info.value, AssertionError)   # PyTorch without CUDA raises AssertionError


def test_mps_request_raises():
    with pytest.raises(RuntimeError, match="MPS"):
        torch.tensor([1.0], device="mps")
    with pytest.raises(RuntimeError, match="MPS"):
        torch.ones(2).to("mps")
