import csv
import gzip
import io
import os
import re
import signal
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from skhash import LSHHasher, _cli
from skhash._cli import CLASSICAL, HASHERS, _make_parser, _parse_args, main


def _run_cli(*argv, env=None):
    """``python -m skhash *argv`` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "skhash", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_main_job_prints_and_writes_the_table(tmp_path, capsys):
    output = tmp_path / "results" / "table.md"
    code = main(
        ["--hashers", "lsh", "itq", "--bits", "8", "13", "--output", str(output)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| lsh")]
    assert len(rows) == 2
    mean_ap = [
        float(line.split("|")[3])
        for line in printed.splitlines()
        if line.startswith("| itq")
    ]
    assert len(mean_ap) == 2 and all(0.3 < value < 1 for value in mean_ap)
    written = output.read_text()
    assert "python -m skhash --hashers lsh itq" in written
    assert written.count("\n| itq |") == 2


def test_csv_output(tmp_path):
    output = tmp_path / "table.csv"
    assert main(["--hashers", "lsh", "--bits", "8", "16", "--output", str(output)]) == 0
    with open(output, newline="") as file:
        header, *rows = csv.reader(file)
    assert header[:3] == ["hasher", "bits", "MAP"]
    assert [row[:2] for row in rows] == [["lsh", "8"], ["lsh", "16"]]
    assert all(0 < float(row[2]) < 1 for row in rows)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bits", "0"],
        ["--hashers", "pca"],
        ["--dataset", "cifar"],
        ["--bits", "x"],
        ["--epochs", "0"],
        ["--unsupervised-train", "1"],
        ["--random-state", "-1"],
        ["--random-state", "1.5"],
        ["--random-state", str(2**32)],
    ],
)
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, text",
    [
        # Other scripts' digits, which int() reads: Arabic-Indic 3, fullwidth 1.
        ("--bits", "\u0663"),
        ("--epochs", "\uff11"),
        ("--unsupervised-train", "\u0967\u0966"),
        # Leading zeros, signs, blanks and separators, which int() takes too.
        ("--bits", "08"),
        ("--random-state", "00"),
        ("--bits", "+8"),
        ("--bits", " 8"),
        ("--unsupervised-train", "1_000"),
    ],
)
def test_integer_options_take_only_plain_ascii_decimal(option, text, capsys):
    with pytest.raises(SystemExit) as error:
        main(["--hashers", "lsh", "--bits", "8", option, text])
    assert error.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message.startswith(f"python -m skhash: error: argument {option}: ")
    assert message.endswith(f"got {text!r}")


def test_hasher_selection():
    assert _parse_args(_make_parser(), []).hashers == list(CLASSICAL)
    assert _parse_args(_make_parser(), ["--hashers", "all"]).hashers == list(HASHERS)
    assert {"hashnet", "dsh", "dnnh", "dsth"} < set(HASHERS)


def test_precision_recall_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "plots" / "pr.png"
    assert main(["--hashers", "lsh", "itq", "--bits", "8", "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("option", ["--output", "--plot"])
@pytest.mark.parametrize(
    "make_path, message",
    [
        (lambda tmp_path: tmp_path, "is a directory"),
        (lambda tmp_path: tmp_path / "a-file" / "table.md", "is not a directory"),
    ],
    ids=["directory", "under a file"],
)
def test_unwritable_outputs_fail_before_any_work(
    tmp_path, capsys, option, make_path, message
):
    # They used to fail with a traceback after the whole benchmark had run.
    if option == "--plot":
        pytest.importorskip("matplotlib")
    (tmp_path / "a-file").write_text("")
    path = make_path(tmp_path)
    with pytest.raises(SystemExit) as error:
        main(["--hashers", "lsh", "--bits", "8", option, str(path)])
    assert error.value.code == 2
    captured = capsys.readouterr()
    assert f"error: {option} {path}: " in captured.err and message in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    "name, message",
    [
        ("new/table.md", "cannot create files in"),
        ("table.md", "the file is not writable"),
    ],
)
def test_read_only_output_fails_before_any_work(
    tmp_path, capsys, monkeypatch, name, message
):
    (tmp_path / "table.md").write_text("")
    # Permission bits do not stop root, so deny writing as the OS would.
    access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: (
            path not in (tmp_path, tmp_path / "table.md") and access(path, mode)
        ),
    )
    with pytest.raises(SystemExit) as error:
        main(["--hashers", "lsh", "--bits", "8", "--output", str(tmp_path / name)])
    assert error.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


@pytest.mark.parametrize("option", ["--output", "--plot"])
@pytest.mark.parametrize(
    "path", ["/dev/full", "/proc/skhash-table.md", "/sys/skhash-table.md"]
)
def test_outputs_that_refuse_writes_fail_before_any_work(option, path, capsys):
    # Permissions let them pass (/dev/full is writable by all, and root may
    # create files anywhere): the table used to be lost in a traceback after
    # the whole benchmark.
    if not Path(path).parent.is_dir():
        pytest.skip(f"no {Path(path).parent} here")
    if option == "--plot":
        pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit) as error:
        main(["--hashers", "lsh", "--bits", "8", option, path])
    assert error.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].startswith(
        f"python -m skhash: error: {option} {path}: cannot be written ("
    )
    assert captured.out == ""


def test_output_check_leaves_no_file_behind(tmp_path, capsys):
    # The check writes to the file to prove it can: a usage error found after
    # it (here STH's code lengths) must not leave an empty table.
    output = tmp_path / "table.md"
    argv = ["--hashers", "sth", "--unsupervised-train", "10", "--output", str(output)]
    with pytest.raises(SystemExit):
        main(argv)
    assert "at most 8 bits" in capsys.readouterr().err
    assert not output.exists()


def test_dev_full_output_fails_at_once_without_traceback():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    result = _run_cli("--hashers", "lsh", "--bits", "8", "--output", "/dev/full")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "python -m skhash: error: --output /dev/full: cannot be written (No space "
        "left on device)"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("name", ["table.md", "table.csv"])
def test_output_that_fails_at_the_end_keeps_the_table_on_stdout(
    name, tmp_path, monkeypatch, capsys
):
    # A file that passes the check but cannot be written when the table is
    # ready (a disk that filled up meanwhile): here the check is skipped, and
    # the file is a link to /dev/full.
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    monkeypatch.setattr(_cli, "_write_problem", lambda path: None, raising=False)
    output = tmp_path / name
    output.symlink_to("/dev/full")
    assert main(["--hashers", "lsh", "--bits", "8", "--output", str(output)]) == 1
    captured = capsys.readouterr()
    assert "| lsh | 8 |" in captured.out
    assert captured.err.splitlines()[-1] == (
        f"python -m skhash: error: could not write --output {output} (No space "
        "left on device); the table is on stdout above"
    )


def test_ctrl_c_keeps_the_finished_rows(tmp_path):
    # KSH at 64 bits takes about a minute on digits: Ctrl-C comes in the
    # middle of it, once the LSH row is out.
    output = tmp_path / "table.md"
    process = subprocess.Popen(
        [sys.executable, "-m", "skhash", "--hashers", "lsh", "ksh", "--bits", "64"]
        + ["--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        # Off a terminal the progress is a line per finished job, flushed.
        assert process.stderr.readline().startswith("[1/2] lsh 64 bits: ")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err.splitlines() == [
        "python -m skhash: interrupted after 1 of 2 jobs; the finished rows are "
        f"in {output}, marked as partial"
    ]
    assert "| lsh | 64 |" in out and "| ksh |" not in out
    lines = output.read_text().splitlines()
    assert lines[0].startswith("**Partial table: interrupted after 1 of 2 jobs.**")
    assert [line.split(" | ")[:2] for line in lines[4:]] == [["| lsh", "64"]]


@pytest.fixture
def ctrl_c():
    """Ctrl-C handled as Python does by default, also where the tests run with
    SIGINT ignored (a background job of a non-interactive shell)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _default_sigint():
    # In the child, before Python starts: with SIGINT ignored (inherited from a
    # background job), Python would not turn Ctrl-C into KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class _StopsOnCtrlC(LSHHasher):
    def fit(self, X, y=None):
        # As skorch's fit does: Ctrl-C ends the training, and fit returns.
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        return super().fit(X, y)


