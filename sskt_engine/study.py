"""Method studies: every method x seed through the same Trainer on the same data, then a table
of mean +- std. ``sskt compare`` on the command line (``study_cli``); the GUI's Compare action calls
``run_study``.

    <runs root>/studies/<YYYYmmdd-HHMMSS>-<name>/
        study.json     the study: preset, methods, seeds, splits, every run's result and folder
        table.md       per method: runs, best and final validation accuracy (mean +- std), wall time
        table.csv      the same numbers, machine readable
        table.tex      the same table for a paper (booktabs)
        curves.csv     validation accuracy per method and epoch: mean and std over the seeds
        runs/          the study's run folders (ordinary run folders: resume, export, source)

Same data for every method: a run's labelled subset, validation split, shuffling and
augmentation depend only on ``data.*`` and ``train.seed`` (``data.splits``), and every method
of seed ``s`` gets the preset's ``data`` section and ``train.seed = s`` unchanged (per-method
overrides of either are refused). The split's fingerprint per seed is recorded in study.json.

A method that cannot run with the given sources (KD without a teacher of the target's
classes, SSKT without sources) is a row marked skipped with the engine's one-sentence reason.
Methods that use no sources (supervised, DML, MAXL) run without the preset's sources, so their
runs do not load models they would not use.

Statistics: mean and *sample* standard deviation (n - 1) over the runs that finished; a
single run has no standard deviation. Runs that failed or were stopped are counted in the
table's note, never silently averaged in.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from . import events as ev
from .atomic import atomic_write_text
from .config import ExperimentConfig, from_dict, method_options, to_dict
from .errors import UserInputError
from .metric_info import ACCURACY, MetricInfo
from .run_lock import RunBusy, RunLock
from .run_summary import RunSummary
from .study_jobs import JobOutcome, SerialRunner, StudyJob, run_jobs
from .study_stats import mean_std, study_metric  # noqa: F401  (re-exported)
from .study_variants import Variant
from .runs import FINISHED, RunFolder, _slug, default_runs_root, ensure_folder, now_iso

STUDY_FORMAT = "sskt-studio-study"
DEFAULT_METHODS = ("supervised", "sskt", "kd", "dml", "maxl")
TEACHER_ROW = "kd teacher"


# ----------------------------------------------------------------------------- study events (plain values)

@dataclass(frozen=True)
class StudyRunStarted:
    index: int  # 1-based position among the study's runs
    total: int
    method: str  # "kd teacher" for a teacher trained by the study
    seed: int
    time: float


@dataclass(frozen=True)
class StudyRunEnded:
    index: int
    total: int
    method: str
    seed: int
    status: str  # finished / failed / stopped / skipped
    best_val_acc: float | None
    final_val_acc: float | None
    wall_time_s: float | None
    run_dir: str  # "" for a skipped run
    message: str
    time: float


@dataclass(frozen=True)
class StudyFinished:
    study_dir: str
    status: str  # finished (every run that could run finished) / incomplete / stopped
    time: float


StudyEvent = StudyRunStarted | StudyRunEnded | StudyFinished


# ----------------------------------------------------------------------------- specification

@dataclass(frozen=True)
class StudySpec:
    """What to compare. ``config`` is the preset after the global overrides; ``method_overrides``
    holds ``key=value`` strings applied to one method only (``--set kd:method.distill_weight=0.5``)."""

    config: ExperimentConfig
    methods: tuple[str, ...] = DEFAULT_METHODS
    seeds: tuple[int, ...] = (0,)
    method_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    teacher: str = ""  # KD's teacher: a run folder or a model file with the target's classes
    teacher_arch: str = ""  # or: train a teacher per seed, supervised, on the same labelled subset
    name: str = ""
    preset_path: str = ""
    # Rows that are not plain methods (``study_variants``: source ablations, grids); empty: one row per method.
    variants: tuple[Variant, ...] = ()

    @property
    def title(self) -> str:
        return self.name or self.config.name

    def rows(self) -> tuple[Variant, ...]:
        """What the study trains per seed, in table order."""
        return self.variants or tuple(Variant(method, method) for method in self.methods)


def split_overrides(items: Iterable[str], methods: Sequence[str]) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Separate ``--set`` items into global ones and ``METHOD:key=value`` ones; refuse per-method
    changes of the data or the seed, which would give that method a different split."""
    shared: list[str] = []
    per_method: dict[str, list[str]] = {}
    for item in items:
        key = item.partition("=")[0]
        prefix, colon, rest = key.partition(":")
        if not colon:
            shared.append(item)
            continue
        method = prefix.strip()
        if method not in methods:
            raise UserInputError(f"--set {item}: {method!r} is not one of the compared methods "
                                 f"({', '.join(methods)})")
        path = rest.strip()
        if path.startswith("data") or path in ("train.seed", "train.seeds"):
            raise UserInputError(f"--set {item}: a per-method override may not change {path}: every method "
                                 "must see the same data split")
        per_method.setdefault(method, []).append(item.split(":", 1)[1])
    return shared, {k: tuple(v) for k, v in per_method.items()}


