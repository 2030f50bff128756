import csv
import io
import os
import re
import sys
from importlib.metadata import entry_points

import pytest

from skhash._cli import CLASSICAL, HASHERS, _make_parser, _parse_args, main


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
