"""Pick the training device: CUDA, then Apple MPS, then CPU, or the one named."""

from __future__ import annotations

import torch

from .errors import UserInputError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError(f"device {name} was asked for, but this machine has no usable CUDA GPU; "
                                 "use train.device: auto or cpu")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(f"device {name} does not exist; this machine has "
                                 f"{torch.cuda.device_count()} CUDA GPU(s)")
        return device
    if name == "mps":
        if not _mps_available():
            raise UserInputError("device mps was asked for, but Apple MPS is not available here; "
                                 "use train.device: auto or cpu")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise UserInputError(f"unknown device {name!r}; use auto, cpu, mps, cuda or cuda:N")


def available_devices() -> list[str]:
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