def test_ctrl_c_swallowed_by_a_fit_still_stops_the_run(
    tmp_path, monkeypatch, capsys, ctrl_c
):
    # A deep hasher's row after Ctrl-C would be that of a half-trained model.
    monkeypatch.setitem(
        HASHERS, "itq", (lambda n_bits, seed, o: _StopsOnCtrlC(n_bits), False)
    )
    output = tmp_path / "table.csv"
    argv = ["--hashers", "lsh", "itq", "lsh", "--bits", "8", "--output", str(output)]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert "| lsh | 8 |" in captured.out and "| itq |" not in captured.out
    assert captured.err.splitlines()[-1] == (
        "python -m skhash: interrupted after 1 of 3 jobs; the finished rows are "
        f"in {output}, marked as partial"
    )
    with open(output, newline="") as file:
        header, *rows, mark = csv.reader(file)
    assert header[:2] == ["hasher", "bits"] and [r[:2] for r in rows] == [["lsh", "8"]]
    assert mark == ["# partial: interrupted after 1 of 3 jobs"]


def test_ctrl_c_before_any_row_leaves_the_output_alone(
    tmp_path, monkeypatch, capsys, ctrl_c
):
    monkeypatch.setitem(
        HASHERS, "itq", (lambda n_bits, seed, o: _StopsOnCtrlC(n_bits), False)
    )
    output = tmp_path / "table.md"
    output.write_text("an earlier table\n")
    assert main(["--hashers", "itq", "--bits", "8", "--output", str(output)]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m skhash: interrupted after 0 of 1 jobs; {output} not written"
    )
    assert output.read_text() == "an earlier table\n"


