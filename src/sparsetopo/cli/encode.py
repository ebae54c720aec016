"""``sparsetopo encode``: encode a (pruned) registry network as a graph file (.npz)."""
from __future__ import annotations

import argparse
import sys
import time

from ..encoding.registry import ENCODINGS
from ._checks import check_masks_cover_model, check_output_file, check_takes_shortcut, seed_arg, shortcut_option

EPILOG = """\
Output: --encoding mge writes one MultipartiteGraph .npz (src, dst, weight, num_nodes,
layer_offsets, layer_names); rolled / rolled_channel write all layers' bipartite graphs into one
.npz (names, num_left, num_right, edge_offsets, src, dst, weight). Read either back with
sparsetopo.encoding.load_graph(path).

Examples:
  sparsetopo encode --model resnet20 --masks m.safetensors --encoding mge --out g.npz
  sparsetopo encode --model resnet20 --shortcut A --encoding rolled --out layers.npz
  sparsetopo encode --model conv6 --input-shape 3 16 16 --encoding mge --out small.npz
  sparsetopo encode --model resnet18 --masks m.safetensors --input-shape 3 224 224 --out r18.npz
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True,
                        help="architecture: conv6, resnet20, resnet32, wrn28_2, resnet18, resnet50")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes (default: the model's, 10; 1000 for resnet18 / resnet50)")
    parser.add_argument("--shortcut", choices=("A", "B"), help="ResNet shortcut option (default: the model's, B)")
    parser.add_argument("--masks", metavar="FILE", help="mask file (safetensors); omit for a dense network")
    parser.add_argument("--seed", type=seed_arg, default=0, help="weight-init seed (default 0)")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"),
                        help="input shape (default 3 32 32)")
    parser.add_argument("--encoding", default="mge", choices=ENCODINGS,
                        help="graph encoding (default mge)")
    parser.add_argument("--out", required=True, metavar="G.npz", help="output file")
    parser.add_argument("--no-identity-skips", action="store_true",
                        help="MGE: leave out identity-shortcut edges (the official code's encoding)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse (with the estimate) an MGE whose encoding would need more than SIZE, "
                             "e.g. 16G (default: this machine's memory)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _model(args: argparse.Namespace):
    from ..errors import ValidationError
    from ..models import build
    from ..validation import check_input_shape

    c, h, w = check_input_shape(args.input_shape)
    if args.shortcut is not None:
        check_takes_shortcut(args.model)
    kwargs = {"in_channels": c, **shortcut_option(args.model, args.shortcut)}
    if args.model == "conv6":
        if h != w or h % 8:
            raise ValidationError(f"conv6 needs a square input with H divisible by 8, got {h}x{w}")
        kwargs["input_size"] = h
    return build(args.model, num_classes=args.num_classes, seed=args.seed, **kwargs)


def run(args: argparse.Namespace) -> int:
    from ..encoding import ENCODING_REGISTRY, encode
    from ..masks import load_masks

    t0 = time.perf_counter()
    check_output_file(args.out, "graph.npz")
    model = _model(args)
    masks = load_masks(args.masks) if args.masks else None
    if masks is not None:
        check_masks_cover_model(masks, model, args.masks)
    graph = encode(model, tuple(args.input_shape), kind=args.encoding, masks=masks,
                   identity_skips=not args.no_identity_skips,
                   progress=not args.no_progress and sys.stderr.isatty(), max_memory=args.max_memory)
    ENCODING_REGISTRY[args.encoding].save(graph, args.out)  # an OSError is an OutputError naming the file
    if not ENCODING_REGISTRY[args.encoding].layered:
        nodes, edges, layers = graph.num_nodes, graph.num_edges, graph.num_layers - 1
    else:
        nodes, edges, layers = sum(g.num_nodes for g in graph), sum(g.num_edges for g in graph), len(graph)
    print(f"{args.encoding}: {nodes} nodes, {edges} edges, {layers} layers in "
          f"{time.perf_counter() - t0:.2f} s -> {args.out}")
    return 0
