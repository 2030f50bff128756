"""The main job: fit hashers, search their codes, print retrieval quality.

``python -m skhash`` splits a dataset as the hashing papers do (held-out
queries, a labelled training set, the rest as database), fits each hasher at
each code length (supervised ones on the labelled set, unsupervised ones on the
database), encodes queries and database, searches with
:class:`~skhash.HammingNeighbors` and prints MAP, MAP@k and precision within
Hamming radius 2 with fit and encoding times, as a Markdown table.

Everything that can be checked is checked before the first job, as usage
errors: the output files, the arguments and whether each hasher can make each
code length from the data, since one job can take minutes. For the same
reason Ctrl-C stops the run but keeps the rows that finished, in the output
file too (marked as partial), and exits with status 130.
"""

import argparse
import csv
import os
import platform
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .classical import (
    CCAITQHasher,
    ITQHasher,
    KSHHasher,
    LSHHasher,
    SpectralHasher,
    STHHasher,
)
from .datasets import load_fashion_mnist, retrieval_split
from .deep import (
    CSQHasher,
    DNNHHasher,
    DPNHasher,
    DSHHasher,
    DSTHHasher,
    GreedyHashHasher,
    HashNetHasher,
    OrthoHashHasher,
)
from .deep._requires import require_deep
from .metrics import (
    HammingPrecisionRecallDisplay,
    mean_average_precision,
    precision_within_radius,
)
from .neighbors import HammingNeighbors
from .utils._torch import device_name

# name -> (factory(n_bits, random_state, options), supervised); options holds the
# dataset's image shape and the number of training epochs of the deep hashers.
CLASSICAL = {
    "lsh": (lambda n_bits, seed, o: LSHHasher(n_bits, random_state=seed), False),
    "sh": (lambda n_bits, seed, o: SpectralHasher(n_bits), False),
    "itq": (lambda n_bits, seed, o: ITQHasher(n_bits, random_state=seed), False),
    "sth": (
        lambda n_bits, seed, o: STHHasher(n_bits, n_jobs=-1, random_state=seed),
        False,
    ),
    "cca-itq": (
        lambda n_bits, seed, o: CCAITQHasher(n_bits, random_state=seed),
        True,
    ),
    "ksh": (lambda n_bits, seed, o: KSHHasher(n_bits, random_state=seed), True),
}


def _deep(Hasher):
    # The image backbone on raw pixels; DNNH's own Network-in-Network is too
    # heavy for a CPU benchmark at 64 bits (its last layers have 50 * n_bits maps).
    def factory(n_bits, seed, options):
        return Hasher(
            n_bits,
            backbone="cnn",
            input_shape=options["input_shape"],
            max_epochs=options["epochs"],
            random_state=seed,
        )

    return factory


DEEP = {
    "hashnet": (_deep(HashNetHasher), True),
    "dsh": (_deep(DSHHasher), True),
    "dnnh": (_deep(DNNHHasher), True),
    "dsth": (_deep(DSTHHasher), False),
    "csq": (_deep(CSQHasher), True),
    "orthohash": (_deep(OrthoHashHasher), True),
    "greedyhash": (_deep(GreedyHashHasher), True),
    "dpn": (_deep(DPNHasher), True),
}
HASHERS = {**CLASSICAL, **DEEP}


def _load_digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def _load_fashion_mnist():
    X, y = load_fashion_mnist(return_X_y=True)
    return X / 255, y


# name -> (loader, image shape, queries per class, labelled training images per
# class, k of MAP@k)
DATASETS = {
    "digits": (_load_digits, (1, 8, 8), 20, 60, 100),
    "fashion-mnist": (_load_fashion_mnist, (1, 28, 28), 100, 500, 1000),
}


def _epoch_seconds(hasher):
    """Mean training epoch of a deep hasher (skorch's history), else '-'."""
    if not hasattr(hasher, "net_"):
        return "-"
    return f"{np.mean(hasher.net_.history[:, 'dur']):.2f}"


# A decimal integer in ASCII digits, one spelling per number: int() would also
# take other scripts' digits ("\u0663" is 3), signs, spaces, "_" and leading zeros.
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _integer(minimum, maximum=None):
    """argparse type: an integer from minimum to maximum (None: no maximum)."""
    bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    upper = float("inf") if maximum is None else maximum

    def parse(text):
        if _DECIMAL.fullmatch(text) is None or not minimum <= int(text) <= upper:
            raise argparse.ArgumentTypeError(
                f"must be an integer {bound} in ASCII digits 0-9, without sign "
                f"or leading zeros, got {text!r}"
            )
        return int(text)

    return parse


