"""``sskt export`` and ``sskt predict``: a run's network to a verified file, and that file on images.

Exit codes follow ``cli``: 0 success, 1 the export failed verification or conversion,
2 bad input (one sentence on stderr, through ``cli.main``).
"""

from __future__ import annotations

import argparse
import sys

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
    print(f"{meta['arch']} ({meta['network']}, {meta['checkpoint']} checkpoint, epoch {meta['epoch']}), "
          f"{meta['num_classes']} classes, input {meta['input_size']}x{meta['input_size']}{heads}, "
          f"{result.size_bytes / 1e6:.2f} MB")
    for note in result.notes:
        print(f"note: {note}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import Predictor

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
    p.add_argument("--format", required=True, choices=FORMATS, help="file format")
    p.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write (or a folder to write into)")
    p.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint (default: best)")
    p.add_argument("--keep-aux-heads", action="store_true",
                   help="keep the auxiliary heads (default: strip them; the file then outputs logits only)")
    p.add_argument("--network", metavar="NAME",
                   help="which network of a multi-network run (DML: peer1, peer2, ...); default: the run's pick")
    p.add_argument("--runs-dir", help="runs folder (default: $SSKT_RUNS_DIR or the user data folder)")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "predict", help="classify images with an exported model file",
        description="Print the most probable classes of each image, preprocessing with nothing but the model "
                    "file's metadata. Reads .pt, .safetensors and TorchScript exports, and ONNX with onnxruntime.")
    p.add_argument("model_file", metavar="MODEL_FILE", help="a file written by sskt export")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="classes to show per image (default: 5)")
    p.add_argument("--threshold", type=float, default=0.5, metavar="P",
                   help="multi-label models: show every label with probability at least P, instead of the top "
                        "K (default: 0.5)")
    p.set_defaults(func=cmd_predict)
