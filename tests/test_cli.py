import csv
from importlib.metadata import entry_points

import pytest

from skhash._cli import CLASSICAL, HASHERS, _parse_args, main


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
    ],
)
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_hasher_selection():
    assert _parse_args([]).hashers == list(CLASSICAL)
    assert _parse_args(["--hashers", "all"]).hashers == list(HASHERS)
    assert {"hashnet", "dsh", "dnnh", "dsth"} < set(HASHERS)


def test_precision_recall_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "plots" / "pr.png"
    assert main(["--hashers", "lsh", "itq", "--bits", "8", "--plot", str(plot)]) == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_console_script_is_the_main_job():
    (script,) = entry_points(group="console_scripts", name="skhash")
    assert script.load() is main