def _make_parser():
    parser = argparse.ArgumentParser(
        prog="python -m skhash",
        description="Learning-to-hash retrieval benchmark (the seed papers' protocol).",
    )
    parser.add_argument("--dataset", default="digits", choices=list(DATASETS))
    parser.add_argument(
        "--hashers",
        nargs="+",
        default=list(CLASSICAL),
        choices=[*HASHERS, "all"],
        help="hashers to run (default: the classical ones; 'all' adds the deep ones)",
    )
    parser.add_argument(
        "--bits",
        nargs="+",
        type=_integer(1),
        default=[16, 32, 64],
        help="code lengths (default: 16 32 64)",
    )
    parser.add_argument(
        "--unsupervised-train",
        type=_integer(2),
        metavar="N",
        help="fit unsupervised hashers on N database items (default: all of them)",
    )
    parser.add_argument(
        "--epochs",
        type=_integer(1),
        default=10,
        help="training epochs of the deep hashers",
    )
    # The seed of NumPy's RandomState, which the hashers draw from.
    parser.add_argument("--random-state", type=_integer(0, 2**32 - 1), default=0)
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the table to FILE: CSV if it ends in .csv, else Markdown",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE",
        help="also draw precision-recall curves by Hamming radius to FILE (PNG)",
    )
    return parser


def _parse_args(parser, argv):
    args = parser.parse_args(argv)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'skhash[plot]'")
    for option, path in [("--output", args.output), ("--plot", args.plot)]:
        if path is not None:
            _check_writable(parser, option, path)
    if "all" in args.hashers:
        args.hashers = list(HASHERS)
    deep = [name for name in args.hashers if name in DEEP]
    if deep:
        try:
            require_deep(f"--hashers {' '.join(deep)}")
        except ImportError as error:
            parser.error(str(error))
    return args


def _check_writable(parser, option, path):
    """Usage error unless path can be written (its missing folders made)."""
    if path.is_dir():
        parser.error(f"{option} {path}: is a directory, not a file")
    if path.exists():
        if not os.access(path, os.W_OK):
            parser.error(f"{option} {path}: the file is not writable")
    else:
        folder = path.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            parser.error(f"{option} {path}: {folder} is not a directory")
        if not os.access(folder, os.W_OK | os.X_OK):
            parser.error(f"{option} {path}: cannot create files in {folder}")
        if folder != path.parent:
            return  # Probing would mean making the folders: permissions must do.
    # Permissions pass where writing fails: /dev/full, most of /proc and /sys.
    problem = _write_problem(path)
    if problem is not None:
        parser.error(f"{option} {path}: cannot be written ({problem})")


def _write_problem(path):
    """Why writing to path fails, found by writing nothing to it; None if it works.

    An empty write still reaches the file's driver, which refuses it as it
    would refuse the table (/dev/full: no space left; a /proc file: I/O
    error), while a terminal or a pipe (/dev/stdout) gets no byte. Append mode
    never truncates a file that exists; a file that the probe makes goes.
    A named pipe is not probed: opening it waits for a reader.
    """
    if path.is_fifo():
        return None
    existed = os.path.lexists(path)
    try:
        with open(path, "ab", buffering=0) as file:
            file.write(b"")
    except OSError as error:
        return error.strerror or str(error)
    finally:
        if not existed:
            path.unlink(missing_ok=True)
    return None


def _check_jobs(parser, args, options, shapes):
    """Usage error naming every (hasher, bits) job that would fail on this data.

    ``shapes[supervised]`` is the (n_samples, n_features) that the hasher is
    fitted on.
    """
    problems = []
    for name in args.hashers:
        factory, supervised = HASHERS[name]
        n_samples, n_features = shapes[supervised]
        for n_bits in args.bits:
            hasher = factory(n_bits, args.random_state, options)
            try:
                hasher._validate_params()
            except ValueError as error:
                problems.append(f"{name} with --bits {n_bits}: {error}")
                continue
            # Defensive: a hasher without the bound is checked only by its fit.
            max_n_bits = getattr(hasher, "_max_n_bits", None)
            limit = None if max_n_bits is None else max_n_bits(n_samples, n_features)
            if limit is not None and n_bits > limit:
                problems.append(
                    f"{name} with --bits {n_bits}: it can make at most {limit} "
                    f"bits from its {n_samples} training samples of {n_features} "
                    f"features on {args.dataset}"
                )
    if problems:
        parser.error("\n  ".join(problems))


def main(argv=None):
    parser = _make_parser()
    args = _parse_args(parser, argv)
    given = sys.argv[1:] if argv is None else argv
    try:
        return _benchmark(parser, args, given)
    except KeyboardInterrupt:
        # Ctrl-C outside the jobs (loading the data, saving the files): one
        # line, not a traceback that would push the rows printed off screen.
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


