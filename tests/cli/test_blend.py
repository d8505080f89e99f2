"""`ens blend` through the CLI: tables, files, errors without tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from ensemble.cli import cli
from ensemble.io.checks import point_columns

HEADER = ["file_name", *point_columns(2)]


def _submissions(tmp_path, count=3):
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 100, size=(count, 5, 4))
    names = [f"im{i}.jpg" for i in range(5)]
    for number in range(count):
        frame = pd.DataFrame(values[number], columns=HEADER[1:])
        frame.insert(0, "file_name", names)
        frame.to_csv(tmp_path / f"s{number}.csv", index=False)
    return values


def _run(*args):
    return CliRunner().invoke(cli, ["blend", *map(str, args)])


def test_scored_blend_prints_table_and_writes_inverse_weighted_mean(tmp_path):
    values = _submissions(tmp_path)
    (tmp_path / "scores.csv").write_text("submission,score\ns0.csv,1\ns1.csv,2\ns2.csv,4\n")
    result = _run("--weights", tmp_path / "scores.csv", "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["submission", "score", "weight"]
    assert lines[1].split() == ["s0", "1", "0.5714"]  # 1 : 1/2 : 1/4 = 4/7, 2/7, 1/7
    assert lines[3].split() == ["s2", "4", "0.1429"]
    weights = np.array([4, 2, 1]) / 7
    got = pd.read_csv(tmp_path / "out.csv").iloc[:, 1:].to_numpy()
    assert np.allclose(got, np.einsum("r,rnv->nv", weights, values), atol=5e-5)


def test_sub_arguments_scheme_and_top(tmp_path):
    values = _submissions(tmp_path)
    (tmp_path / "scores.csv").write_text("submission,score\ns0.csv,3\ns1.csv,1\ns2.csv,2\n")
    result = _run(
        tmp_path / "s0.csv",
        tmp_path / "s1.csv",
        tmp_path / "s2.csv",
        "--weights",
        tmp_path / "scores.csv",
        "--scheme",
        "equal",
        "--top",
        "2",
        "-o",
        tmp_path / "out.csv",
    )
    assert result.exit_code == 0, result.output
    got = pd.read_csv(tmp_path / "out.csv").iloc[:, 1:].to_numpy()
    assert np.allclose(got, (values[1] + values[2]) / 2, atol=5e-5)


def test_median_without_scores(tmp_path):
    values = _submissions(tmp_path)
    args = [tmp_path / f"s{i}.csv" for i in range(3)]
    result = _run(*args, "--combine", "median", "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(tmp_path / "out.csv").iloc[:, 1:].to_numpy()
    assert np.allclose(got, np.median(values, axis=0), atol=5e-5)


def test_bad_input_is_a_clean_error_with_no_output(tmp_path):
    _submissions(tmp_path)
    bad = tmp_path / "s1.csv"
    bad.write_text(bad.read_text().replace("im2.jpg,", "im2.jpg,x", 1))
    result = _run(tmp_path / "s0.csv", bad, "-o", tmp_path / "out.csv")
    assert result.exit_code == 1
    assert "s1.csv, line 4: non-numeric value" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out.csv").exists()
    result = _run(tmp_path / "s0.csv", tmp_path / "s2.csv", "-o", tmp_path / "s2.csv")
    assert result.exit_code == 1 and "it is an input of this command (s2.csv)" in result.output


def test_usage_errors(tmp_path):
    _submissions(tmp_path)
    result = _run(tmp_path / "s0.csv", "--scheme", "inverse", "-o", tmp_path / "out.csv")
    assert result.exit_code == 2 and "--weights" in result.output
    assert _run("-o", tmp_path / "out.csv").exit_code == 2


def test_fit_prints_val_scores_and_writes_weights(tmp_path):
    from tests.helpers import make_runs

    runs, _, _, _, _ = make_runs(tmp_path, [1.0, 2.0])
    output = tmp_path / "blend.csv"
    result = _run("--fit", runs, "--method", "greedy", "-o", output)
    assert result.exit_code == 0, result.output
    assert "fitted on 120 validation images (greedy)" in result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:5]}
    saved = json.loads((tmp_path / "blend.weights.json").read_text())
    assert float(rows["run0"][1]) == float(f"{saved['val_scores']['run0']:.6g}")
    assert float(rows["blend"][1]) < float(rows["run0"][1])
    assert output.is_file()
    result = _run("--fit", runs, "--per-region", "-o", tmp_path / "regional.csv")
    assert result.exit_code == 0, result.output
    assert "per-region weights" in result.output and "left eyebrow" in result.output


def test_compare_command_prints_the_table_and_writes_nothing(tmp_path):
    from tests.helpers import make_runs

    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, ["blend", "--fit", str(runs), "--compare"])
    assert result.exit_code == 0, result.output
    assert "cross-validated" in result.output and "would choose: " in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    refused = CliRunner().invoke(
        cli, ["blend", "--fit", str(runs), "--compare", "-o", str(tmp_path / "x.csv")]
    )
    assert refused.exit_code == 2 and "writes nothing" in refused.output


def test_learned_methods_say_their_strength_and_compare_lists_them(tmp_path):
    from tests.helpers import make_runs

    runs, *_ = make_runs(tmp_path, [1.0, 2.0, 3.0])
    result = _run("--fit", runs, "--method", "shrink", "-o", tmp_path / "shrink.csv")
    assert result.exit_code == 0, result.output
    assert "strength chosen across 5 folds: " in result.output
    assert "mean per region" in result.output and "left eyebrow" in result.output
    saved = json.loads((tmp_path / "shrink.weights.json").read_text())
    assert len(saved["point_weights"]) == 971 and "held_out_mse_by_strength" in saved
    result = _run("--fit", runs, "--method", "stack", "-o", tmp_path / "stack.csv")
    assert result.exit_code == 0, result.output
    assert "coef" in result.output.splitlines()[1]  # coefficients, not shares
    compared = CliRunner().invoke(cli, ["blend", "--fit", str(runs), "--compare"])
    methods = [line.split()[0] for line in compared.output.splitlines()[2:9]]
    assert methods == ["lsq", "greedy", "lsq", "greedy", "shrink", "stack", "best"]


def test_learned_methods_refuse_per_region(tmp_path):
    from tests.helpers import make_runs

    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    result = _run("--fit", runs, "--method", "stack", "--per-region", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "fits every landmark already" in result.output
    assert not (tmp_path / "o.csv").exists()


def test_fit_warns_when_data_is_not_the_runs_own(tmp_path):
    import shutil

    from tests.helpers import make_runs

    runs, data, *_ = make_runs(tmp_path, [1.0, 2.0])
    other = shutil.copytree(data, tmp_path / "other")
    result = _run("--fit", runs, "--data", other, "-o", tmp_path / "o.csv")
    assert result.exit_code == 0, result.output
    assert f"warning: --data {other} is not the data folder the runs were trained on" in (
        result.output
    )
    same = _run("--fit", runs, "--data", data, "-o", tmp_path / "p.csv")
    assert "warning: --data" not in same.output


def test_compare_on_too_few_images_says_it_did_not_cross_validate(tmp_path):
    import numpy as np

    from tests.helpers import make_runs

    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    for number in range(2):
        path = runs / f"run{number}" / "val_predictions.npz"
        item = np.load(path)
        np.savez(path, file_names=item["file_names"][:8], points=item["points"][:8])
    result = CliRunner().invoke(cli, ["blend", "--fit", str(runs), "--compare"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert "too few to cross-validate" in first and "5 folds" not in first
    methods = [line.split()[0] for line in result.output.splitlines()[2:]]
    assert "shrink" not in methods and "stack" not in methods and "keep lsq" in result.output


def test_compare_refuses_the_options_it_would_ignore(tmp_path):
    from tests.helpers import make_runs

    runs, *_ = make_runs(tmp_path, [1.0, 2.0])
    for extra in (["--method", "stack"], ["--per-region"]):
        result = CliRunner().invoke(cli, ["blend", "--fit", str(runs), "--compare", *extra])
        assert result.exit_code == 2 and "scores every method" in result.output
