"""The training loop: schedule, evaluation, checkpoints, resume, stop, events.

``Trainer(config, ...).run()`` builds everything first (bad input raises a
``UserInputError`` before any run folder exists), then trains, writing every
event to the run folder and passing it to ``on_event``. Failures during
training never raise: the run is marked failed and ``RunFailed`` says why.
Per-step work stays on the device: losses are summed as tensors and read back
once every ``log_every`` steps, so the loop costs what hand-written PyTorch does.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import threading
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import events as ev
from .atomic import atomic_write_text
from .cancellation import stop_checks
from .clip_sources import check_sources_fit
from .config import ExperimentConfig, dumps_preset
from .data import DatasetSplits, load_dataset, normalised_for_target
from .data.batches import BatchStream
from .data.clip_batches import average_views, batch_stream
from .device import device_description, resolve_device
from .distributed import DistContext
from .errors import StoppedBeforeStart, TrainingFailed, UserInputError
from .eval_report import EvalReport
from .methods import METHODS
from .methods.base import MethodContext, TrainingMethod
from .metrics_file import read_log
from .runs import FAILED, FINISHED, RUNNING, STOPPED, MetricsLog, RunFolder, default_runs_root, library_versions, now_iso
from .run_checkpoint import CheckpointError, CheckpointMeta, RunCheckpoint
from .run_lock import RunBusy, RunLock
from .run_summary import NO_SELECTION_REASON, RunSummary
from .schedule import lr_factor
from .soft_labels import SoftLabels
from .sources import SourceEnsemble, build_source, source_settings
from .stale_files import remove_run_temporaries
from .tasks import Task, task_for_data


@dataclass
class _EpochRecords:
    """What an epoch's end writes besides last.pt; also stored inside last.pt (``records``),
    so that a resume writes whatever of it a crash kept from the run folder."""

    event: ev.EpochEnd
    report: EvalReport
    is_best: bool
    # The test split's scores as the summary holds them after this epoch (a held-out validation
    # split only): a process that died before writing summary.json would otherwise lose them.
    best_test_score: float | None = None
    final_test_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        # The report compressed: with 1,000 classes its confusion matrix is 3 MB of JSON, mostly
        # zeros, written into every epoch's last.pt; zlib makes it 43 kB (measured).
        return {"epoch_end": ev.to_json(self.event), "eval_zlib": zlib.compress(self.report.to_json().encode(), 6),
                "is_best": self.is_best, "best_test_score": self.best_test_score,
                "final_test_score": self.final_test_score}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "_EpochRecords | None":
        event = ev.from_json(raw.get("epoch_end", "")) if isinstance(raw.get("epoch_end"), str) else None
        text = raw.get("eval") if isinstance(raw.get("eval"), str) else _inflate(raw.get("eval_zlib"))
        report = EvalReport.from_json(text) if text is not None else None
        if not isinstance(event, ev.EpochEnd) or report is None:
            return None
        return cls(event, report, bool(raw.get("is_best")), _score_or_none(raw.get("best_test_score")),
                   _score_or_none(raw.get("final_test_score")))


def _score_or_none(value: Any) -> float | None:
    """A score read from a checkpoint (which may come from anyone): a finite number, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


MAX_RECORD_BYTES = 256 * 1024 * 1024  # an eval report inflated past this is a hostile file, not a report


def _inflate(data: Any) -> str | None:
    """The compressed eval report of a checkpoint's records; None when it is missing, damaged, or
    would inflate past ``MAX_RECORD_BYTES`` (a checkpoint may come from anyone: no zip bomb)."""
    if not isinstance(data, bytes):
        return None
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, MAX_RECORD_BYTES)
        if inflater.unconsumed_tail:
            return None
        return out.decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def _busy_sentence(folder: RunFolder) -> str:
    return (f"run {folder.path.name} is in use by another process (training, resuming or exporting into it); "
            "wait for it to end, or stop it, and try again")


@dataclass
class _Setup:
    device: torch.device
    data: DatasetSplits
    task: Task
    method: TrainingMethod
    train_stream: BatchStream
    val_stream: BatchStream
    test_stream: BatchStream | None = None  # the dataset's test split when val was held out of train


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}#{count + 1}")
    return out


def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True


