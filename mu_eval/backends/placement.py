"""Where a model's weights go when one device is not enough: accelerate's big-model loading.

`--model-args parallelize=true` (lm-evaluation-harness's word for it) or `device_map=auto` lets accelerate
spread the layers over the visible GPUs, then the CPU, then disk (`offload_folder`), within `max_memory` per
device. Requests still enter at one device, the first one the map uses; accelerate's hooks move each
layer's inputs to the device that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mu_eval.options import OptionError, option

#: The strategies `from_pretrained(device_map=...)` takes by name; a device name (cpu, cuda:1) is taken too.
STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass
class PlacementArgs:
    """The placement keys of `--model-args`; a backend's options dataclass inherits them."""

    parallelize: bool = option(False, help="spread the model over the visible GPUs (then CPU): device_map=auto")
    device_map: str | None = option(None, help="accelerate device map: auto, balanced, balanced_low_0, "
                                    "sequential, or one device (cpu, cuda:1)")
    max_memory: tuple[str, ...] = option((), help="memory per device for device_map, DEVICE:SIZE items, "
                                         "e.g. 0:20GiB+1:20GiB+cpu:64GiB")
    offload_folder: str | None = option(None, help="folder for the weights device_map puts on disk")

    def placement(self) -> str | None:
        """The device map asked for (parallelize means auto), or None for one device."""
        if self.parallelize and self.device_map not in (None, "auto"):
            raise OptionError(f"parallelize=true is device_map=auto; it cannot go with device_map={self.device_map}")
        return self.device_map or ("auto" if self.parallelize else None)

    def placement_kwargs(self, device: str | None = None) -> dict[str, Any]:
        """The keyword arguments of `from_pretrained` that place the model ({} for one device, where the
        caller moves the model to `device` itself). `device` is the one the user named, if any."""
        device_map = self.placement()
        if device_map is None:
            for name in ("max_memory", "offload_folder"):
                if getattr(self, name):
                    raise OptionError(f"{name} applies to a device map: add parallelize=true or device_map=auto")
            return {}
        if device is not None:
            raise OptionError(f"device_map={device_map} places the model itself; drop --device {device} "
                              "(or name the device as device_map)")
        kwargs: dict[str, Any] = {"device_map": device_map}
        if self.max_memory:
            kwargs["max_memory"] = parse_max_memory(self.max_memory)
        if self.offload_folder:
            kwargs["offload_folder"] = self.offload_folder
        return kwargs

    def dtype_device(self, device: str) -> str:
        """The device whose default dtype `dtype=auto` takes: the GPU unless everything stays on the CPU."""
        return "cpu" if self.placement() == "cpu" else device


#: The placement keys: where the weights sit does not change an answer, so they stay out of the model identity.
PLACEMENT_KEYS = ("parallelize", "device_map", "max_memory", "offload_folder")


def parse_max_memory(items: tuple[str, ...]) -> dict[int | str, int | str]:
    """`("0:20GiB", "cpu:64GiB")` -> `{0: "20GiB", "cpu": "64GiB"}`, each size checked by accelerate; a plain
    number is bytes."""
    from accelerate.utils import convert_file_size_to_int

    memory: dict[int | str, int | str] = {}
    for item in items:
        device, separator, size = item.partition(":")
        device, size = device.strip(), size.strip()
        if not separator or not device or not size:
            raise OptionError(f"max_memory item {item!r}: expected DEVICE:SIZE, e.g. 0:20GiB or cpu:64GiB")
        try:
            convert_file_size_to_int(int(size) if size.isdigit() else size)
        except ValueError:
            raise OptionError(f"max_memory item {item!r}: {size!r} is not a size such as 20GiB or 500MB") from None
        key: int | str = int(device) if device.isdigit() else device
        if key in memory:
            raise OptionError(f"max_memory names {device!r} twice")
        memory[key] = int(size) if size.isdigit() else size
    return memory


def input_device(model: Any) -> Any:
    """The device a model's inputs go to: for a model placed by a device map, the first accelerator it uses
    (where accelerate runs the layers it keeps on the CPU or disk), else the CPU; otherwise the device of its
    first parameter."""
    import torch

    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        return next(model.parameters()).device
    placed = [device for device in device_map.values() if device not in ("cpu", "disk")]
    if not placed:
        return torch.device("cpu")
    return torch.device("cuda", placed[0]) if isinstance(placed[0], int) else torch.device(placed[0])
