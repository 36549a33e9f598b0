"""One reader of the ADN_* variables: the store and the workers parse them the same way."""

from __future__ import annotations

import pytest

from db.errors import SettingsError as StoreSettingsError
from db.settings import StoreSettings
from worker.errors import SettingsError as WorkerSettingsError
from worker.settings import WorkerSettings


def test_store_and_worker_read_whole_numbers_alike() -> None:
    env = {"ADN_MAX_FILE_MB": " 1_0 ", "ADN_MAX_JOB_ATTEMPTS": " 1_0 ", "ADN_DATA_DIR": "/x"}
    assert StoreSettings.from_env(env).max_file_mb == 10
    assert WorkerSettings.from_env(env).max_job_attempts == 10
    assert WorkerSettings.from_env({"ADN_SWEEP_INTERVAL_S": "  "}).sweep_interval_s > 0


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"ADN_MAX_FILE_MB": "ten"}, StoreSettingsError),
        ({"ADN_MAX_JOB_ATTEMPTS": "ten"}, WorkerSettingsError),
    ],
)
def test_a_bad_number_names_the_variable_and_an_example(
    env: dict[str, str], error: type[Exception]
) -> None:
    reader = StoreSettings if error is StoreSettingsError else WorkerSettings
    with pytest.raises(error, match=r"ADN_\w+='ten' is not a whole number; set it to e.g. \d+"):
        reader.from_env(env)
