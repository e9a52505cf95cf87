"""The Spark session factory's checks: master URL, properties, Java, reachability; lazy pyspark."""

from __future__ import annotations

import subprocess
import sys

import pytest

from recsys.engine import SparkEngineError, check_master, find_java, spark_session


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4,2]", "spark://127.0.0.1:7077",
                                    "spark://spark-master.internal:7077", "yarn",
                                    "k8s://https://10.0.0.1:6443"])
def test_accepted_master_urls(master: str) -> None:
    assert check_master(master) == master


@pytest.mark.parametrize("master", ["local[0]", "local[two]", "spark://host", "spark://host:0",
                                    "spark://host:70000", "mesos://host:5050", "", None, 7077])
def test_bad_master_urls_name_the_setting(master: object) -> None:
    with pytest.raises(SparkEngineError, match=r"^engine.master: expected local, local\[N\], local\[\*\], "
                                               r"spark://HOST:PORT, yarn or k8s://https://HOST:PORT, got "):
        check_master(master)


def test_missing_java_is_named(tmp_path) -> None:
    with pytest.raises(SparkEngineError, match=r"^engine: the Spark engine needs Java 17 or later; expected "
                                               r"JAVA_HOME/bin/java or java on PATH, found neither"):
        find_java(java_home=str(tmp_path), path=str(tmp_path))


def test_java_home_wins_over_path(tmp_path) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    assert find_java(java_home=str(tmp_path), path="/nonexistent") == java


def test_session_checks_run_before_any_jvm(tmp_path) -> None:
    pytest.importorskip("pyspark")
    with pytest.raises(SparkEngineError, match=r"^engine: the Spark engine needs Java"):
        spark_session("local[1]", path=str(tmp_path))
    with pytest.raises(SparkEngineError, match=r"^engine.conf: expected Spark property names starting "
                                               r"with 'spark.', got 'executor.memory'"):
        spark_session("local[1]", {"executor.memory": "1g"})
    with pytest.raises(SparkEngineError, match=r"^engine.master: cannot reach the Spark master at "
                                               r"spark://127.0.0.1:9 "):
        spark_session("spark://127.0.0.1:9", path="/usr/bin:/bin")


def test_importing_fairrec_does_not_import_pyspark() -> None:
    code = ("import sys, recsys.data, recsys.models, recsys.engine, evaluation, training._run, "
            "training._spark_run; print('pyspark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