def _uses_sources(method: str) -> bool:
    from .methods import METHODS

    info = METHODS.get(method)
    return info.uses_sources or info.min_sources > 0


def _teacher_source(path: str) -> dict[str, Any]:
    folder = RunFolder(Path(path).expanduser())
    kind = "run" if folder.exists() else "checkpoint"
    return {"kind": kind, "path": str(Path(path).expanduser()), "name": "teacher"}


def run_config(spec: StudySpec, method: str, seed: int, teacher_run: str = "",
               variant: Variant | None = None) -> ExperimentConfig:
    """The validated preset of one run: the study's preset with this method and seed (and a
    variant's sources and overrides)."""
    from .methods import METHODS

    raw = to_dict(spec.config)
    if spec.config.method.name != method:  # each method reads its own keys: its defaults, then --set m:...
        raw["method"] = to_dict(method_options(method))
    raw["train"]["seed"] = seed
    raw["name"] = _run_name(spec.title, variant.slug if variant is not None else method, seed)
    if variant is not None and variant.sources is not None:
        raw["sources"] = [raw["sources"][i] for i in variant.sources]
    if not _uses_sources(method):
        raw["sources"] = []
    if method == "kd" and (teacher_run or spec.teacher):
        raw["sources"] = [_teacher_source(teacher_run or spec.teacher)]
        raw["method"]["teacher"] = 0
    needs = METHODS.get(method).min_sources
    if method == "kd" and not raw["sources"]:
        raise UserInputError("KD needs a teacher trained on the target's classes: give --teacher RUN_OR_FILE or "
                             "--teacher-arch ARCH, or add such a model to the preset's sources")
    if len(raw["sources"]) < needs:
        raise UserInputError(f"{method} needs at least {needs} source model(s) and the preset has "
                             f"{len(raw['sources']) or 'none'}")
    overrides = tuple(spec.method_overrides.get(method, ())) + (variant.overrides if variant is not None else ())
    return from_dict(raw, overrides=overrides, source=f"{variant.label if variant is not None else method} run")


def teacher_config(spec: StudySpec, seed: int) -> ExperimentConfig:
    """A supervised teacher for KD on the same labelled subset as seed ``seed``'s runs."""
    raw = to_dict(spec.config)
    raw["method"]["name"] = "supervised"
    raw["train"]["seed"] = seed
    raw["target"]["arch"] = spec.teacher_arch
    raw["sources"] = []
    raw["name"] = _run_name(spec.title, "teacher", seed)
    return from_dict(raw, source="KD teacher run")


def _run_name(title: str, method: str, seed: int) -> str:
    suffix = f"-{method}-s{seed}"
    return (_slug(title)[: 80 - len(suffix)] + suffix).replace("/", "-")


