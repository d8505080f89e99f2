"""Run folders: what they hold and how a bad file in one is named."""


def test_a_corrupt_summary_is_an_input_error_naming_it(tmp_path) -> None:
    import pytest

    from ensemble.errors import InputError
    from ensemble.io.run_folder import RunFolder

    run = RunFolder.at(tmp_path / "a")
    run.path.mkdir()
    run.summary_path.write_text('{"val_score": 1.0')  # cut short
    with pytest.raises(InputError, match=r"summary.json: not valid JSON"):
        run.summary()