class Trainer:
    def __init__(self, config: ExperimentConfig, runs_root: str | os.PathLike | None = None,
                 on_event: ev.EventHandler | None = None, stop_event: threading.Event | None = None,
                 *, run_folder: RunFolder | None = None):
        self.config = config
        self.runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
        self.on_event = on_event
        self.stop_event = stop_event or threading.Event()
        self.run_folder = run_folder  # set for a resume: train on in this folder
        self._log: MetricsLog | None = None
        self.dist = DistContext.from_env()  # several ranks when started by torchrun
        self.fault_hook: Callable[[int, int], None] | None = None  # tests inject failures here
        self._skipped_before = 0  # batches skipped (nan_policy skip) before the checkpoint resumed from
        self._lock: RunLock | None = None  # the run folder's lock, held from before setup to the end
        self._resume_notes: list[str] = []  # what resume found and repaired, logged once the log is open

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, runs_root: str | os.PathLike | None = None,
               on_event: ev.EventHandler | None = None, stop_event: threading.Event | None = None) -> "Trainer":
        from .runs import find_run

        folder = find_run(str(run_dir), runs_root)
        if folder.status() == RUNNING:
            raise UserInputError(f"run {folder.path.name} is still running; stop it before resuming")
        if folder.summary().status == FINISHED:
            raise UserInputError(f"run {folder.path.name} already finished all its epochs")
        return cls(folder.config(), runs_root or folder.path.parent, on_event, stop_event, run_folder=folder)

    # ------------------------------------------------------------------------------- setup
    def _setup(self) -> _Setup:
        cfg = self.config
        device = self.dist.device_for(resolve_device(cfg.train.device))
        world = self.dist.world
        if cfg.train.batch_size % world:
            raise UserInputError(f"train.batch_size ({cfg.train.batch_size}) must divide evenly over {world} processes")
        self.dist.init(device)
        seed_everything(cfg.train.seed, cfg.train.deterministic)
        with self._stop_checks("loading the dataset"):  # a big folder decoding: stop within a few files
            data = normalised_for_target(load_dataset(cfg.data, cfg.train.seed), cfg.target)
        self._stop_if_asked("loading the dataset", device)  # Ctrl+C during a long load: stop now, not after it
        task = task_for_data(data, cfg.train)  # what the labels need: loss, metrics, how logits become outputs
        sources = [build_source(s, device) for s in cfg.sources]
        for source, name in zip(sources, _unique([s.name for s in sources])):
            source.name = name
        check_sources_fit(sources, data.clip_len)  # a video source cannot label images
        ensemble = (SourceEnsemble(sources, **source_settings(cfg.train.source_precision, device)).to(device)
                    if sources else None)
        self._stop_if_asked("loading the source models", device)
        scaler = torch.amp.GradScaler("cuda") if cfg.train.amp and device.type == "cuda" else None
        # clips move in time every epoch (a random position) even without augmentation
        soft_labels = (SoftLabels(ensemble, cfg.train.source_view, cfg.data.augment or data.is_video)
                       if ensemble is not None else None)
        ctx = MethodContext(cfg, data.num_classes, data.class_names, data.image_size, device, ensemble,
                            data.multi_label, scaler, dist=self.dist, task=task, soft_labels=soft_labels,
                            clip_len=data.clip_len)
        torch.manual_seed(cfg.train.seed)  # network initialisation depends on the seed only
        method = METHODS.get(cfg.method.name).build(ctx)
        self.dist.broadcast_parameters(method.networks.values())
        shard = (self.dist.rank, world)
        # batch_stream: a ClipBatchStream for clip data ([B, 3, T, H, W]), else a BatchStream
        train_stream = batch_stream(data, data.train, cfg.data, batch_size=cfg.train.batch_size // world,
                                    shuffle=True, augment=cfg.data.augment, mean=data.mean, std=data.std,
                                    device=device, seed=cfg.train.seed,
                                    drop_last=len(data.train) > cfg.train.batch_size,
                                    resident=cfg.data.device_resident, num_workers=cfg.data.num_workers, shard=shard)
        # clips are far larger than images: validate them in training-sized batches (of all their views)
        val_batch = (max(1, cfg.train.batch_size // cfg.data.val_clips) if data.is_video
                     else max(cfg.train.batch_size, 256))
        val_stream = batch_stream(data, data.val, cfg.data, views=cfg.data.val_clips, batch_size=val_batch,
                                  shuffle=False, augment=False, mean=data.mean, std=data.std, device=device,
                                  seed=cfg.train.seed, resident=cfg.data.device_resident,
                                  num_workers=cfg.data.num_workers, shard=shard)
        test_stream = None
        if data.test is not None and len(data.test):
            test_stream = batch_stream(data, data.test, cfg.data, views=cfg.data.val_clips, batch_size=val_batch,
                                       shuffle=False, augment=False, mean=data.mean, std=data.std, device=device,
                                       seed=cfg.train.seed, resident=cfg.data.device_resident,
                                       num_workers=cfg.data.num_workers, shard=shard)
        return _Setup(device, data, task, method, train_stream, val_stream, test_stream)

    def _fill_soft_labels(self, setup: _Setup) -> bool:
        """Sources that see each image the same way every epoch (``train.source_view: clean``,
        or augmentation off): their outputs once, before the first epoch, or the run's valid
        cache on resume. False when Stop was pressed during the pass."""
        soft_labels = setup.method.ctx.soft_labels
        if soft_labels is None or not soft_labels.needs_fill:
            return True
        folder = self.run_folder.path / "checkpoints" if self.run_folder is not None else None
        return soft_labels.fill(
            setup.train_stream.unaugmented().epoch(0), setup.data.train, setup.device, folder=folder,
            dist=self.dist, report=lambda text: self._emit(ev.LogMessage("info", text, time.time())),
            # ranks may take different numbers of batches here: no per-batch collective stop check
            should_stop=None if self.dist.active else self.stop_event.is_set,
            context=f"clip_len {setup.data.clip_len} frame_stride {self.config.data.frame_stride}")

    def _stop_checks(self, phase: str):
        """Stop checks inside a long setup phase (``sskt_engine.cancellation``). Alone only: ranks
        of a distributed run must agree to stop (``_stop_if_asked``), or one would wait for the
        others in a collective forever."""
        if self.dist.world > 1:
            return contextlib.nullcontext()
        return stop_checks(self.stop_event.is_set, phase)

    def _stop_if_asked(self, phase: str, device: torch.device) -> None:
        if self.dist.any(self.stop_event.is_set(), device):  # every rank stops, or the others would wait
            raise StoppedBeforeStart(phase)

    # ------------------------------------------------------------------------------- events
    def _emit(self, event: ev.Event, *, best_effort: bool = False) -> None:
        """``best_effort``: a failure to log (a full disk) is printed, not raised; for the
        events that report a failure, which must reach the listener whatever the disk says."""
        if not self.dist.is_main:  # rank 0 speaks for the whole group
            return
        if self._log is not None:
            try:
                self._log(event)
            except Exception:  # noqa: BLE001
                if not best_effort:
                    raise
                traceback.print_exc()
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a listener's bug must not kill the run
                traceback.print_exc()

    # ------------------------------------------------------------------------------- run
    def run(self) -> RunFolder | None:
        """Train; returns the run folder (None on the non-zero ranks of a distributed run)."""
        try:
            return self._run()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None
            self.dist.shutdown()

    def _take_lock(self, folder: RunFolder) -> None:
        """Held for the whole run; a second writer of the same run is refused here, before it
        touches anything (the status check in ``resume`` can race, this cannot)."""
        if not self.dist.is_main:
            return
        lock = RunLock(folder.path)
        try:
            lock.acquire()
        except RunBusy:
            raise UserInputError(_busy_sentence(folder)) from None
        except OSError as exc:
            raise UserInputError(f"run folder {folder.path} cannot be locked ({exc.strerror or exc})") from None
        self._lock = lock

    def _new_run_folder(self) -> RunFolder:
        """Create the folder and take its lock; if the lock cannot be made, the new folder goes
        (a failure inside ``create`` already removed it): left, it would be listed forever."""
        folder = RunFolder.create(self.runs_root, self.config)
        try:
            self._take_lock(folder)
        except UserInputError:
            shutil.rmtree(folder.path, ignore_errors=True)
            raise
        return folder

    def _run(self) -> RunFolder | None:
        main = self.dist.is_main
        fresh = self.run_folder is None
        if not fresh:
            self._take_lock(self.run_folder)  # before setup: a second resume must not get that far
            if main:
                self._remove_stale_temporaries()
        setup = self._setup()  # raises UserInputError on bad input, before any new folder exists
        cfg, method, headline = self.config, setup.method, setup.task.headline
        honest = setup.data.val_held_out  # the best epoch may be chosen only on a held-out split
        start_epoch, best_epoch, wall_before, global_step = 0, -1, 0.0, 0
        best_score: float | None = None  # of the task's headline metric; None until an epoch ends
        final_score = float("nan")
        state: RunCheckpoint | None = None
        logged_epochs: set[int] = set()
        if fresh:
            self.run_folder = self._new_run_folder() if main else None
        else:
            state = self._load_resume_state(setup)
            if state is not None:
                start_epoch, best_score, best_epoch, global_step = (state.epoch, state.best_score,
                                                                    state.best_epoch, state.global_step)
                self._skipped_before = state.skipped_steps
            wall_before = self.run_folder.summary().wall_time_s or 0.0
            if main:
                logged_epochs = self._trim_metrics(start_epoch)
        folder = self.run_folder if main else _NoFolder()
        records = _EpochRecords.from_dict(state.records) if state is not None else None
        if records is not None:
            final_score = records.event.val.get(headline.key, final_score)
        started = time.perf_counter()
        summary = self._base_summary(setup, start_epoch, state, records)
        try:
            self._start_files(folder, summary, records if records and records.event.epoch not in logged_epochs
                              else None)
        except UserInputError:
            method.close()
            if fresh and main:  # nothing of value in it yet; left, it would be listed forever
                self._lock.release()
                self._lock = None
                shutil.rmtree(folder.path, ignore_errors=True)
            raise
        epoch = start_epoch
        try:
            self._emit(ev.RunStarted(
                run_dir=str(folder.path), name=cfg.name, method=cfg.method.name,
                device=device_description(setup.device), epochs=cfg.train.epochs, start_epoch=start_epoch,
                steps_per_epoch=len(setup.train_stream), num_classes=setup.data.num_classes,
                class_names=setup.data.class_names, networks=tuple(method.networks),
                source_names=tuple(method.ctx.sources.names) if method.ctx.sources else (),
                train_size=len(setup.data.train), val_size=len(setup.data.val), time=time.time(),
                task=setup.task.name, metric=headline.to_json(), train_metric=setup.task.train_metric.to_json(),
                selection="validation" if honest else "none"))
            for note in setup.data.notes:
                self._emit(ev.LogMessage("warning", note, time.time()))
            for note in method.ctx.notes:  # where the target's weights started (target.init)
                self._emit(ev.LogMessage("info", note, time.time()))
            if not honest:
                self._emit(ev.LogMessage("info", f"no best epoch is chosen: {NO_SELECTION_REASON} (best.pt follows "
                                         "the last epoch)", time.time()))
            for note in self._resume_notes:
                self._emit(ev.LogMessage("warning", note, time.time()))
            if cfg.train.warmup_epochs >= cfg.train.epochs:
                # Allowed, so that a preset with warmup can be tried for an epoch or two with --set.
                self._emit(ev.LogMessage("warning", f"train.warmup_epochs ({cfg.train.warmup_epochs}) is not fewer "
                                         f"than train.epochs ({cfg.train.epochs}): the whole run is warmup (the learning "
                                         f"rate climbs toward train.lr and train.schedule never applies)",
                                         time.time()))
            status = FINISHED
            reported_unreadable = 0
            if not self._fill_soft_labels(setup):
                status = STOPPED
            for epoch in range(start_epoch, cfg.train.epochs if status == FINISHED else start_epoch):
                epoch_start = time.perf_counter()
                train_means, global_step, completed = self._train_epoch(setup, epoch, global_step)
                if not completed:
                    status = STOPPED
                    break
                unreadable = setup.train_stream.unreadable | setup.val_stream.unreadable
                if len(unreadable) > reported_unreadable:
                    reported_unreadable = len(unreadable)
                    self._emit(ev.LogMessage("warning", f"skipped {len(unreadable)} unreadable image(s) so far, "
                                             f"e.g. {sorted(unreadable)[0]}", time.time()))
                val, report = self._evaluate(setup, epoch)
                final_score = val[headline.key]
                # Honest model selection: the best epoch is chosen only on a split held out of
                # train. Without one, val is the test split: choosing on it would flatter every
                # method, so the run keeps its last epoch (best.pt follows last.pt) and reports
                # no best (summary.selection "none").
                is_best = headline.better(final_score, best_score) if honest else True
                if is_best:
                    best_score, best_epoch = final_score, epoch
                if setup.test_stream is not None:  # scored every epoch, never used to choose
                    test_score = self._evaluate(setup, epoch, setup.test_stream)[0][headline.key]
                    summary = summary.updated(final_test_score=test_score)
                    if is_best:
                        summary = summary.updated(best_test_score=test_score)
                records = _EpochRecords(ev.EpochEnd(
                    epoch=epoch, train=train_means, val=val, lr=self._current_lr(setup), best_val_acc=best_score,
                    is_best=is_best, epoch_time_s=time.perf_counter() - epoch_start, time=time.time()), report, is_best,
                    summary.best_test_score, summary.final_test_score)
                # last.pt first, holding the records: from here on a resume continues after this
                # epoch and writes whichever records a failure below kept from the folder
                self._save_checkpoint(setup, epoch + 1, global_step, best_score, best_epoch, val, records)
                if main:
                    self._publish_records(records)
                self._emit(records.event)
                summary = summary.updated(epochs_completed=epoch + 1, best_score=best_score if honest else None,
                                          best_epoch=best_epoch + 1 if honest else None, final_score=final_score,
                                          final_val=val,
                                          wall_time_s=wall_before + time.perf_counter() - started,
                                          skipped_steps=self._skipped_total(setup))
                folder.write_summary(summary)
                if self.dist.any(self.stop_event.is_set(), setup.device):
                    status = STOPPED if epoch + 1 < cfg.train.epochs else FINISHED
                    break
            if status == FINISHED and main and method.ctx.soft_labels is not None:
                method.ctx.soft_labels.finish(folder.path / "checkpoints")  # nothing resumes a finished run
            wall = wall_before + time.perf_counter() - started
            summary = summary.updated(status=status, wall_time_s=wall, finished=now_iso(), pid=None)
            folder.write_summary(summary)
            self._emit(ev.RunFinished(status=status, epochs_completed=summary.epochs_completed,
                                      best_val_acc=best_score if best_score is not None else -1.0,
                                      final_val_acc=final_score, wall_time_s=wall,
                                      run_dir=str(folder.path), time=time.time()))
        except Exception as exc:  # noqa: BLE001  the run fails; the process and the GUI live on
            message = self._failure_sentence(exc, epoch)
            detail = traceback.format_exc()
            summary = summary.updated(status=FAILED, message=message, finished=now_iso(), pid=None,
                                      wall_time_s=wall_before + time.perf_counter() - started)
            try:
                folder.write_summary(summary)
            except Exception as write_exc:  # noqa: BLE001  the disk that failed the run may refuse this too
                message += (f"; the run's summary.json could not be updated either ({type(write_exc).__name__}), "
                            "so it still shows the state after the last completed epoch")
            self._emit(ev.RunFailed(message=message, detail=detail, epochs_completed=summary.epochs_completed,
                                    run_dir=str(folder.path), time=time.time()), best_effort=True)
        finally:
            method.close()  # a feature-based method removes its hooks from the target and the sources
            if self._log is not None:
                try:
                    self._log.close()
                except OSError:  # flushing onto a full disk; every whole line written is kept
                    traceback.print_exc()
                self._log = None
        return self.run_folder if main else None

    def _start_files(self, folder: RunFolder, summary: RunSummary, missing: _EpochRecords | None) -> None:
        """Open the log, write what a previous attempt left unwritten, and the first summary.
        A full disk here is one sentence (``UserInputError``), not a traceback."""
        if not self.dist.is_main:
            return
        try:
            self._log = MetricsLog(folder)
            if missing is not None:
                self._write_missing_records(missing)
            folder.write_summary(summary)
        except OSError as exc:
            if self._log is not None:
                try:
                    self._log.close()
                except OSError:
                    pass  # flushing onto the same full disk
                self._log = None
            raise UserInputError(f"run folder {folder.path} could not be written ({exc.strerror or exc})") from None

    def _skipped_total(self, setup: _Setup) -> int:
        return self._skipped_before + len(setup.method.ctx.skipped_steps)

    def _failure_sentence(self, exc: BaseException, epoch: int) -> str:
        if isinstance(exc, (TrainingFailed, UserInputError)):
            return str(exc)
        if isinstance(exc, torch.OutOfMemoryError):
            return (f"the device ran out of memory in epoch {epoch + 1} with batch size "
                    f"{self.config.train.batch_size}; try a smaller train.batch_size or turn on train.amp")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"training failed in epoch {epoch + 1}: {type(exc).__name__}{': ' + first[:300] if first else ''}"

    def _base_summary(self, setup: _Setup, start_epoch: int, state: RunCheckpoint | None = None,
                      records: _EpochRecords | None = None) -> RunSummary:
        """The summary as the run starts; a resumed run keeps its earlier results and times.
        Its results come from the checkpoint resumed from where it says them: summary.json may
        be an epoch behind it (a full disk after last.pt was written)."""
        previous = self.run_folder.summary() if start_epoch and self.run_folder else RunSummary()
        if state is not None and records is not None:
            previous = previous.updated(
                best_score=state.best_score, best_epoch=state.best_epoch + 1 if state.best_epoch >= 0 else None,
                final_score=records.event.val.get(setup.task.headline.key), final_val=dict(records.event.val))
            if records.final_test_score is not None:  # the checkpoint's epoch may be missing from summary.json
                previous = previous.updated(best_test_score=records.best_test_score,
                                            final_test_score=records.final_test_score)
        cfg, task = self.config, setup.task
        sources = setup.method.ctx.sources.sources if setup.method.ctx.sources else []
        return RunSummary(
            status=RUNNING, name=cfg.name, method=cfg.method.name, target=cfg.target.arch, dataset=cfg.data.dataset,
            task=task.name, metric=task.headline, epochs=cfg.train.epochs, epochs_completed=start_epoch,
            best_score=previous.best_score if setup.data.val_held_out else None,
            best_epoch=previous.best_epoch if setup.data.val_held_out else None, final_score=previous.final_score,
            final_val=previous.final_val, device=device_description(setup.device),
            wall_time_s=previous.wall_time_s or 0.0, started=previous.started or now_iso(), finished=None,
            message="", pid=os.getpid(), host=socket.gethostname(), seed=cfg.train.seed,
            num_classes=setup.data.num_classes, train_size=len(setup.data.train), val_size=len(setup.data.val),
            data_resident=setup.train_stream.resident, sources=tuple(s.describe() for s in sources),
            skipped_steps=self._skipped_before, versions=library_versions(), processes=self.dist.world,
            selection="validation" if setup.data.val_held_out else "none",
            best_score_absent="" if setup.data.val_held_out else NO_SELECTION_REASON,
            best_test_score=previous.best_test_score, final_test_score=previous.final_test_score)

    # ------------------------------------------------------------------------------- one epoch
    def _set_lr(self, setup: _Setup, global_step: int) -> float:
        factor = lr_factor(self.config.train, global_step, len(setup.train_stream))
        for opt in setup.method.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * factor
        return self.config.train.lr * factor

    def _current_lr(self, setup: _Setup) -> float:
        opt = next(iter(setup.method.optimizers.values()))
        return float(opt.param_groups[0]["lr"])

    def _train_epoch(self, setup: _Setup, epoch: int, global_step: int) -> tuple[dict[str, float], int, bool]:
        cfg, method, device = self.config, setup.method, setup.device
        steps = len(setup.train_stream)
        total_steps = steps * cfg.train.epochs
        log_every = cfg.train.log_every
        names = method.loss_names()
        skip_bad = cfg.train.nan_policy == "skip"
        skipped_at_start = len(method.ctx.skipped_steps)
        # running sums on the device: losses..., the task's training score, samples, steps counted;
        # read back once per window
        epoch_sums = torch.zeros(len(names) + 3, device=device)
        window = torch.zeros(len(names) + 3, device=device)
        one = torch.ones(1, device=device)
        world = self.dist.world
        window_start = time.perf_counter()
        step_time_ema: float | None = None
        method.train(True)
        step = 0
        for step, batch in enumerate(setup.train_stream.epoch(epoch), start=1):
            # all ranks must agree on the step they stop at, or the others wait forever
            if self.dist.any(self.stop_event.is_set(), device):
                return {}, global_step, False
            lr = self._set_lr(setup, global_step)
            if self.fault_hook is not None:
                self.fault_hook(epoch, step)
            out = method.train_step(batch, global_step)
            global_step += 1
            values = torch.cat([torch.stack([out.losses[n].float() for n in names] +
                                            [setup.task.train_score(out.logits, batch.labels).float(),
                                             torch.tensor(float(batch.labels.shape[0]), device=device)]), one])
            if skip_bad:  # a skipped batch changed nothing; keep its NaN out of the curves (no host sync)
                values = torch.where(torch.isfinite(values[: len(names)]).all(), values, torch.zeros_like(values))
            window += values
            if step % log_every == 0 or step == steps:
                self.dist.sum_(window)
                window[: len(names)] /= world  # losses: mean over ranks; counts: totals
                stats = window.tolist()  # the one host sync per log window
                self._check_finite(stats, names, epoch, step, global_step, log_every)
                now = time.perf_counter()
                elapsed = max(now - window_start, 1e-9)
                window_seen = stats[-2]
                steps_in_window = (step - 1) % log_every + 1
                counted = stats[-1] / world  # steps whose numbers count (all but skipped ones), per rank
                per_step = elapsed / steps_in_window
                step_time_ema = per_step if step_time_ema is None else 0.7 * step_time_ema + 0.3 * per_step
                if counted:  # a window of skipped batches only has nothing to plot
                    self._emit(ev.Progress(
                        epoch=epoch, step=step, global_step=global_step, total_steps=total_steps,
                        losses={n: stats[i] / counted for i, n in enumerate(names)},
                        train_acc=stats[-3] / max(window_seen, 1), lr=lr, samples_per_s=window_seen / elapsed,
                        eta_s=step_time_ema * (total_steps - global_step), time=time.time()))
                epoch_sums += window
                window.zero_()
                window_start = time.perf_counter()
        stats = epoch_sums.tolist()
        counted = stats[-1] / world
        means = {n: stats[i] / counted if counted else float("nan") for i, n in enumerate(names)}
        means[setup.task.train_metric.key] = stats[-3] / max(stats[-2], 1)
        skipped = len(method.ctx.skipped_steps) - skipped_at_start
        if skipped:
            self._emit(ev.LogMessage("warning", f"skipped {skipped} batch(es) with a NaN or infinite loss in epoch "
                                     f"{epoch + 1} (train.nan_policy: skip)", time.time()))
        return means, global_step, True

    def _check_finite(self, stats: list[float], names: list[str], epoch: int, step: int, global_step: int,
                      log_every: int) -> None:
        if self.config.train.nan_policy == "skip":
            return
        for i, name in enumerate(names):
            if not math.isfinite(stats[i]):
                bad = [n for j, n in enumerate(names) if not math.isfinite(stats[j]) and n != "loss"] or [name]
                first = (step - 1) // log_every * log_every + 1
                where = f"at step {step}" if first == step else f"between steps {first} and {step}"
                raise TrainingFailed(
                    f"the loss became {'NaN' if math.isnan(stats[i]) else 'infinite'} in epoch {epoch + 1} {where} "
                    f"(term: {', '.join(bad)}); lower train.lr, or set train.nan_policy: skip to skip such batches")

    # ------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _evaluate(self, setup: _Setup, epoch: int, stream: BatchStream | None = None
                  ) -> tuple[dict[str, float], EvalReport]:
        """The validation split (or ``stream``: the test split) through every network of the
        method; the task's evaluator sums on the device per batch and over ranks once at the end."""
        method = setup.method
        method.train(False)
        evaluator = setup.task.evaluator(list(method.networks), setup.data.class_names, setup.device)
        for batch in (stream or setup.val_stream).epoch(0):
            logits = method.predict(batch.images)
            if batch.views > 1:  # several clips per video: one score per video (clip_batches)
                logits = {name: average_views(value, batch.views) for name, value in logits.items()}
            evaluator.update(logits, batch.labels)
        result = evaluator.compute(self.dist, method.primary, epoch + 1)  # reports count epochs from 1
        return result.val, result.report

    # ------------------------------------------------------------------------------- checkpoints
    def _checkpoint_meta(self, setup: _Setup, val: dict[str, float]) -> dict[str, Any]:
        data, method = setup.data, setup.method
        networks = method.network_archs()
        key = setup.task.headline.key
        scores = {name: val.get(f"{name}/{key}", val[key]) for name in networks}
        export = method.export_network(scores)
        return {"arch": networks[export], "num_classes": data.num_classes, "class_names": list(data.class_names),
                "input_size": data.image_size, "mean": list(data.mean), "std": list(data.std),
                "method": self.config.method.name, "export_network": export,
                "networks": {name: {"arch": arch} for name, arch in networks.items()},
                "sources": [s.describe() for s in (method.ctx.sources.sources if method.ctx.sources else [])],
                "val": val, "multi_label": data.multi_label,
                **({"clip_len": data.clip_len} if data.clip_len else {})}  # frames per clip of a video network

    def _save_checkpoint(self, setup: _Setup, epochs_done: int, global_step: int, best_score: float | None,
                         best_epoch: int, val: dict[str, float], records: _EpochRecords) -> None:
        ctx = setup.method.ctx
        meta = CheckpointMeta.from_dict(self._checkpoint_meta(setup, val), "the checkpoint being written")
        checkpoint = RunCheckpoint.from_method_state(
            setup.method.state_dict(), epoch=epochs_done, global_step=global_step, best_score=best_score,
            best_epoch=best_epoch, skipped_steps=self._skipped_total(setup),
            scaler=ctx.scaler.state_dict() if ctx.scaler is not None else None,
            rng={"torch": torch.get_rng_state(),
                 "cuda": torch.cuda.get_rng_state_all() if setup.device.type == "cuda" else []},
            preset=dumps_preset(self.config), meta=meta, records=records.to_dict())
        if not self.dist.is_main:
            return
        checkpoint.save(self.run_folder.checkpoint_path("last"))

    def _publish_records(self, records: _EpochRecords) -> None:
        """After last.pt: best.pt, then the eval reports. The EpochEnd line comes last, so a log
        that holds it means everything before it was written (``_write_missing_records``)."""
        folder = self.run_folder
        if records.is_best:
            RunCheckpoint.copy(folder.checkpoint_path("last"), folder.checkpoint_path("best"))
        folder.write_eval("last", records.report)
        if records.is_best:
            folder.write_eval("best", records.report)

    def _write_missing_records(self, records: _EpochRecords) -> None:
        """Resume: the last checkpoint's epoch has no EpochEnd in the log, so the process that
        trained it stopped (a full disk, a kill) between last.pt and that line. Write the rest
        from the checkpoint: best.pt, eval reports, the log line (to the file only; listeners
        hear of earlier epochs from the log, as for every epoch before a resume)."""
        self._publish_records(records)
        self._log(records.event)
        self._resume_notes.append(f"epoch {records.event.epoch + 1} was checkpointed but its records were not all "
                                  "written (the process ended first); they were written now from its checkpoint")

    def _remove_stale_temporaries(self) -> None:
        """Resume holds the run's lock, so every temporary file in the folder is a leftover of a
        process killed while writing (a checkpoint can be hundreds of MB)."""
        removed = remove_run_temporaries(self.run_folder.path)
        if removed:
            names = ", ".join(str(p.relative_to(self.run_folder.path)) for p in removed[:3])
            self._resume_notes.append(f"removed {len(removed)} temporary file(s) left by a process that ended while "
                                      f"writing them ({names}{', ...' if len(removed) > 3 else ''})")

    def _load_resume_state(self, setup: _Setup) -> RunCheckpoint | None:
        path = self.run_folder.checkpoint_path("last")
        name = self.run_folder.path.name
        if not path.exists():
            done = self.run_folder.summary().epochs_completed
            if done > 0 or self.run_folder.checkpoint_path("best").exists():
                # starting over would trim the logged epochs and overwrite best.pt: refuse instead
                raise UserInputError(f"run {name} completed {done} epoch(s) but its last checkpoint {path} is "
                                     "missing; it cannot be resumed (start a new run from its preset instead)")
            return None  # failed or stopped before the first epoch ended: start over in the same folder
        try:
            state = RunCheckpoint.read(path, f"the last checkpoint of run {name}", map_location=setup.device)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc}; it cannot be resumed") from None
        try:
            setup.method.load_state_dict(state.method_state())
        except (KeyError, RuntimeError, ValueError) as exc:  # networks or optimizers of another shape or name
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"the last checkpoint of run {name} does not fit the run's networks ({reason}); "
                                  "it cannot be resumed (was its preset.yaml edited?)") from None
        if state.scaler is not None and setup.method.ctx.scaler is not None:
            setup.method.ctx.scaler.load_state_dict(state.scaler)
        if "torch" in state.rng:
            torch.set_rng_state(state.rng["torch"].cpu())
        if setup.device.type == "cuda" and state.rng.get("cuda"):
            torch.cuda.set_rng_state_all([s.cpu() for s in state.rng["cuda"]])
        return state

    def _trim_metrics(self, start_epoch: int) -> set[int]:
        """Drop what a previous attempt logged after its last checkpoint, so the curves of a
        resumed run have no duplicate stretch; returns the epochs whose EpochEnd is kept. Read
        as bytes, line by line: a line a crash cut (even inside a UTF-8 character) is dropped
        and reported, never a reason to refuse the resume."""
        folder = self.run_folder
        if not folder.metrics_path.exists():
            return set()
        log = read_log(folder.metrics_path)
        kept, ended = [], set()
        for line, event in log.lines:
            if isinstance(event, (ev.Progress, ev.EpochEnd)) and event.epoch >= start_epoch:
                continue
            if isinstance(event, (ev.RunFinished, ev.RunFailed)):
                continue
            if isinstance(event, ev.EpochEnd):
                ended.add(event.epoch)
            kept.append(line)
        atomic_write_text(folder.metrics_path, "".join(kept))
        damaged = log.damaged + log.unfinished
        if damaged:
            self._resume_notes.append(f"dropped {damaged} damaged line(s) of metrics.jsonl (a write cut short by "
                                      "a crash)")
        return ended


class _NoFolder:
    """What the non-zero ranks of a distributed run write to: nothing."""

    def write_summary(self, summary: RunSummary) -> None:
        pass

    def write_eval(self, which: str, report: EvalReport) -> None:
        pass

    path = Path("")


def train(config: ExperimentConfig, runs_root: str | os.PathLike | None = None,
          on_event: ev.EventHandler | None = None, stop_event: threading.Event | None = None) -> RunFolder:
    return Trainer(config, runs_root, on_event, stop_event).run()