def _benchmark(parser, args, given):
    """The jobs, the table and the files; the exit status."""
    load, input_shape, n_queries, n_train, k = DATASETS[args.dataset]
    options = {"input_shape": input_shape, "epochs": args.epochs}
    try:
        X, y = load()
    except (OSError, ValueError) as error:
        # The loaders' messages say what is wrong and how to fix it.
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    split = retrieval_split(
        X.astype(np.float32),
        y,
        n_queries_per_class=n_queries,
        n_train_per_class=n_train,
        random_state=args.random_state,
    )
    unsupervised_train = split.X_database
    if args.unsupervised_train is not None:
        rng = check_random_state(args.random_state)
        size = min(args.unsupervised_train, len(split.X_database))
        unsupervised_train = split.X_database[
            rng.choice(len(split.X_database), size, replace=False)
        ]
    shapes = {True: split.X_train.shape, False: unsupervised_train.shape}
    _check_jobs(parser, args, options, shapes)
    print(
        f"{args.dataset}: {len(split.X_query)} queries, a database of "
        f"{len(split.X_database)}; supervised hashers fit on {len(split.X_train)} "
        f"labelled items, unsupervised ones on {len(unsupervised_train)}; "
        "relevant = same class"
    )
    columns = ["hasher", "bits", "MAP", f"MAP@{k}", "P@r<=2", "fit s", "s/epoch"]
    columns.append("encode s")
    print(_markdown_row(columns) + "\n|---|" + "---:|" * (len(columns) - 1))
    records, devices = [], set()
    axes = _new_axes() if args.plot else None
    jobs = [(name, n_bits) for name in args.hashers for n_bits in args.bits]
    interrupted = False
    try:
        with _CtrlC() as ctrl_c, _Progress(len(jobs)) as progress:
            for name, n_bits in jobs:
                progress.start(f"{name} {n_bits} bits")
                record, device, codes = _run_job(
                    name, n_bits, args, options, split, unsupervised_train, k
                )
                if ctrl_c.seen:
                    raise KeyboardInterrupt  # The job's fit swallowed it.
                records.append(record)
                devices.update(device)
                if axes is not None:
                    _draw_curve(axes, f"{name} {n_bits} bits", n_bits, *codes)
                tqdm.write(_markdown_row(record), file=sys.stdout)
                progress.finish()
    except KeyboardInterrupt:
        # Ctrl-C keeps the rows that finished: a job can take minutes.
        interrupted = True
    sys.stdout.flush()  # The rows come before any message about them.
    partial = None
    if interrupted:
        partial = f"interrupted after {len(records)} of {len(jobs)} jobs"
    context = (
        f"Command: `{' '.join(['python -m skhash', *given])}` on "
        f"{platform.machine()}, Python {platform.python_version()}, "
        f"{len(split.X_query)} queries against {len(split.X_database)}"
    )
    if devices:
        context += f"; deep hashers trained on {', '.join(sorted(devices))}"
    problems = []
    if records or not interrupted:
        problems = _save(args, columns, records, context + ".", axes, partial)
    return _report(parser.prog, args, records, partial, problems)


def _run_job(name, n_bits, args, options, split, unsupervised_train, k):
    """Fit, encode, search and score one hasher at one code length.

    Returns the table row, the set of devices a deep hasher trained on, and
    the codes with their labels: queries, database, y_query, y_database.
    """
    factory, supervised = HASHERS[name]
    hasher = factory(n_bits, args.random_state, options)
    start = time.perf_counter()
    if supervised:
        hasher.fit(split.X_train, split.y_train)
    else:
        hasher.fit(unsupervised_train)
    fit_seconds = time.perf_counter() - start
    devices = {device_name(hasher.device_)} if hasattr(hasher, "device_") else set()
    start = time.perf_counter()
    database = hasher.transform(split.X_database)
    queries = hasher.transform(split.X_query)
    encode_seconds = time.perf_counter() - start
    nn = HammingNeighbors().fit(database, split.y_database)
    codes = queries, database, split.y_query, split.y_database
    record = [
        name,
        str(n_bits),
        f"{nn.score(queries, split.y_query):.4f}",
        f"{mean_average_precision(*codes, k=k):.4f}",
        f"{precision_within_radius(*codes, radius=2):.4f}",
        f"{fit_seconds:.2f}",
        _epoch_seconds(hasher),
        f"{encode_seconds:.2f}",
    ]
    return record, devices, codes


def _draw_curve(axes, name, n_bits, queries, database, y_query, y_database):
    HammingPrecisionRecallDisplay.from_codes(
        queries, y_query, database, y_database, n_bits=n_bits, name=name, ax=axes
    )


