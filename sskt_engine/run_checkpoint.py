"""A run's checkpoints, ``checkpoints/last.pt`` and ``best.pt``: their one reader and writer.

A checkpoint is a dict that ``torch.save`` writes and ``torch.load(weights_only=True)`` reads
back (tensors and plain data only, so reading one can run no code):

==================  ================================================================
``format``          ``"sskt-studio-checkpoint"``; ``version``: 1
``models``          network name -> state_dict (what the method trains)
``optimizers``      network name -> optimizer state_dict
(other keys)        what else the method keeps (MAXL: ``generator``); passed back to it
``epoch``           epochs completed; ``global_step``: optimizer steps taken
``best_val_acc``    the best value of the task's headline metric so far (the key keeps its
                    first name so older files read the same); ``best_epoch``: 0-based
``skipped_steps``   batches skipped for a NaN/infinite loss, all epochs so far
``scaler``          the AMP GradScaler's state, or None
``rng``             ``{"torch": ByteTensor, "cuda": [ByteTensor, ...]}``
``preset``          the preset's YAML text
``meta``            ``CheckpointMeta``: what export, sources and the GUI need to rebuild the
                    trained network without the preset
``records``         the epoch's records as text: ``epoch_end`` (the EpochEnd line of
                    metrics.jsonl), ``eval`` (eval/last.json), ``is_best``. Written with the
                    checkpoint, so that a resume can write whichever of them a crash (a full
                    disk copying best.pt) kept from reaching the run folder. Older files: none
==================  ================================================================

Checkpoints of every earlier version of this app have this layout; ``RunCheckpoint.read``
refuses anything else with one sentence.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_with
from .errors import UserInputError

CHECKPOINT_FORMAT = "sskt-studio-checkpoint"
CHECKPOINT_VERSION = 1
_OWN_KEYS = ("format", "version", "epoch", "global_step", "best_val_acc", "best_epoch", "skipped_steps", "scaler",
             "rng", "preset", "meta", "records")


class CheckpointError(UserInputError):
    """A run's checkpoint is missing, damaged, refused or not of this app; the message says which."""


# ----------------------------------------------------------------------------- meta

