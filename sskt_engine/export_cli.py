"""``sskt export`` and ``sskt predict``: a run's network to a verified file, and that file on images.

Exit codes follow ``cli``: 0 success, 1 the export failed verification or conversion,
2 bad input (one sentence on stderr, through ``cli.main``).
"""

from __future__ import annotations

import argparse
import sys

from .errors import UserInputError
from .export import FORMATS, TOLERANCE, ExportFailed

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_run

    try:
        result = export_run(args.run_dir, args.format, args.output, checkpoint=args.checkpoint,
                            keep_aux_heads=args.keep_aux_heads, network=args.network, runs_root=args.runs_dir)
    except ExportFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    meta = result.metadata
    print(result.path)
    print(f"max abs diff: {result.diff_text()} (limit {TOLERANCE:.0e}; {result.verification})")
    heads = f", {len(meta['aux_heads']['classes'])} auxiliary head(s)" if "aux_heads" in meta else ""
    frames = f"clips of {meta['clip_len']} frames x " if meta.get("clip_len") else ""
    print(f"{meta['arch']} ({meta['network']}, {meta['checkpoint']} checkpoint, epoch {meta['epoch']}), "
          f"{meta['num_classes']} classes, input {frames}{meta['input_size']}x{meta['input_size']}{heads}, "
          f"{result.size_bytes / 1e6:.2f} MB")
    for note in result.notes:
        print(f"note: {note}")
    return EXIT_OK


def cmd_predict_source(args: argparse.Namespace) -> int:
    """``sskt predict --preset P [--source S] IMAGE...``: what one of the preset's sources sees."""
    from . import catalog  # noqa: F401  the built-in source kinds and architectures
    from .config import load_preset
    from .source_predict import SourcePredictor, pick_source

    config = load_preset(args.preset)
    predictor = SourcePredictor(config, pick_source(config, args.source))
    print(predictor.describe())
    for prediction in predictor.predict([args.model_file, *args.images], args.top_k):
        print(prediction.image)
        width = max(len(name) for name, _, _ in prediction.top)
        for name, probability, soft in prediction.top:
            print(f"  {name:<{width}}  {probability:.4f}  (soft label {soft:.4f})")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import Predictor

    if args.preset:
        return cmd_predict_source(args)
    if args.source:
        raise UserInputError("--source names one of a preset's sources: give --preset too")
    if not args.images:
        raise UserInputError("give the model file and at least one image")
    predictor = Predictor(args.model_file)
    for prediction in predictor.predict(args.images, args.top_k, threshold=args.threshold):
        print(prediction.image)
        if not prediction.top:  # a multi-label model found no class at or above the threshold
            print(f"  (no label with probability at least {args.threshold:g})")
            continue
        width = max(len(name) for name, _ in prediction.top)
        for name, probability in prediction.top:
            print(f"  {name:<{width}}  {probability:.4f}")
    return EXIT_OK


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="export a run's trained network to a verified model file",
        description="Write the run's network as a model file other tools load, load it back, and check that it "
                    f"computes what the trained network computes (largest difference at most {TOLERANCE:.0e}).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder, or its name inside the runs folder")
    from .export_formats import unavailable_formats

    missing = "".join(f"; {fmt} needs {command}" for fmt, command in unavailable_formats().items())
    p.add_argument("--format", required=True, choices=FORMATS, help=f"file format{missing}")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write (or a folder to write into)")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint (default: best)")
    p.add_argument("--keep-aux-heads", action="store_true",
                   help="keep the auxiliary heads (default: strip them; the file then outputs logits only)")
    p.add_argument("--network", metavar="NAME",
                   help="which network of a multi-network run (DML: peer1, peer2, ...); default: the run's pick")
    p.add_argument("--runs-dir", help="runs folder (default: $SSKT_RUNS_DIR or the user data folder)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "predict", help="classify images (or videos, with a video model) with an exported model file",
        description="Print the most probable classes of each image, preprocessing with nothing but the model "
                    "file's metadata. Reads .pt, .safetensors and TorchScript exports, and ONNX with onnxruntime.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="a file written by sskt export (with --preset: the "
                                                            "first image)")
    p.add_argument("images", metavar="IMAGE", nargs="*",
                   help="image files; for a video model, video files or folders of frame images")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to show per image (default: 5)")
    p.add_argument("--threshold", type=float, default=0.5, metavar="P",
                   help="multi-label models: show every label with probability at least P, instead of the top "
                        "K (default: 0.5)")
    p.add_argument("--preset", metavar="PRESET",
                   help="show what a source of this preset sees instead (its file plus what the preset says: input "
                        "side, normalization, classes); every positional argument is then an image")
    p.add_argument("--source", metavar="NAME",
                   help="with --preset: the source's name or 1-based number (default: the first), or a model file "
                        "with source keys as in sskt rank-sources")
    p.set_defaults(func=cmd_predict)
