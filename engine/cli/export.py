"""The export command: figures, animations, embeddings, the training movie and TensorBoard logs."""

from __future__ import annotations

import argparse
import math

from engine.cli.parser import add_force_arg, map_point, open_run
from engine.config import PROBE_SETS
from engine.datasets import load_dataset
from engine.errors import UserError
from engine.outputs import refuse_existing

EXPORTS = ("samples", "recon", "traversal", "interpolation", "embeddings", "movie", "tensorboard")

_EXPORT_HELP = """\
Write what a saved run shows to files.

  samples, recon     sample and reconstruction grids (.png) under a title line
                     (reconstructions: rows labelled image / recon)
  traversal          each latent dimension swept over ±3 standard deviations: a grid (.png;
                     rows z0, z1, …, columns the swept values), or an animation (.gif, .mp4)
                     whose frames step along the sweep
  interpolation      decoded straight lines between the codes of pairs of validation images:
                     a grid (.png; columns A … B) or an animation (.gif, .mp4)
  embeddings         the codes and labels of --set's images (.csv or .npz; default the validation
                     split; train and all add each row's split and index there)
  movie              the training movie (.gif or .mp4): the latent map at every recorded probe
                     update (raw codes for 2-D latents, otherwise PCA fitted on the last frame),
                     points coloured by class and the step on each frame, beside the image
                     decoded at --point.  The run keeps only its latest weights, so that image
                     is decoded with the latest model (the same in every frame).
  tensorboard        a TensorBoard log in --out/<run name>: the history as scalars
                     (train/<term> per step, train_epoch/<term> and val/<term> per epoch) and the
                     validation codes with labels and a sprite for the projector.
                     Then: tensorboard --logdir OUT

Grids draw each image --cell-px pixels on its longer side (default: its native size times the
smallest whole factor reaching 48 px: 8×8 digits 48, MNIST's 28×28 56; the native size gives
the unscaled images).  Animations draw their tiles --cell-px high when it is given (else 96).

MP4 needs imageio-ffmpeg: pip install 'latent-explorer[video]'."""


def add_parser(sub) -> None:
    e = sub.add_parser("export", help="write figures, animations, embeddings or TensorBoard logs of a saved run",
                       description=_EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("what", choices=EXPORTS)
    e.add_argument("run")
    e.add_argument("--out", required=True, help="output file (.png for figures, .gif or .mp4 for animations, "
                   ".csv or .npz for embeddings) or, for tensorboard, a log folder")
    e.add_argument("--set", dest="probe_set", choices=PROBE_SETS, default="validation",
                   help="embeddings: which images (test is the validation split; all: training and validation)")
    e.add_argument("--n", type=int, default=64, help="images in a sample or reconstruction grid")
    e.add_argument("--label", type=int, help="class to condition on (conditional models)")
    e.add_argument("--best", action="store_true", help="use the best weights instead of the latest")
    e.add_argument("--data-root", help="where the run's dataset lives now, if it moved")
    e.add_argument("--point", type=map_point, metavar="X,Y",
                   help="movie: the map point whose decoded image is shown (default: the centre of the codes)")
    e.add_argument("--cell-px", type=int, metavar="N",
                   help="grids: pixels of each image's longer side (default: a whole multiple of the native "
                   "size, at least 48); animations: tile height (default 96)")
    e.add_argument("--fps", type=float, default=10.0, help="animations: frames per second (default 10, at most 50)")
    add_force_arg(e)
    e.set_defaults(func=export_command)


def export_command(a) -> int:
    from engine import export
    run = open_run(a)
    which = "best" if a.best else "latest"
    if a.what == "tensorboard":
        print(f"wrote {export.export_tensorboard(run, a.out, which=which, replace=a.force)}")
        return 0
    if a.what == "movie":
        export.check_animation_target(a.out, a.fps, replace=a.force)  # before any work
        print(f"wrote {export.export_movie(run, a.out, point=a.point, fps=a.fps, label=a.label, which=which)}")
        return 0
    from engine import labelled_grid as figures
    if a.cell_px is not None:
        figures.check_cell_px(a.cell_px)
    cell = a.cell_px or figures.default_cell_px(run.image_shape)
    tile = {"tile": a.cell_px} if a.cell_px else {}
    animate = export.is_animation(a.out)
    if animate:
        if a.what not in ("traversal", "interpolation"):
            raise UserError(f"Only traversal, interpolation and movie export as animations; write {a.what} to a .png.")
        export.check_animation_target(a.out, a.fps, replace=a.force)  # before any work
    refuse_existing(a.out, a.force)
    model = run.load_model(which)
    if a.n < 1 or a.n > 4096:
        raise UserError(f"--n must be between 1 and 4096, not {a.n}.")
    nrow = max(1, int(math.sqrt(a.n)))
    if a.what == "samples":
        path = figures.save_picture(figures.samples_figure(model, a.n, nrow, cell, a.label), a.out)
    elif a.what == "traversal":
        path = (export.save_animation(export.traversal_frames(model, label=a.label, **tile), a.out, a.fps) if animate
                else figures.save_picture(figures.traversal_figure(model, cell, a.label), a.out))
    else:
        split = load_dataset(run.data)
        val = split.val
        if a.what == "embeddings":
            from engine.probe_sets import save_set_embeddings
            path = save_set_embeddings(model, split, a.probe_set, a.out, run.class_names)
        elif a.what == "recon":
            path = figures.save_picture(figures.reconstruction_figure(model, val, a.n, nrow, cell), a.out)
        elif animate:
            path = export.save_animation(export.interpolation_frames(model, val, **tile), a.out, a.fps)
        else:
            path = figures.save_picture(figures.interpolation_figure(model, val, cell), a.out)
    print(f"wrote {path}")
    return 0