@dataclass(frozen=True)
class CheckpointMeta:
    """What a checkpoint says about the network it holds, for anyone rebuilding it."""

    arch: str  # the exported network's architecture
    num_classes: int
    class_names: tuple[str, ...]
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    method: str
    export_network: str  # the network exported (and used as a source) by default
    networks: dict[str, str]  # every trained network: name -> architecture
    sources: tuple[dict[str, Any], ...] = ()  # FrozenSource.describe() of each source
    val: dict[str, float] = field(default_factory=dict)  # the epoch's validation numbers
    multi_label: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer version wrote: kept, not read

    def arch_of(self, network: str) -> str:
        return self.networks.get(network, self.arch)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "arch": self.arch, "num_classes": self.num_classes,
                "class_names": list(self.class_names), "input_size": self.input_size, "mean": list(self.mean),
                "std": list(self.std), "method": self.method, "export_network": self.export_network,
                "networks": {name: {"arch": arch} for name, arch in self.networks.items()},
                "sources": [dict(s) for s in self.sources], "val": dict(self.val), "multi_label": self.multi_label}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "CheckpointMeta":
        """Validate what a file holds; a value that could not size a network is one sentence."""
        from .model_files import checked_class_count

        if not isinstance(raw, dict) or not raw:
            raise CheckpointError(f"{where} holds no description of its network")
        for key in ("arch", "num_classes", "input_size", "mean", "std"):
            if key not in raw:
                raise CheckpointError(f"{where} does not say its network's {key}")
        try:
            num_classes = checked_class_count(raw["num_classes"], where)
        except UserInputError as exc:
            raise CheckpointError(str(exc)) from None
        if num_classes is None:
            raise CheckpointError(f"{where} does not say its network's num_classes")
        input_size = raw["input_size"]
        if isinstance(input_size, bool) or not isinstance(input_size, int) or not 8 <= input_size <= 4096:
            raise CheckpointError(f"{where}: its metadata gives an impossible input size ({str(input_size)[:40]})")
        networks_raw = raw.get("networks") or {}
        networks = {str(name): str(value.get("arch", raw["arch"]) if isinstance(value, dict) else raw["arch"])
                    for name, value in (networks_raw.items() if isinstance(networks_raw, dict) else ())}
        known = {"arch", "num_classes", "class_names", "input_size", "mean", "std", "method", "export_network",
                 "networks", "sources", "val", "multi_label"}
        return cls(arch=str(raw["arch"]), num_classes=num_classes,
                   class_names=tuple(str(n) for n in raw.get("class_names") or ()), input_size=input_size,
                   mean=_triple(raw["mean"], "mean", where), std=_triple(raw["std"], "std", where),
                   method=str(raw.get("method", "")), export_network=str(raw.get("export_network") or "target"),
                   networks=networks or {str(raw.get("export_network") or "target"): str(raw["arch"])},
                   sources=tuple(s for s in raw.get("sources") or () if isinstance(s, dict)),
                   val={str(k): v for k, v in (raw.get("val") or {}).items()},
                   multi_label=bool(raw.get("multi_label", False)),
                   extra={k: v for k, v in raw.items() if k not in known})


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _triple(value: Any, key: str, where: str) -> tuple[float, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise CheckpointError(f"{where}: its metadata gives an impossible {key} ({str(value)[:60]})")
    return tuple(float(v) for v in value)


# ----------------------------------------------------------------------------- the checkpoint

@dataclass
class RunCheckpoint:
    """One checkpoint of a run (see the module's docstring for the file's layout)."""

    models: dict[str, dict[str, torch.Tensor]]
    optimizers: dict[str, Any]
    epoch: int  # epochs completed
    global_step: int
    best_score: float | None  # stored as best_val_acc; None (or -1.0 in older files) before any epoch
    best_epoch: int  # 0-based
    skipped_steps: int
    scaler: dict[str, Any] | None
    rng: dict[str, Any]
    preset: str
    meta: CheckpointMeta
    method_extra: dict[str, Any] = field(default_factory=dict)  # other keys of the method's state_dict
    version: int = CHECKPOINT_VERSION
    records: dict[str, Any] = field(default_factory=dict)  # the epoch's log line and eval report, as text

    # -- the method's part ----------------------------------------------------------------
    @classmethod
    def from_method_state(cls, state: dict[str, Any], **fields: Any) -> "RunCheckpoint":
        """A checkpoint of ``method.state_dict()`` (models, optimizers and anything else the
        method keeps) plus the trainer's ``fields``."""
        extra = {k: v for k, v in state.items() if k not in ("models", "optimizers")}
        return cls(models=state["models"], optimizers=state["optimizers"], method_extra=extra, **fields)

    def method_state(self) -> dict[str, Any]:
        """What ``method.load_state_dict`` takes back."""
        return {**self.method_extra, "models": self.models, "optimizers": self.optimizers}

    def backbone_weights(self, network: str) -> dict[str, torch.Tensor]:
        """The bare network's tensors (the trained model without the aux heads around it)."""
        return {k[len("backbone."):]: v for k, v in self.models[network].items() if k.startswith("backbone.")}

    # -- the file ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {**self.method_state(), "format": CHECKPOINT_FORMAT, "version": self.version, "epoch": self.epoch,
                "global_step": self.global_step, "best_val_acc": self.best_score, "best_epoch": self.best_epoch,
                "skipped_steps": self.skipped_steps, "scaler": self.scaler, "rng": self.rng, "preset": self.preset,
                "meta": self.meta.to_dict(), "records": dict(self.records)}

    def save(self, path: Path) -> None:
        """Write atomically: a crash leaves the previous checkpoint whole."""
        state = self.to_dict()
        atomic_write_with(path, lambda tmp: torch.save(state, tmp))

    @staticmethod
    def copy(source: Path, target: Path) -> None:
        """``best.pt`` is ``last.pt`` of the best epoch: copied, atomically, not written twice."""
        atomic_write_with(target, lambda tmp: shutil.copyfile(source, tmp))

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> "RunCheckpoint":
        if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict) or not raw["models"]:
            raise CheckpointError(f"{where} holds no trained network; it is not a checkpoint of SSKT Studio")
        missing = [key for key in ("epoch", "meta") if key not in raw]
        if missing:
            raise CheckpointError(f"{where} lacks {', '.join(missing)}; it is not a checkpoint of SSKT Studio")
        meta = CheckpointMeta.from_dict(raw["meta"], where)
        try:
            return cls(models=raw["models"], optimizers=dict(raw.get("optimizers") or {}), epoch=int(raw["epoch"]),
                       global_step=int(raw.get("global_step", 0)), best_score=_float_or_none(raw.get("best_val_acc")),
                       best_epoch=int(raw.get("best_epoch", -1)), skipped_steps=int(raw.get("skipped_steps", 0)),
                       scaler=raw.get("scaler"), rng=dict(raw.get("rng") or {}), preset=str(raw.get("preset", "")),
                       meta=meta, version=int(raw.get("version", CHECKPOINT_VERSION)),
                       records=dict(raw["records"]) if isinstance(raw.get("records"), dict) else {},
                       method_extra={k: v for k, v in raw.items() if k not in _OWN_KEYS + ("models", "optimizers")})
        except (TypeError, ValueError):
            raise CheckpointError(f"{where} is damaged: its counters are not numbers") from None

    @classmethod
    def read(cls, path: Path, where: str, map_location: str | torch.device = "cpu") -> "RunCheckpoint":
        """Read and check a checkpoint. ``where`` names it in sentences, e.g. ``the last checkpoint
        of run X``; every refusal is a ``CheckpointError`` saying what is wrong."""
        if not path.exists():
            raise CheckpointError(f"{where} does not exist ({path})")
        if not path.is_file():
            raise CheckpointError(f"{where} cannot be read ({path} is not a file)")
        from .model_files.inflation import check_inflation

        try:
            check_inflation(path, where)
        except UserInputError as exc:
            raise CheckpointError(str(exc)) from None
        try:
            raw = torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(f"{where} was refused: it holds Python objects other than tensors, whose "
                                  "unpickling could run code on this machine") from None
        except Exception as exc:  # noqa: BLE001  a damaged file makes torch.load raise almost anything
            raise CheckpointError(f"{where} cannot be read ({type(exc).__name__})") from None
        return cls.from_dict(raw, where)