def test_corrupt_dataset_file_is_one_line_without_traceback(tmp_path):
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            content = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))
            (folder / f"{prefix}-{kind}-ubyte.gz").write_bytes(content[:-12])
    env = {**os.environ, "SKHASH_DATA": str(tmp_path / "data")}
    result = _run_cli("--dataset", "fashion-mnist", "--hashers", "lsh", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"python -m skhash: error: {folder / 'train-images-idx3-ubyte.gz'} could "
        "not be decompressed (the data end before the gzip end-of-stream marker): "
        "the file is truncated or corrupt. Delete it and get it again."
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "argv, message",
    [
        # ITQ makes one bit per feature: digits have 64.
        (["--hashers", "lsh", "ksh", "--bits", "8", "1000"], "at most 300 bits"),
        # Above every hasher's limit: scikit-learn's parameter validation.
        (["--hashers", "lsh", "--bits", "8", "5000"], "'n_bits' parameter"),
        (["--hashers", "sth", "--unsupervised-train", "10"], "at most 8 bits"),
    ],
)
def test_impossible_code_lengths_fail_before_the_first_job(argv, message, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2
    captured = capsys.readouterr()
    assert "error: " in captured.err and message in captured.err
    assert "| lsh |" not in captured.out


def test_progress_off_a_terminal_is_a_line_per_finished_job(capsys):
    assert main(["--hashers", "lsh", "--bits", "8", "16"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\[1/2\] lsh 8 bits: \d+\.\d s", lines[0])
    assert re.fullmatch(r"\[2/2\] lsh 16 bits: \d+\.\d s", lines[1])


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal_names_the_job_without_rate_or_eta(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["--hashers", "lsh", "--bits", "8", "16"]) == 0
    shown = terminal.getvalue()
    assert re.search(r"running lsh 16 bits: 1/2 jobs done, \d\d:\d\d elapsed", shown)
    # Neither tqdm's rate (it/s, s/it) nor its "elapsed<remaining".
    assert "it/s" not in shown and "s/it" not in shown and "<" not in shown
    assert "[1/2]" not in shown


def test_console_script_is_the_main_job():
    (script,) = entry_points(group="console_scripts", name="skhash")
    assert script.load() is main