def _save(args, columns, records, context, axes, partial):
    """Write --output and --plot; one 'option file (reason)' per failure.

    The up-front check cannot rule out every failure (a disk that fills up
    meanwhile), and a traceback here would lose a run of minutes: the caller
    reports the failures instead, with the table already on stdout.
    """
    problems = []
    if args.output:
        try:
            _write_table(args.output, columns, records, context, partial)
        except OSError as error:
            problems.append(f"--output {args.output} ({error.strerror or error})")
    if axes is not None:
        title = f"{args.dataset}: precision and recall by Hamming radius"
        axes.set_title(title if partial is None else f"{title} ({partial})")
        try:
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            axes.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        except OSError as error:
            problems.append(f"--plot {args.plot} ({error.strerror or error})")
    return problems


def _report(prog, args, records, partial, problems):
    """Say on stderr what was interrupted or not written; return the status."""
    if partial is None:
        for problem in problems:
            print(
                f"{prog}: error: could not write {problem}; the table is on "
                "stdout above",
                file=sys.stderr,
            )
        return 1 if problems else 0
    files = [f for f in (args.output, args.plot) if f is not None]
    if problems:
        outcome = f"; could not write {', '.join(problems)}"
    elif not files:
        outcome = ""
    elif records:
        written = " and ".join(str(f) for f in files)
        outcome = f"; the finished rows are in {written}, marked as partial"
    else:
        outcome = f"; {' and '.join(str(f) for f in files)} not written"
    print(f"{prog}: {partial}{outcome}", file=sys.stderr)
    return 130


class _CtrlC:
    """Ctrl-C raises KeyboardInterrupt as usual, and is remembered in `seen`.

    skorch's fit catches KeyboardInterrupt to end training early and returns
    normally: the deep hasher's row would pass for a real result and the next
    job would start. `seen` lets the loop stop instead.
    """

    def __init__(self):
        self.seen = False

    def _handle(self, signum, frame):
        self.seen = True
        signal.default_int_handler(signum, frame)

    def __enter__(self):
        self._previous = signal.getsignal(signal.SIGINT)
        # Only in place of Python's own handler: not where SIGINT is ignored
        # (a background job) or handled by the caller, nor off the main thread,
        # where signal.signal raises.
        if (
            self._previous is signal.default_int_handler
            and threading.current_thread() is threading.main_thread()
        ):
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)


class _Progress:
    """Progress of the jobs on stderr, which the table on stdout never shares.

    On a terminal, one status line (the job running, jobs done, time elapsed)
    redrawn every second, since a job can take minutes; elsewhere (a log, CI),
    one line per finished job. Jobs differ in length by 1000x, so neither
    shows a rate or an estimated time left.
    """

    def __init__(self, n_jobs):
        self.n_jobs = n_jobs
        self.n_done = 0
        self._bar = tqdm(
            total=n_jobs,
            bar_format="{desc}: {n_fmt}/{total_fmt} jobs done, {elapsed} elapsed",
            disable=None,
            leave=False,
        )
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self):
        while not self._stop.wait(1.0):
            self._bar.refresh()

    def __enter__(self):
        if not self._bar.disable:
            self._ticker.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self._bar.close()

    def start(self, job):
        self._job = job
        self._job_start = time.perf_counter()
        self._bar.set_description_str(f"running {job}")

    def finish(self):
        self.n_done += 1
        self._bar.update()
        if self._bar.disable:
            seconds = time.perf_counter() - self._job_start
            print(
                f"[{self.n_done}/{self.n_jobs}] {self._job}: {seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )


def _new_axes():
    from matplotlib.figure import Figure

    return Figure(figsize=(7, 5)).add_subplot()


def _markdown_row(cells):
    return "| " + " | ".join(cells) + " |"


def _write_table(path, columns, records, context, partial=None):
    """CSV when the file name ends in .csv (no context line), else Markdown.

    A partial table (`partial` says why) is marked so that it is never taken
    for a whole one: a last '# partial: ...' line in CSV, which a reader of
    the rows trips on rather than skips; in Markdown, the first words.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        rows = [columns, *records]
        if partial is not None:
            rows.append([f"# partial: {partial}"])
        with open(path, "w", newline="") as file:
            csv.writer(file).writerows(rows)
        return
    if partial is not None:
        context = f"**Partial table: {partial}.** {context}"
    lines = [
        context,
        "",
        _markdown_row(columns),
        "|---|" + "---:|" * (len(columns) - 1),
    ]
    path.write_text("\n".join(lines + [_markdown_row(r) for r in records]) + "\n")