def split_fingerprint(config: ExperimentConfig, seed: int) -> dict[str, Any]:
    """A hash of the exact train and validation images and labels seed ``seed`` selects."""
    from .data import ImageSet, load_dataset

    splits = load_dataset(config.data, seed)
    digest = hashlib.sha256()
    for part in (splits.train, splits.val):
        digest.update(part.labels.contiguous().numpy().tobytes())
        if isinstance(part, ImageSet):
            digest.update(part.images.contiguous().numpy().tobytes())
        else:
            digest.update("\n".join(part.paths).encode("utf-8"))
    return {"fingerprint": digest.hexdigest()[:16], "train_size": len(splits.train), "val_size": len(splits.val),
            "num_classes": splits.num_classes}


# ----------------------------------------------------------------------------- running

def _create_study_dir(root: Path, title: str) -> Path:
    studies = root / "studies"
    ensure_folder(studies)
    base = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{_slug(title)}"
    for attempt in range(1000):
        path = studies / (base if attempt == 0 else f"{base}-{attempt + 1}")
        try:
            path.mkdir()
            (path / "runs").mkdir()
            return path
        except FileExistsError:
            continue
    raise UserInputError(f"could not create a unique study folder in {studies}")


def _result(method: str, seed: int, status: str, folder: RunFolder | None, message: str = "") -> dict[str, Any]:
    """One run's line in study.json. ``best_val_acc`` and ``final_val_acc`` hold the run's headline
    metric, which ``metric`` names (the key names are older than tasks with other metrics)."""
    summary = folder.summary() if folder is not None else RunSummary()
    result = {
        "method": method, "seed": seed, "status": status,
        "run_dir": folder.path.name if folder is not None else "",
        "best_val_acc": summary.best_score,
        "final_val_acc": summary.final_score,
        "final_val": summary.final_val,
        "best_epoch": summary.best_epoch,
        # honest model selection: how the best epoch was chosen, and the test split's score there
        "selection": summary.selection,
        "best_score_absent": summary.best_score_absent,
        "test_at_best": summary.best_test_score,
        "final_test": summary.final_test_score,
        "epochs_completed": summary.epochs_completed,
        "wall_time_s": summary.wall_time_s,
        "message": message or summary.message,
    }
    if folder is not None:
        result["metric"] = summary.metric.to_json()
    return result


def validate_spec(spec: StudySpec) -> None:
    from .methods import METHODS

    if not spec.methods:
        raise UserInputError("name at least one method to compare, e.g. --methods supervised,sskt")
    for method in spec.methods:
        METHODS.get(method)  # unknown: a UserInputError naming the close ones
    if len(set(spec.methods)) != len(spec.methods):
        raise UserInputError("a method is named twice in --methods")
    if not spec.seeds:
        raise UserInputError("a study needs at least one seed")
    if spec.teacher and spec.teacher_arch:
        raise UserInputError("give either --teacher or --teacher-arch, not both")
    if spec.teacher and not Path(spec.teacher).expanduser().exists():
        raise UserInputError(f"teacher {spec.teacher} does not exist (give a run folder or a model file)")
    if spec.teacher_arch:
        from .models import ARCHITECTURES

        ARCHITECTURES.get(spec.teacher_arch)


def run_study(spec: StudySpec, runs_root: str | os.PathLike | None = None,
              on_event: Callable[[Any], None] | None = None, stop_event: threading.Event | None = None,
              trainer_class: Any = None, runner: Any = None, resume: str | os.PathLike | None = None) -> Path:
    """Run the study and write its folder; returns the folder. Bad input (unknown method, bad
    preset, missing dataset) raises ``UserInputError`` before anything is written. Trainer
    events are passed to ``on_event`` as they come, between ``StudyRunStarted`` and
    ``StudyRunEnded`` of their run."""
    if trainer_class is None:
        from .trainer import Trainer as trainer_class  # noqa: N813
    validate_spec(spec)
    stop_event = stop_event or threading.Event()
    emit = on_event or (lambda event: None)
    splits = {seed: split_fingerprint(spec.config, seed) for seed in spec.seeds}  # also: the data can be read
    root = Path(runs_root) if runs_root is not None else default_runs_root()
    fingerprint = spec_fingerprint(spec)
    created = now_iso()
    if resume is not None:  # the same study again: finished runs are kept, unfinished ones resumed
        study_dir = Path(resume)
        earlier = load_study(study_dir)
        if earlier.get("spec") != fingerprint:
            raise UserInputError(f"study {study_dir.name} was started with other settings (preset, methods, seeds "
                                 "or overrides); run the command it was started with, or start a new study")
        created = earlier.get("created") or created
    else:
        study_dir = _create_study_dir(root, spec.title)
    lock = RunLock(study_dir)
    try:
        lock.acquire(retry_s=0.5)
    except RunBusy:
        raise UserInputError(f"study {study_dir.name} is being run by another process; wait for it or stop it") \
            from None
    try:
        return _run_study_locked(spec, study_dir, splits, fingerprint, created, emit, stop_event, trainer_class,
                                 runner)
    finally:
        lock.release()


def spec_fingerprint(spec: StudySpec) -> str:
    """What makes two studies the same study: preset, rows, seeds, overrides and teacher."""
    what = {"preset": _preset_text(spec.config), "rows": [row.to_json() for row in spec.rows()],
            "seeds": list(spec.seeds), "overrides": {k: list(v) for k, v in spec.method_overrides.items()},
            "teacher": spec.teacher, "teacher_arch": spec.teacher_arch}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def find_resumable(spec: StudySpec, runs_root: str | os.PathLike | None = None) -> Path | None:
    """The newest study of the same spec under ``<runs_root>/studies`` that did not finish (stopped,
    killed or incomplete): what running the same ``sskt compare`` again continues."""
    studies = (Path(runs_root) if runs_root is not None else default_runs_root()) / "studies"
    if not studies.is_dir():
        return None
    fingerprint = spec_fingerprint(spec)
    for path in sorted(studies.iterdir(), reverse=True):
        try:
            state = json.loads((path / "study.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("spec") == fingerprint and state.get("status") != "finished":
            return path
    return None


def _run_study_locked(spec: StudySpec, study_dir: Path, splits: dict[int, Any], fingerprint: str, created: str,
                      emit: Callable[[Any], None], stop_event: threading.Event, trainer_class: Any,
                      runner: Any) -> Path:
    runs_dir = study_dir / "runs"
    state: dict[str, Any] = {
        "format": STUDY_FORMAT, "version": 1, "name": spec.title, "preset": spec.preset_path, "spec": fingerprint,
        "preset_text": _preset_text(spec.config), "created": created, "finished": None, "status": "running",
        "methods": [row.label for row in spec.rows()], "seeds": list(spec.seeds),
        "variants": [row.to_json() for row in spec.variants],
        "grid_val_split": spec.config.data.val_split if any(v.kind == "grid" for v in spec.variants) else None,
        "method_overrides": {k: list(v) for k, v in spec.method_overrides.items()},
        "teacher": spec.teacher, "teacher_arch": spec.teacher_arch,
        "splits": {str(seed): info for seed, info in splits.items()},
        "runs": [], "teacher_runs": [], "skipped": {},
    }
    _write_state(study_dir, state)

    train_kd_teachers = bool(spec.teacher_arch) and "kd" in spec.methods
    total = len(spec.seeds) * (len(spec.rows()) + (1 if train_kd_teachers else 0))
    skipped: dict[str, str] = state["skipped"]
    runner = runner or SerialRunner(trainer_class)
    counter = iter(range(1, total + 1))
    started_at: dict[tuple[str, int], int] = {}

    def begin(label: str, seed: int) -> None:
        started_at[(label, seed)] = next(counter)
        emit(StudyRunStarted(started_at[(label, seed)], total, label, seed, time.time()))

    def end(label: str, seed: int, result: dict[str, Any]) -> None:
        emit(StudyRunEnded(started_at[(label, seed)], total, label, seed, result["status"], result["best_val_acc"],
                           result["final_val_acc"], result["wall_time_s"],
                           str(runs_dir / result["run_dir"]) if result["run_dir"] else "", result["message"],
                           time.time()))

    def outcome_result(job: StudyJob, outcome: JobOutcome) -> dict[str, Any]:
        if outcome.refused:  # refused at set-up: no folder, the method cannot run here
            skipped.setdefault(job.label, outcome.refused)
            return _result(job.label, job.seed, "skipped", None, outcome.refused)
        if outcome.folder is None:
            return _result(job.label, job.seed, "failed", None, outcome.error)
        result = _result(job.label, job.seed, outcome.folder.summary().status, outcome.folder)
        result["run_dir"] = f"{job.key}/{outcome.folder.path.name}"  # each run in its job's own folder
        return result

    def run_phase(planned: list[tuple[str, int, Callable[[], ExperimentConfig], str]],
                  results: list[dict[str, Any]]) -> None:
        """Rows that will not run are told at once; the others go to the runner (``study_jobs``),
        several at a time when it runs them in parallel. ``results`` keeps the planned order."""
        slots: list[dict[str, Any] | None] = [None] * len(planned)
        jobs, position = [], {}
        for i, (label, seed, make_config, blocked) in enumerate(planned):
            reason = blocked or skipped.get(label, "")
            if not reason:
                try:
                    job = StudyJob(label, seed, make_config())
                except UserInputError as exc:
                    reason = skipped.setdefault(label, str(exc))
                else:
                    jobs.append(job)
                    position[(label, seed)] = i
                    continue
            begin(label, seed)
            slots[i] = _result(label, seed, "not run" if blocked else "skipped", None, reason)
            end(label, seed, slots[i])

        def started(job: StudyJob) -> None:
            begin(job.label, job.seed)

        def ended(job: StudyJob, outcome: JobOutcome) -> None:
            slots[position[(job.label, job.seed)]] = result = outcome_result(job, outcome)
            end(job.label, job.seed, result)
            results[:] = [r for r in slots if r is not None]
            _write_state(study_dir, state)

        run_jobs(runner, jobs, runs_dir, emit, stop_event, started, ended)
        for i, (label, seed, _, _) in enumerate(planned):
            if slots[i] is None:  # the study was stopped before this run began
                begin(label, seed)
                slots[i] = _result(label, seed, "not run", None, "the study was stopped before this run")
                end(label, seed, slots[i])
        results[:] = [r for r in slots if r is not None]
        _write_state(study_dir, state)

    # KD's teachers first: the KD row of a seed learns from that seed's teacher
    teacher_dirs: dict[int, str] = {}
    blocked_kd: dict[int, str] = {}
    if train_kd_teachers:
        run_phase([(TEACHER_ROW, seed, (lambda seed=seed: teacher_config(spec, seed)), "") for seed in spec.seeds],
                  state["teacher_runs"])
        for teacher in state["teacher_runs"]:
            if teacher["status"] == FINISHED:
                teacher_dirs[teacher["seed"]] = str(runs_dir / teacher["run_dir"])
            else:
                blocked_kd[teacher["seed"]] = (f"its teacher run did not finish "
                                               f"({teacher['message'] or teacher['status']})")
    planned = []
    for seed in spec.seeds:
        for row in spec.rows():
            variant = row if spec.variants else None
            blocked = blocked_kd.get(seed, "") if row.method == "kd" and train_kd_teachers else ""
            planned.append((row.label, seed, (lambda seed=seed, method=row.method, variant=variant: run_config(
                spec, method, seed, teacher_dirs.get(seed, ""), variant)), blocked))
    run_phase(planned, state["runs"])

    rows = summarize(state)
    ran = [r for r in state["runs"] if r["status"] != "skipped"]
    if stop_event.is_set():
        status = "stopped"
    elif all(r["status"] == FINISHED for r in ran) and ran:
        status = "finished"
    else:
        status = "incomplete"
    state.update(status=status, finished=now_iso(), rows=rows)
    _write_state(study_dir, state)
    write_tables(study_dir, state)
    emit(StudyFinished(str(study_dir), status, time.time()))
    return study_dir


def _preset_text(config: ExperimentConfig) -> str:
    from .config import dumps_preset

    return dumps_preset(config)


def _write_state(study_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_text(study_dir / "study.json", json.dumps(_finite(state), indent=2))


def _finite(value: Any) -> Any:
    """JSON without NaN (not valid JSON for most readers): non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# ----------------------------------------------------------------------------- statistics and tables

def summarize(state: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per method (and one for trained KD teachers): statistics over finished runs."""
    rows = []
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for method in state["methods"]:
        if method == "kd" and state.get("teacher_runs"):
            groups.append((TEACHER_ROW, state["teacher_runs"]))
        groups.append((method, [r for r in state["runs"] if r["method"] == method]))
    for method, results in groups:
        done = [r for r in results if r["status"] == FINISHED]
        best = mean_std([r["best_val_acc"] for r in done if r["best_val_acc"] is not None])
        final = mean_std([r["final_val_acc"] for r in done if r["final_val_acc"] is not None])
        test = mean_std([r["test_at_best"] for r in done if r.get("test_at_best") is not None])
        absent = next((r["best_score_absent"] for r in done if r.get("best_score_absent")), "")
        wall = mean_std([r["wall_time_s"] for r in done if r["wall_time_s"] is not None])
        skipped = [r for r in results if r["status"] == "skipped"]
        others = [r for r in results if r["status"] not in (FINISHED, "skipped")]
        if results and len(skipped) == len(results):
            status, note = "skipped", skipped[0]["message"]
        else:
            status = "ok" if done and not others else ("incomplete" if done else "no finished run")
            notes = [f"seed {r['seed']} {r['status']}: {r['message']}".rstrip(": ") for r in others]
            note = "; ".join(notes)
        if method == TEACHER_ROW:
            note = (f"supervised {state.get('teacher_arch')} on the same labelled subset; the teacher of "
                    "each seed's KD run" + (f"; {note}" if note else ""))
        rows.append({"method": method, "status": status, "runs": len(done), "seeds": [r["seed"] for r in done],
                     "best_mean": best[0], "best_std": best[1], "final_mean": final[0], "final_std": final[1],
                     "test_mean": test[0], "test_std": test[1], "best_absent": absent,
                     "wall_mean_s": wall[0], "note": note})
    return rows


def _header(state: dict[str, Any]) -> list[str]:
    from .config import loads_preset

    lines = []
    try:
        cfg = loads_preset(state["preset_text"])
        labels = f"{cfg.data.labels_per_class} labels per class" if cfg.data.labels_per_class else "all labels"
        lines.append(f"dataset {cfg.data.dataset} ({labels}), target {cfg.target.arch}, {cfg.train.epochs} "
                     f"epoch(s), batch {cfg.train.batch_size}, lr {cfg.train.lr:g}, device {cfg.train.device}")
    except UserInputError:
        pass
    seeds = ", ".join(str(s) for s in state["seeds"])
    prints = ", ".join(f"{seed}: {info['fingerprint']}" for seed, info in state["splits"].items())
    lines.append(f"seeds {seeds}; every method of a seed trains on the same labelled subset (split fingerprints "
                 f"{prints})")
    metric = study_metric(state)
    unit = f", {metric.unit}" if metric.unit else ""
    lines.append(f"{metric.label} on the validation split{unit} (mean ± sample std over the finished runs; one "
                 "run has no std); best = best epoch, final = last epoch; wall time per run in seconds")
    absent = next((r["best_absent"] for r in state.get("rows", []) if r.get("best_absent")), "")
    if absent:
        lines.append(f"best is absent: {absent}")
    elif any(r.get("test_mean") is not None for r in state.get("rows", [])):
        lines.append("best = the epoch chosen on the held-out validation split; test at best = the test split's "
                     f"{metric.label} at that epoch (the number to report)")
    if "dml" in state["methods"]:
        lines.append(f"dml: {metric.label} of peer1 (peers are interchangeable; the best peer, chosen on the "
                     "validation split, is what a run exports: see study.json)")
    return lines


def write_tables(study_dir: Path, state: dict[str, Any]) -> None:
    rows = state["rows"]
    from .study_variants import variant_sections

    atomic_write_text(study_dir / "table.md", markdown_table(state, rows) + variant_sections(state))
    metric = study_metric(state)
    atomic_write_text(study_dir / "table.csv", csv_table(rows, metric))
    atomic_write_text(study_dir / "table.tex", latex_table(state, rows))
    atomic_write_text(study_dir / "curves.csv", curves_csv(method_curves(study_dir), metric))


def markdown_table(state: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m = study_metric(state)
    unit = f" ({m.unit})" if m.unit else ""
    out = [f"# Study {state['name']}", ""]
    out += [f"- {line}" for line in _header(state)]
    out += ["", f"| method | runs | best val {m.short}{unit} | final val {m.short}{unit} | test {m.short} at best{unit} "
            "| wall time (s) | note |", "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["status"] == "skipped":
            out.append(f"| {r['method']} | 0 | skipped | skipped | skipped | – | {_md(r['note'])} |")
            continue
        wall = f"{r['wall_mean_s']:.1f}" if r["wall_mean_s"] is not None else "–"
        best = m.format_mean_std(r["best_mean"], r["best_std"], sign=False)
        final = m.format_mean_std(r["final_mean"], r["final_std"], sign=False)
        test = m.format_mean_std(r.get("test_mean"), r.get("test_std"), sign=False)
        out.append(f"| {r['method']} | {r['runs']} | {best} | {final} | {test} | {wall} | {_md(r['note'])} |")
    from .paper_compare import paper_lines

    out += paper_lines(state)  # a paper preset: its published figure beside the measured mean
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def csv_table(rows: list[dict[str, Any]], metric: MetricInfo = ACCURACY) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    suffix = "_pct" if metric.percent else ""
    writer.writerow(["method", "status", "runs"] + [f"{which}_val_{metric.key}_{stat}{suffix}" for which in
                                                    ("best", "final") for stat in ("mean", "std")]
                    + [f"test_{metric.key}_at_best_{stat}{suffix}" for stat in ("mean", "std")]
                    + ["wall_time_mean_s", "note"])

    def num(value: float | None) -> str:
        return "" if value is None else f"{metric.scaled(value):.4f}"

    for r in rows:
        wall = "" if r["wall_mean_s"] is None else f"{r['wall_mean_s']:.4f}"
        writer.writerow([r["method"], r["status"], r["runs"], num(r["best_mean"]), num(r["best_std"]),
                         num(r["final_mean"]), num(r["final_std"]), num(r.get("test_mean")), num(r.get("test_std")),
                         wall, r["note"]])
    return buffer.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
                  "–": "--"}


def _tex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def latex_table(state: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m = study_metric(state)
    unit = f" ({_tex(m.unit)})" if m.unit else ""

    def cell(mean: float | None, std: float | None) -> str:
        if mean is None:
            return "--"
        return "$" + m.format_mean_std(mean, std, sign=False, plus_minus=" \\pm ") + "$"

    out = [f"% Study {_tex(state['name'])}: written by SSKT Studio; needs \\usepackage{{booktabs}}"]
    out += [f"% {_tex(line)}" for line in _header(state)]
    out += ["\\begin{tabular}{lrrrrrl}", "\\toprule",
            f"Method & Runs & Best val {_tex(m.short)}{unit} & Final val {_tex(m.short)}{unit} & Test {_tex(m.short)} at "
            f"best{unit} & Wall time (s) & Note \\\\", "\\midrule"]
    for r in rows:
        if r["status"] == "skipped":
            out.append(f"{_tex(r['method'])} & 0 & skipped & skipped & skipped & -- & {_tex(r['note'])} \\\\")
            continue
        wall = f"{r['wall_mean_s']:.1f}" if r["wall_mean_s"] is not None else "--"
        out.append(f"{_tex(r['method'])} & {r['runs']} & {cell(r['best_mean'], r['best_std'])} & "
                   f"{cell(r['final_mean'], r['final_std'])} & {cell(r.get('test_mean'), r.get('test_std'))} & "
                   f"{wall} & {_tex(r['note'])} \\\\")
    out += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- reading a study (GUI)

def load_study(study_dir: str | os.PathLike) -> dict[str, Any]:
    """study.json with every run's ``run_dir`` resolved to an absolute path."""
    path = Path(study_dir)
    try:
        state = json.loads((path / "study.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path} is not a study folder (it has no study.json)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserInputError(f"{path / 'study.json'} is damaged and cannot be read") from None
    for result in state.get("runs", []) + state.get("teacher_runs", []):
        result["run_path"] = str(path / "runs" / result["run_dir"]) if result.get("run_dir") else ""
    return state


def method_curves(study_dir: str | os.PathLike, metric: str | None = None, split: str = "val",
                  cache: dict | None = None) -> dict[str, dict[str, Any]]:
    """Per method: every run's per-epoch ``split`` ``metric`` curve (from its metrics.jsonl), and
    their mean and sample std per epoch over the runs that reached it (for a band plot).
    ``metric``: a key of the epochs' numbers; by default the study's headline metric.
    ``cache`` (any dict kept by the caller) spares re-reading metrics files that have not
    changed: the GUI asks again after every run of a study, on its own thread."""
    state = load_study(study_dir)
    metric = metric or study_metric(state).key
    curves: dict[str, dict[str, Any]] = {}
    for result in state.get("runs", []):
        if not result.get("run_path"):
            continue
        values = _run_curve(Path(result["run_path"]), metric, split, cache)
        entry = curves.setdefault(result["method"], {"runs": []})
        entry["runs"].append({"seed": result["seed"], "epochs": sorted(values),
                              "values": [values[e] for e in sorted(values)]})
    for entry in curves.values():
        longest = max((len(r["epochs"]) for r in entry["runs"]), default=0)
        entry["epochs"], entry["mean"], entry["std"], entry["counts"] = [], [], [], []
        for i in range(longest):
            column = [r["values"][i] for r in entry["runs"] if len(r["values"]) > i]
            mean, std = mean_std(column)
            entry["epochs"].append(i + 1)
            entry["mean"].append(mean)
            entry["std"].append(std if std is not None else 0.0)
            entry["counts"].append(len(column))  # a stopped run covers fewer epochs than the others
    return curves


def _run_curve(run_path: Path, metric: str, split: str, cache: dict | None) -> dict[int, float]:
    """{1-based epoch: value} of one run; a resumed run's re-logged epoch keeps its later value."""
    folder = RunFolder(run_path)
    try:
        stat = os.stat(folder.metrics_path)
        stamp: tuple | None = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    key = (str(run_path), metric, split)
    if cache is not None and stamp is not None and key in cache and cache[key][0] == stamp:
        return cache[key][1]
    values: dict[int, float] = {}
    for event in folder.events():
        if isinstance(event, ev.EpochEnd):
            value = getattr(event, split).get(metric)
            if value is not None:
                values[event.epoch + 1] = float(value)
    if cache is not None and stamp is not None:
        cache[key] = (stamp, values)
    return values


def curves_csv(curves: dict[str, dict[str, Any]], metric: MetricInfo = ACCURACY) -> str:
    """``method_curves`` in long format for plotting elsewhere: one row per method and epoch."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    suffix = "_pct" if metric.percent else ""
    writer.writerow(["method", "epoch", "runs", f"val_{metric.key}_mean{suffix}", f"val_{metric.key}_std{suffix}"])
    for method, entry in curves.items():
        for epoch, mean, std, count in zip(entry["epochs"], entry["mean"], entry["std"], entry["counts"]):
            writer.writerow([method, epoch, count, f"{metric.scaled(mean):.4f}", f"{metric.scaled(std):.4f}"])
    return buffer.getvalue()


__all__ = ["StudySpec", "run_study", "load_study", "method_curves", "summarize", "split_overrides",
           "StudyRunStarted", "StudyRunEnded", "StudyFinished"]
